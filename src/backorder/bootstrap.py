"""The composition root: the one place that builds engines, connectors, the bus and the
dispatcher from a Config. Nothing is built at import time; entry points call
:func:`bootstrap` and get an :class:`Application`."""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.pool import StaticPool

from backorder.config import Config, ConfigError, load_config
from backorder.connectors.base import Connector, ConnectorDeps, ConnectorSettings, ConnectorSpec, settings_lookup
from backorder.connectors.registry import load_specs
from backorder.connectors.sandbox.client import SandboxSink
from backorder.connectors.sandbox.mapping import SandboxRecord
from backorder.connectors.sandbox.settings import SandboxSettings
from backorder.dispatch import Dispatcher, MessagingOptions, RetryPolicy, Routes
from backorder.notify.links import LinkSigner
from backorder.notify.redact import install as install_pii_redaction
from backorder.notify.render import Renderer
from backorder.notify.state import MessagingState
from backorder.services.handlers import HandlerContext
from backorder.services.messagebus import MessageBus
from backorder.services.ports import Clock, SystemClock
from backorder.services.rules import Action
from backorder.staff.links import SignedLinks
from backorder.staff.service import StaffService
from backorder.store.engine import build_engine
from backorder.store.migrate import upgrade
from backorder.store.outbox import OutboxQueue
from backorder.store.readmodels import ReadModel
from backorder.store.repositories import apply_location_order
from backorder.store.sandbox import record_sandbox_message
from backorder.store.staff import StaffQueries, StaffStore
from backorder.store.unit_of_work import uow_factory


class DatabaseSandboxSink(SandboxSink):
    """Sandbox records go to the ``sandbox_messages`` table."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def record(self, record: SandboxRecord, message_id: str) -> int:
        digits = message_id.removeprefix("bo-")
        return record_sandbox_message(
            self.engine,
            self.clock.now(),
            kind=record.kind,
            template=record.template,
            recipient=record.recipient,
            subject=record.subject,
            body=record.body,
            html=record.html,
            outbox_id=int(digits) if message_id.startswith("bo-") and digits.isdigit() else None,
        )


@dataclass
class Application:
    config: Config
    engine: Engine
    clock: Clock
    bus: MessageBus
    read: ReadModel
    queue: OutboxQueue
    dispatcher: Dispatcher
    routes: Routes
    specs: dict[str, ConnectorSpec]
    # --- issue 3 (channels) fields below this line, with defaults ---
    channel_services: Any = None
    """backorder.channels.services.ChannelServices: inbox, processor, stock sync, reconciliation."""
    webhook_registrations: Any = None
    """Connector name (``channels.<id>``) → what `backorder connect` registered for it, as text
    (None: not a sales channel); the dashboard's connectors page shows it."""
    # --- issue 4 (messaging) fields below this line, with defaults ---
    messaging: MessagingState | None = None
    signer: LinkSigner | None = None
    # --- issue 5 (staff, API) fields below this line, with defaults ---
    staff: StaffService | None = None
    links: SignedLinks | None = None
    secret_key: str = ""

    def close(self) -> None:
        if self.channel_services is not None:
            self.channel_services.writer.close()  # flush and stop the inbox writer thread
        self.dispatcher.close()
        self.engine.dispose()


def read_config(path: str | Path | None, environ: dict[str, str] | None = None) -> Config:
    return load_config(path, settings_lookup(load_specs()), environ)


def _build_connector(
    specs: dict[str, ConnectorSpec], name: str, settings: ConnectorSettings, deps: ConnectorDeps, role: str
) -> Connector | None:
    spec = specs.get(settings.kind)
    if spec is None:
        return None  # an API-only channel (POS, B2B portal): nothing to call
    if role not in spec.roles:
        raise ConfigError(f"{name}: {settings.kind} cannot be used for {role}")
    return spec.build(name, settings, deps)


