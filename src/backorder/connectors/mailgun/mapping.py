"""Our message as Mailgun ``/v3/{domain}/messages`` form fields; their events as our statuses."""

from __future__ import annotations

from typing import Any

from backorder.connectors.base import OutboundMessage

MESSAGE_ID_VAR = "bo_message_id"

# https://documentation.mailgun.com/docs/mailgun/user-manual/events/ (event types)
EVENT_STATUS = {"delivered": "delivered", "failed": "failed", "complained": "complained", "unsubscribed": None}


def message_fields(message: OutboundMessage, sender: str) -> list[tuple[str, str]]:
    fields = [
        ("from", sender),
        ("to", message.to),
        ("subject", message.subject),
        ("text", message.text),
    ]
    if message.html:
        fields.append(("html", message.html))
    fields += [
        ("o:tag", "backorder"),
        ("o:tag", message.template or "message"),
        (f"v:{MESSAGE_ID_VAR}", message.message_id),
        ("h:X-Backorder-Message-Id", message.message_id),
    ]
    fields += [(f"h:{name}", value) for name, value in message.headers.items()]
    return fields


def event_update(payload: dict[str, Any]) -> tuple[str | None, str | None, str, str, str | None] | None:
    """``(our message id, provider ref, status, event, recipient)`` from a webhook body."""
    data = payload.get("event-data") or {}
    kind = str(data.get("event", ""))
    status = EVENT_STATUS.get(kind)
    if kind == "failed" and data.get("severity") == "permanent":
        status = "bounced"
    elif kind == "failed":
        status = None  # temporary: Mailgun retries by itself
    if status is None:
        return None
    variables = data.get("user-variables") or {}
    headers = (data.get("message") or {}).get("headers") or {}
    ref = headers.get("message-id")
    return variables.get(MESSAGE_ID_VAR), ref, status, kind, data.get("recipient")
