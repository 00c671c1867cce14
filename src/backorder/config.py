"""Configuration: one TOML file (``--config`` or ``BACKORDER_CONFIG``) validated into typed
models at start. Every ``${ENV_VAR}`` in a string value is replaced by that environment variable
(the whole string, ``"${TOKEN}"``, or a part of it, ``"postgresql://u:${PGPASSWORD}@db/x"``);
secrets are ``SecretStr`` and never printed. Errors name the key to fix, never a value."""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from backorder.connectors.base import ConnectorSettings, SettingsLookup
from backorder.services.policy import EnginePolicy
from backorder.services.rules import DEFAULT_RULES, EVENT_NAMES, Action, RuleSet

DEFAULT_DATABASE_URL = "sqlite:///backorder.db"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and what to do."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EngineConfig(Strict):
    auto_send_purchase_orders: bool = False
    po_consolidation_minutes: int = Field(60, ge=0)
    default_lead_time_days: int = Field(14, ge=0)


class ServerConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    public_url: str = "http://127.0.0.1:8080"
    """Where customers, staff and platforms reach this server: every link in a message starts here."""
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    secret_key: str | None = None
    """Signs customer links and sessions; set it (``${BACKORDER_SECRET_KEY}``) in production."""
    metrics_token: SecretStr | None = None
    """When set, ``/metrics`` answers only ``Authorization: Bearer <token>`` (the scraper's); unset,
    it is open to anyone who reaches the server (order and queue volumes, no personal data)."""

    @field_validator("public_url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(
                "must be an absolute http(s) address such as https://backorder.example.com"
                " (every link in a customer message starts with it)"
            )
        return value.strip().rstrip("/")

    @property
    def public_url_is_local(self) -> bool:
        """Whether ``public_url`` names this machine only (loopback), so nobody else can open links to it."""
        host = urlsplit(self.public_url).hostname or ""
        if host == "localhost" or host.endswith(".localhost"):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


class WorkerConfig(Strict):
    poll_interval_seconds: float = Field(1.0, gt=0)
    lease_seconds: int = Field(120, ge=5)
    max_attempts: int = Field(8, ge=1)
    backoff_base_seconds: float = Field(5.0, gt=0)
    backoff_cap_seconds: float = Field(3600.0, gt=0)
    batch_size: int = Field(50, ge=1)
    delivery_threads: int = Field(4, ge=1, le=64)
    """Deliveries one worker makes at once (a send mostly waits on the provider); an order's
    messages still go one after another."""
    bop_interval_minutes: int = Field(60, ge=0)
    """A full backorder run this often (0: only after stock movements)."""


class SandboxConfig(Strict):
    folder: str | None = "sandbox_outbox"


class MessagesConfig(Strict):
    """``[messages]``: customer and staff messaging (issue 4)."""

    eta_min_change_days: int = Field(2, ge=0)
    """A customer hears of a new ETA only when it moved by at least this many days."""
    eta_min_interval_hours: float = Field(24.0, ge=0)
    """…and at most once per this many hours per order."""
    daily_digest: bool = True
    """Post the daily staff digest (``false``: never)."""
    digest_hour: int | None = Field(8, ge=0, le=23)
    """UTC hour after which the daily staff digest is posted (None: no digest)."""
    template_folder: str | None = None
    """A folder whose ``customer/…``, ``staff/…`` templates override the built-in ones."""
    sms_consent_from_order: bool = False
    """True when the shop's checkout collects SMS consent with the phone number, so a phone on
    an order counts as recorded consent. Otherwise consent must be recorded explicitly."""
    shop_name: str = "Our shop"
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    """ISO 4217 code written after every amount (``GBP``, ``EUR``, ``USD``): on purchase orders, the
    dashboard and the self-service page. Unset: amounts are shown bare."""
    ship_to: str | None = None
    """The delivery address printed on purchase orders (several lines: use a TOML multi-line string)."""


class DatabaseConfig(Strict):
    """``[database]``: only ``url``; an absent table keeps :data:`DEFAULT_DATABASE_URL`."""

    url: str = Field(min_length=1)


