"""Inbound events from senders WE ship (the Magento module, the SFCC job step, POS/B2B scripts).

They all use the Standard Webhooks scheme (https://www.standardwebhooks.com/): headers
``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` (space-separated
``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``), and one JSON envelope::

    {"type": "order.placed", "timestamp": "2026-11-27T09:29:58+00:00", "data": {...}}

``type`` names the event, ``timestamp`` is when the SENDER observed it (ISO 8601, its own clock;
used as ``observed_at`` for stock so older reports never overwrite newer ones) and ``data`` is the
event's own shape, documented in each artifact's README.

This module may import only ``connectors.base``, ``connectors.errors`` and ``connectors.signatures``
(it is shared by several connectors, which must stay independent of each other).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from backorder.connectors.base import InboundIdentity, InboundRequest
from backorder.connectors.errors import InvalidSignature, MalformedPayload
from backorder.connectors.signatures import (
    DEFAULT_TOLERANCE_SECONDS,
    STANDARD_WEBHOOK_ID_HEADER,
    verify_standard_webhook,
)

__all__ = [
    "Envelope",
    "as_int",
    "as_text",
    "identify_standard",
    "parse_envelope",
    "parse_time",
    "verify_signed",
]


@dataclass(frozen=True)
class Envelope:
    type: str
    timestamp: datetime
    data: Mapping[str, Any]


def verify_signed(
    request: InboundRequest,
    secrets: Sequence[str],
    *,
    now: Callable[[], datetime] | None = None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Verify a Standard Webhooks request against any of ``secrets`` (key rotation), ±``tolerance``
    seconds around ``now`` (default: the request's arrival time)."""
    if not secrets:
        raise InvalidSignature("no webhook secret is configured for this channel")
    moment = now() if now is not None else request.received_at
    verify_standard_webhook(request.body, request.headers, list(secrets), int(moment.timestamp()), tolerance)


def identify_standard(request: InboundRequest) -> InboundIdentity:
    """The inbox key is the sender's ``webhook-id`` (our senders make it stable per business event,
    so a re-sent event is a duplicate); the topic is the envelope's ``type``."""
    msg_id = request.headers.get(STANDARD_WEBHOOK_ID_HEADER, "").strip()
    if not msg_id:
        raise InvalidSignature(f"missing {STANDARD_WEBHOOK_ID_HEADER} header")
    try:
        topic = str(json.loads(request.body).get("type") or "")
    except (ValueError, AttributeError):
        topic = ""
    return InboundIdentity(event_key=msg_id, topic=topic or "unknown")


def parse_envelope(body: bytes) -> Envelope:
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise MalformedPayload("body is not JSON", status_code=400) from exc
    if not isinstance(payload, dict):
        raise MalformedPayload("body must be a JSON object with type, timestamp and data")
    kind = payload.get("type")
    data = payload.get("data")
    if not isinstance(kind, str) or not kind:
        raise MalformedPayload("missing event type")
    if not isinstance(data, dict):
        raise MalformedPayload(f"{kind}: missing data object")
    return Envelope(kind, parse_time(payload.get("timestamp"), "timestamp"), data)


def parse_time(value: Any, field: str) -> datetime:
    """ISO 8601 (``Z`` or an offset) or Magento's ``YYYY-MM-DD HH:MM:SS`` (UTC) → aware UTC."""
    if not isinstance(value, str) or not value.strip():
        raise MalformedPayload(f"{field} must be an ISO 8601 date-time")
    text = value.strip().replace("Z", "+00:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise MalformedPayload(f"{field} is not an ISO 8601 date-time: {value[:40]!r}") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def as_text(item: Mapping[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise MalformedPayload(f"{where}: {key} is missing")
    return value.strip()


def as_int(item: Mapping[str, Any], key: str, where: str) -> int:
    """Whole numbers; platforms send quantities as ``2``, ``2.0`` or ``"2.0000"``."""
    value = item.get(key)
    try:
        number = float(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None or number != int(number):
        raise MalformedPayload(f"{where}: {key} must be a whole number, got {str(value)[:20]!r}")
    return int(number)
