"""Orders from channels without a platform (POS, B2B portal): the JSON body of
``POST /api/v1/orders`` and Standard-Webhooks events of those channels, as canonical commands."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backorder.connectors.base import ApiChannelSettings, InboundIdentity, InboundRequest
from backorder.connectors.errors import InvalidSignature, MalformedPayload
from backorder.connectors.signatures import verify_standard_webhook
from backorder.domain import commands


class ApiLine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(gt=0)
    line_no: int | None = Field(None, ge=1)


class ApiCustomer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str | None = None
    phone: str | None = None
    name: str | None = None


class ApiOrder(BaseModel):
    """A canonical order as a POS or B2B portal sends it."""

    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")
    placed_at: datetime | None = None
    lines: list[ApiLine] = Field(min_length=1, max_length=500)
    customer: ApiCustomer | None = None
    priority: int = 0
    ship_complete: bool = False
    reference: str | None = Field(None, min_length=1, max_length=64)  # when customers know it by another number


def parse_order(channel: str, body: bytes, received_at: datetime) -> commands.PlaceOrder:
    try:
        order = ApiOrder.model_validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise MalformedPayload(f"not a valid order: {problems}") from None
    placed = order.placed_at or received_at
    if placed.tzinfo is None:
        raise MalformedPayload("placed_at needs a time zone (e.g. 2026-03-02T09:00:00Z)")
    customer = order.customer or ApiCustomer()
    return commands.PlaceOrder(
        order_id=f"{channel}-{order.order_id}",
        channel=channel,
        placed_at=placed.astimezone(UTC),
        lines=tuple(
            commands.NewLine(line.line_no or i, line.sku, line.quantity) for i, line in enumerate(order.lines, 1)
        ),
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