def bootstrap(
    config: Config,
    *,
    database_url: str | None = None,
    clock: Clock | None = None,
    migrate: bool = True,
    http_client_factory: Callable[[str], Any] | None = None,
    sandbox_folder: str | bool | None = True,
    rng: random.Random | None = None,
) -> Application:
    clock = clock or SystemClock()
    engine = build_engine(database_url or config.database_url)
    if migrate:
        upgrade(engine)
    if config.locations:
        with engine.begin() as conn:
            apply_location_order(conn, config.locations)
    specs = load_specs()
    folder = config.sandbox.folder if sandbox_folder is True else (sandbox_folder or None)
    deps = ConnectorDeps(
        http_client_factory=http_client_factory,
        extras={"sandbox_sink": DatabaseSandboxSink(engine, clock), "sandbox_folder": folder},
    )
    routes = Routes()
    sandbox = SandboxSettings(provider="sandbox")
    for role in ("email", "sms", "staff"):
        settings = config.notify.get(role, sandbox)
        setattr(routes, role, _build_connector(specs, f"notify.{role}", settings, deps, role))
    routes.purchasing = _build_connector(specs, "purchasing", config.purchasing or sandbox, deps, "purchasing")
    for cid, settings in config.channels.items():
        connector = _build_connector(specs, f"channels.{cid}", settings, deps, "channel")
        if connector is not None:
            routes.channels[cid] = connector
        routes.channel_settings[cid] = settings
    context = HandlerContext(clock, config.policy())
    rules = config.rule_set()
    if not routes.channels:
        rules = replace(rules, disabled=frozenset({Action.PUSH_STOCK, Action.TAG_ORDER}))
    bus = MessageBus(uow_factory(engine, clock), context, rules)
    read = ReadModel(engine)
    queue = OutboxQueue(engine)
    renderer = Renderer(shop_name="Backorder demo shop", public_url=config.server.public_url)
    dispatcher = Dispatcher(
        queue,
        read,
        routes,
        renderer,
        clock,
        RetryPolicy(config.worker.max_attempts, config.worker.backoff_base_seconds, config.worker.backoff_cap_seconds),
        lease=timedelta(seconds=config.worker.lease_seconds),
        rng=rng,
        # One connection shared by every thread (in-memory SQLite) cannot take concurrent use.
        threads=1 if isinstance(engine.pool, StaticPool) else config.worker.delivery_threads,
    )
    application = Application(config, engine, clock, bus, read, queue, dispatcher, routes, specs)
    # --- issue 3 (channels) wiring ---
    from backorder.channels.services import build_channel_services

    application.channel_services = build_channel_services(application)
    application.webhook_registrations = application.channel_services.webhook_registrations
    # --- issue 4 (messaging) wiring ---
    dispatcher = application.dispatcher  # issue 3 may have wrapped it (ChannelDispatcher.wrap)
    install_pii_redaction()
    state = MessagingState(engine)
    signer = LinkSigner(lambda: state.secret_key(config.server.secret_key), config.server.public_url)
    messaging_deps = ConnectorDeps(
        http_client_factory=http_client_factory, extras={**deps.extras, "public_url": config.server.public_url}
    )
    for role in ("email", "sms", "staff"):
        if role in config.notify:  # rebuilt with the public URL (Twilio's status callback)
            setattr(routes, role, _build_connector(specs, f"notify.{role}", config.notify[role], messaging_deps, role))
    messages = config.messages
    dispatcher.renderer = Renderer(
        override_folder=Path(messages.template_folder) if messages.template_folder else None,
        shop_name=messages.shop_name if "messages" in config.model_fields_set else "Backorder demo shop",
        public_url=config.server.public_url,
        currency=messages.currency,
        ship_to=messages.ship_to,
    )
    dispatcher.messaging = MessagingOptions(
        state,
        signer,
        eta_min_change_days=messages.eta_min_change_days,
        eta_interval=timedelta(hours=messages.eta_min_interval_hours),
        sms_consent_from_order=messages.sms_consent_from_order,
        digest_hour=messages.digest_hour if messages.daily_digest else None,
    )
    application.messaging = state
    application.signer = signer
    # --- issue 5 (staff, API) wiring ---
    staff_store = StaffStore(engine)
    application.secret_key = config.server.secret_key or staff_store.secret(
        "server_secret_key", lambda: secrets.token_urlsafe(48), clock.now()
    )
    application.staff = StaffService(staff_store, StaffQueries(engine), clock)
    application.links = SignedLinks(application.secret_key, config.server.public_url, clock.now)
    dispatcher.choices_url = application.links.link_for
    return application
