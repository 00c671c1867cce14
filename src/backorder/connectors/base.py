"""What a connector is: typed settings, and the capabilities it opts into.

A connector is a folder ``connectors/<platform>/`` with ``settings.py`` (a ConnectorSettings
subclass, secrets as SecretStr), ``client.py`` (outbound calls), ``mapping.py`` (their data ↔
ours) and, for platforms that call us, ``inbound.py`` (verify + parse into commands). Its
``__init__.py`` exposes ``SPEC``, a :class:`ConnectorSpec`.

Capabilities are small ABCs with one job each; the dispatcher asks ``isinstance(connector,
NotifiesCustomers)`` rather than calling a god interface with a hook for every event.
Failures are raised as ``backorder.connectors.errors`` (retryable or fatal).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from backorder.domain.commands import Command


class ConnectorSettings(BaseModel):
    """Base of every connector's settings table (``[channels.<id>]``, ``[notify.<role>]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    platform: str | None = None
    provider: str | None = None
    base_url: str | None = None
    locations: tuple[str, ...] = ()
    """For sales channels: locations this channel fulfils from, in order (empty: all)."""
    buffer: int = 0
    """For sales channels: units held back from the sellable quantity pushed to the channel."""

    @property
    def kind(self) -> str:
        return self.platform or self.provider or "unknown"

    def missing_credentials(self) -> list[str]:
        """Keys that must be set before outbound calls can be made (empty: ready)."""
        return []


@dataclass(frozen=True)
class DeliveryReceipt:
    """What the provider answered: its id for the message, and a short note for staff."""

    provider_ref: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class OutboundMessage:
    """A rendered customer message. ``message_id`` is ours (``bo-<outbox id>``) and travels in
    every request so a duplicate delivery can be traced."""

    message_id: str
    channel: str  # email | sms
    to: str
    subject: str
    text: str
    html: str | None = None
    template: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StaffMessage:
    message_id: str
    title: str
    text: str
    fields: Mapping[str, str] = field(default_factory=dict)
    link: str | None = None
    template: str = ""


@dataclass(frozen=True)
class PoDocumentLine:
    sku: str
    supplier_sku: str
    quantity: int
    unit_cost: Decimal
    expected_on: date | None


@dataclass(frozen=True)
class PurchaseOrderDocument:
    message_id: str
    po_number: str
    supplier: str
    supplier_email: str
    lines: tuple[PoDocumentLine, ...]
    subject: str
    text: str


@dataclass(frozen=True)
class StockUpdate:
    """The sellable quantity a channel should show for a SKU."""

    sku: str
    available: int
    message_id: str = ""


@dataclass(frozen=True)
class OrderTag:
    message_id: str
    order_id: str
    channel_order_ref: str
    backordered: bool
    note: str


class Connector:
    """Base of all connectors. ``name`` is the config key it was built from."""

    def __init__(self, name: str, settings: ConnectorSettings) -> None:
        self.name = name
        self.settings = settings

    def rate_limit_key(self, payload: Mapping[str, Any]) -> str | None:
        """Key for the dispatcher's per-provider rate limit (None: unlimited)."""
        return None

    rate_per_second: float = 0.0

    local: bool = False
    """True when a delivery never waits on a provider (the sandbox): the dispatcher spends no
    thread on it, so such work does not compete with order processing for the CPU."""


class NotifiesCustomers(abc.ABC):
    @abc.abstractmethod
    def send_message(self, message: OutboundMessage) -> DeliveryReceipt: ...


class NotifiesStaff(abc.ABC):
    @abc.abstractmethod
    def post_staff(self, message: StaffMessage) -> DeliveryReceipt: ...


class PlacesPurchaseOrders(abc.ABC):
    @abc.abstractmethod
    def place_purchase_order(self, document: PurchaseOrderDocument) -> DeliveryReceipt: ...


class SyncsStock(abc.ABC):
    @abc.abstractmethod
    def push_stock(self, updates: Sequence[StockUpdate]) -> DeliveryReceipt: ...


class TagsOrders(abc.ABC):
    @abc.abstractmethod
    def tag_order(self, tag: OrderTag) -> DeliveryReceipt: ...


@dataclass(frozen=True)
class InboundRequest:
    """A webhook as it arrived: the raw body (never re-serialised) and lower-cased headers."""

    platform: str
    channel: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    received_at: datetime


@dataclass(frozen=True)
class InboundIdentity:
    """How the inbox keys an event: the provider's event id (else a hash of the body), and
    the topic it names (e.g. ``orders/create``)."""

    event_key: str
    topic: str


class ReceivesWebhooks(abc.ABC):
    """Platforms that call us. ``verify`` runs before anything is stored; ``parse`` runs after
    the 200, from the inbox row, and turns the payload into canonical commands."""

    @abc.abstractmethod
    def verify(self, request: InboundRequest) -> None:
        """Raise ``errors.InvalidSignature`` / ``StaleTimestamp`` unless the request is authentic."""

    @abc.abstractmethod
    def identify(self, request: InboundRequest) -> InboundIdentity: ...

    @abc.abstractmethod
    def parse(self, topic: str, headers: Mapping[str, str], body: bytes) -> list[Command]:
        """Canonical commands for this event (empty: nothing to do). Raise
        ``errors.MalformedPayload`` when the body cannot be understood."""


@dataclass(frozen=True)
class ConnectorDeps:
    """What the composition root hands a connector factory."""

    http_client_factory: Callable[[str], Any] | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectorSpec:
    kind: str
    settings: type[ConnectorSettings]
    build: Callable[[str, ConnectorSettings, ConnectorDeps], Connector]
    roles: frozenset[str] = frozenset()
    """Where it may be configured: channel, email, sms, staff, purchasing."""


class ApiChannelSettings(ConnectorSettings):
    """A channel with no platform API (POS, B2B portal): orders arrive through our own API."""

    api_key: SecretStr | None = None
    """Issue 3: the key a POS/B2B sender presents (``Authorization: Bearer <key>``) on
    ``POST /api/v1/orders``; it selects this channel."""
    webhook_secret: SecretStr | None = None
    """Issue 3: a Standard Webhooks secret (``whsec_…``) for senders that post signed events to
    ``/webhooks/<platform>/<channel>`` instead of calling the API."""


API_CHANNEL_KINDS = ("api", "pos", "b2b")


class SettingsLookup:
    """The settings model of each connector kind (``platform = …`` / ``provider = …``), and the
    kinds there are, for an error that names them."""

    def __init__(self, specs: Mapping[str, ConnectorSpec]) -> None:
        self.specs = specs

    def __call__(self, kind: str) -> type[ConnectorSettings] | None:
        if kind in API_CHANNEL_KINDS:
            return ApiChannelSettings
        spec = self.specs.get(kind)
        return spec.settings if spec else None

    def kinds(self, role: str) -> list[str]:
        """The kinds that may be configured in ``role`` (``channel``, ``email``, …)."""
        found = sorted(kind for kind, spec in self.specs.items() if role in spec.roles)
        return found + list(API_CHANNEL_KINDS) if role == "channel" else found


def settings_lookup(specs: Mapping[str, ConnectorSpec]) -> SettingsLookup:
    return SettingsLookup(specs)
