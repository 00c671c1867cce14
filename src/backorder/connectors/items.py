"""Shared by the sales-channel connectors: the map between our SKUs and a platform's items,
strict JSON body loading for webhooks, and the plumbing of a channel connector that calls a
platform's HTTP API. (Connectors never import each other; what they share lives here.)"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from backorder.connectors.base import Connector, ConnectorDeps, ConnectorSettings
from backorder.connectors.errors import MalformedPayload, NotConfigured
from backorder.connectors.http import HttpSettings, ProviderClient


@dataclass(frozen=True)
class ItemRef:
    """Where one of our SKUs lives on a platform."""

    sku: str
    item_ref: str
    """The platform's stock-carrying id: Shopify inventory item, WooCommerce product or variation."""
    variant_ref: str | None = None
    parent_ref: str | None = None
    """The parent product of a variation, where the platform has one."""


class ItemDirectory(Protocol):
    """Where a channel's SKU ↔ item map is kept (the database, bound by the composition root)."""

    def find(self, skus: Sequence[str]) -> dict[str, ItemRef]: ...

    def sku_of(self, item_ref: str) -> str | None: ...

    def remember(self, items: Sequence[ItemRef]) -> None: ...


class MemoryDirectory:
    """An in-memory directory (tests, and a connector not yet bound to the database)."""

    def __init__(self) -> None:
        self.items: dict[str, ItemRef] = {}

    def find(self, skus: Sequence[str]) -> dict[str, ItemRef]:
        return {s: self.items[s] for s in skus if s in self.items}

    def sku_of(self, item_ref: str) -> str | None:
        return next((i.sku for i in self.items.values() if i.item_ref == item_ref), None)

    def remember(self, items: Sequence[ItemRef]) -> None:
        for item in items:
            self.items[item.sku] = item


def load_json(body: bytes) -> dict[str, Any]:
    """A webhook body as a JSON object, or MalformedPayload saying why not."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedPayload(f"body is not JSON: {exc}", status_code=400) from None
    if not isinstance(data, dict):
        raise MalformedPayload("body is not a JSON object")
    return data


class HttpChannelConnector(Connector):
    """A sales channel reached over HTTP: its channel id, item directory and lazily built
    client through the shared outbound layer. Subclasses set ``provider`` and give
    ``settings`` an ``api_base()``, ``allowed_hosts`` and ``rate_per_second``."""

    provider: str = ""

    def __init__(self, name: str, settings: ConnectorSettings, deps: ConnectorDeps) -> None:
        super().__init__(name, settings)
        self.channel = name.removeprefix("channels.")
        self.rate_per_second = float(getattr(settings, "rate_per_second", 0.0))
        self.directory: ItemDirectory = deps.extras.get("item_directory") or MemoryDirectory()
        factory = deps.http_client_factory
        self._client_factory = (lambda: factory(name)) if factory else self._default_client
        self._http: ProviderClient | None = None

    def _default_client(self) -> httpx.Client:
        return httpx.Client(base_url=self.settings.api_base())  # type: ignore[attr-defined]

    def bind_directory(self, directory: ItemDirectory) -> None:
        self.directory = directory

    def require_credentials(self) -> None:
        """Refuse an outbound call while keys it needs are unset, naming every one of them."""
        missing = self.settings.missing_credentials()
        if missing:
            keys = ", ".join(f"channels.{self.channel}.{key}" for key in missing)
            raise NotConfigured(keys, provider=self.provider)

    def route_http(self, factory: Callable[[], httpx.Client]) -> None:
        """Send this channel's calls through clients from ``factory`` (the demo's in-process
        stand-in of the platform); the outbound layer (allowlist, retries, limits) stays."""
        self._client_factory = factory
        self._http = None

    def _client(self) -> ProviderClient:
        if self._http is None:
            hosts = list(getattr(self.settings, "allowed_hosts", ()))
            self._http = ProviderClient(
                self._client_factory(), HttpSettings(allowed_hosts=hosts), provider=self.provider
            )
        return self._http