class Config(Strict):
    database_url: str = Field(DEFAULT_DATABASE_URL, repr=False)
    """From ``[database] url`` (or a top-level ``database_url``); ``--db`` /
    ``BACKORDER_DATABASE_URL`` override it at bootstrap. Kept out of ``repr``: it may hold a
    password read from the environment."""
    engine: EngineConfig = EngineConfig()
    server: ServerConfig = ServerConfig()
    worker: WorkerConfig = WorkerConfig()
    sandbox: SandboxConfig = SandboxConfig()
    locations: tuple[str, ...] = ()
    """Default location preference order (others follow in the order first seen)."""
    channels: dict[str, ConnectorSettings] = Field(default_factory=dict)
    notify: dict[str, ConnectorSettings] = Field(default_factory=dict)
    purchasing: ConnectorSettings | None = None
    rules: dict[str, tuple[Action, ...]] = Field(default_factory=lambda: dict(DEFAULT_RULES))
    messages: MessagesConfig = MessagesConfig()

    @field_validator("rules")
    @classmethod
    def _known_events(cls, value: dict[str, tuple[Action, ...]]) -> dict[str, tuple[Action, ...]]:
        for name in value:
            if name not in EVENT_NAMES:
                raise ValueError(f"unknown event {name!r}; known: {', '.join(sorted(EVENT_NAMES))}")
        return value

    def policy(self) -> EnginePolicy:
        return EnginePolicy(
            channel_locations={cid: tuple(ch.locations) for cid, ch in self.channels.items() if ch.locations},
            auto_send_purchase_orders=self.engine.auto_send_purchase_orders,
            po_consolidation_minutes=self.engine.po_consolidation_minutes,
            default_lead_time_days=self.engine.default_lead_time_days,
        )

    def rule_set(self) -> RuleSet:
        merged = dict(DEFAULT_RULES)
        merged.update(self.rules)
        return RuleSet(merged)


def _expand_env(value: Any, path: str, environ: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v, f"{path}.{k}" if path else k, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, f"{path}[{i}]", environ) for i, v in enumerate(value)]
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in environ:
                raise ConfigError(f"{path}: environment variable {name} is not set (export it, or remove the key)")
            return environ[name]

        # One pass: a variable's value is inserted as is, never scanned for references itself.
        return _ENV_REF.sub(substitute, value)
    return value


def _database_url(database: Any, data: Mapping[str, Any]) -> str:
    if not isinstance(database, dict):
        raise ConfigError('database: expected a table ([database] with url = "...")')
    try:
        url = DatabaseConfig.model_validate(database).url
    except ValidationError as exc:
        raise ConfigError(_describe(exc, "database")) from None
    if "database_url" in data:
        raise ConfigError("database.url: the database is also set by the top-level database_url; keep one of them")
    return url


def _connector_settings(raw: Any, path: str, lookup: SettingsLookup, key: str, role: str) -> ConnectorSettings:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a table")
    kind = raw.get(key)
    if not isinstance(kind, str):
        raise ConfigError(f"{path}.{key}: missing; say which {key} this is")
    model = lookup(kind)
    if model is None:
        known = lookup.kinds(role)
        near = difflib.get_close_matches(kind, known, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise ConfigError(f"{path}.{key}: unknown {key} {kind!r}; {hint}known: {', '.join(known)}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None


def _describe(exc: ValidationError, prefix: str = "") -> str:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        where = f"{prefix}.{where}" if prefix and where else (prefix or where)
        problems.append(f"{where}: {err['msg']}")  # never the input value: it may be a secret
    return "invalid configuration:\n  " + "\n  ".join(problems)


def parse_config(raw: Mapping[str, Any], lookup: SettingsLookup, environ: Mapping[str, str] | None = None) -> Config:
    data = _expand_env(dict(raw), "", os.environ if environ is None else environ)
    if "database" in data:
        data["database_url"] = _database_url(data.pop("database"), data)
    data["channels"] = {
        cid: _connector_settings(ch, f"channels.{cid}", lookup, "platform", "channel")
        for cid, ch in data.get("channels", {}).items()
    }
    for role in data.get("notify", {}):
        if role not in ("email", "sms", "staff"):
            raise ConfigError(f"notify.{role}: unknown role; use notify.email, notify.sms or notify.staff")
    data["notify"] = {
        role: _connector_settings(n, f"notify.{role}", lookup, "provider", role)
        for role, n in data.get("notify", {}).items()
    }
    if "purchasing" in data:
        data["purchasing"] = _connector_settings(data["purchasing"], "purchasing", lookup, "provider", "purchasing")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def load_config(path: str | Path | None, lookup: SettingsLookup, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the TOML file; no file means defaults (sandbox everywhere)."""
    env = os.environ if environ is None else environ
    chosen = path or env.get("BACKORDER_CONFIG")
    raw: dict[str, Any] = {}
    if chosen:
        file = Path(chosen)
        if not file.is_file():
            raise ConfigError(f"config file {file} not found (pass --config PATH or set BACKORDER_CONFIG)")
        try:
            raw = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    return parse_config(raw, lookup, env)
