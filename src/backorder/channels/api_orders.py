"""Orders from channels without a platform (POS, B2B portal): the JSON body of
``POST /api/v1/orders`` and Standard-Webhooks events of those channels, as canonical commands."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from backorder.connectors.base import ApiChannelSettings, InboundIdentity, InboundRequest
from backorder.connectors.errors import InvalidSignature, MalformedPayload
from backorder.connectors.signatures import verify_standard_webhook
from backorder.domain import commands

INT_MAX = 2_147_483_647
"""The largest value of an ``Integer`` column (quantities, line numbers, priorities)."""
INT_MIN = -2_147_483_648
NO_NUL = r"^[^\x00]*$"
"""No NUL character: PostgreSQL text cannot hold one."""
EMAIL = r"^[^\s@\x00]+@[^\s@\x00]+\.[^\s@\x00]+$"
"""What an e-mail address looks like (``name@domain.tld``); the notifier sends to it."""


class ApiLine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str = Field(min_length=1, max_length=64, pattern=NO_NUL)
    quantity: int = Field(gt=0, le=INT_MAX)
    line_no: int | None = Field(None, ge=1, le=INT_MAX)


class ApiCustomer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str | None = Field(default=None, max_length=320, pattern=EMAIL)
    phone: str | None = Field(default=None, max_length=40, pattern=NO_NUL)
    name: str | None = Field(default=None, max_length=200, pattern=NO_NUL)

    @field_validator("email", "phone", "name", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        """A till that sends ``""`` for a field it has no value for sends nothing."""
        return None if isinstance(value, str) and not value.strip() else value


class ApiOrder(BaseModel):
    """A canonical order as a POS or B2B portal sends it. The bounds are the database columns'
    (a body within them never fails on a column)."""

    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")
    placed_at: AwareDatetime | None = Field(None, description="with a time zone, e.g. 2026-03-02T09:00:00Z")
    lines: list[ApiLine] = Field(min_length=1, max_length=500)
    customer: ApiCustomer | None = None
    priority: int = Field(0, ge=INT_MIN, le=INT_MAX)
    ship_complete: bool = False
    # when customers know the order by another number
    reference: str | None = Field(None, min_length=1, max_length=64, pattern=NO_NUL)

    @field_validator("placed_at")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00
            raise ValueError("placed_at is out of range") from None


def order_lines(order: ApiOrder) -> tuple[commands.NewLine, ...]:
    """The order's lines as placed: a line without ``line_no`` is numbered by its position."""
    return tuple(commands.NewLine(line.line_no or i, line.sku, line.quantity) for i, line in enumerate(order.lines, 1))


def parse_order(channel: str, body: bytes, received_at: datetime) -> commands.PlaceOrder:
    try:
        order = ApiOrder.model_validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise MalformedPayload(f"not a valid order: {problems}") from None
    placed = order.placed_at or received_at
    customer = order.customer or ApiCustomer()
    return commands.PlaceOrder(
        order_id=f"{channel}-{order.order_id}",
        channel=channel,
        placed_at=placed.astimezone(UTC),
        lines=order_lines(order),
        priority=order.priority,
        ship_complete=order.ship_complete,
        customer_email=customer.email,
        customer_phone=customer.phone,
        customer_name=customer.name,
        reference=order.reference or order.order_id,
    )


class StandardWebhookReceiver:
    """Signed events from a POS/B2B channel (Standard Webhooks: ``webhook-id``,
    ``webhook-timestamp``, ``webhook-signature``, ±5 minutes). The body is an :class:`ApiOrder`."""

    def __init__(self, channel: str, settings: ApiChannelSettings, now: Callable[[], datetime]) -> None:
        self.channel = channel
        self.settings = settings
        self._now = now

    def verify(self, request: InboundRequest) -> None:
        secret = self.settings.webhook_secret
        if secret is None:
            raise InvalidSignature("no webhook_secret is configured for this channel")
        verify_standard_webhook(request.body, request.headers, secret.get_secret_value(), int(self._now().timestamp()))

    def identify(self, request: InboundRequest) -> InboundIdentity:
        msg = request.headers.get("webhook-id")
        key = f"webhook:{msg}" if msg else "sha256:" + hashlib.sha256(request.body).hexdigest()
        return InboundIdentity(key, "order")

    def parse(
        self, topic: str, headers: Mapping[str, str], body: bytes, received_at: datetime
    ) -> list[commands.Command]:
        return [parse_order(self.channel, body, received_at)]
