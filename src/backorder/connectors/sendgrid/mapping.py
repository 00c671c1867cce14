"""Our message as a SendGrid v3 ``/v3/mail/send`` body; their events as our delivery statuses."""

from __future__ import annotations

from typing import Any

from backorder.connectors.base import OutboundMessage

MESSAGE_ID_ARG = "bo_message_id"

# https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event (delivery events)
EVENT_STATUS = {
    "delivered": "delivered",
    "bounce": "bounced",
    "dropped": "failed",
    "deferred": None,  # still trying: not final
    "processed": None,
    "spamreport": "complained",
}


def mail_send_body(message: OutboundMessage, from_email: str, from_name: str) -> dict[str, Any]:
    sender: dict[str, Any] = {"email": from_email}
    if from_name:
        sender["name"] = from_name
    content = [{"type": "text/plain", "value": message.text}]
    if message.html:
        content.append({"type": "text/html", "value": message.html})
    body: dict[str, Any] = {
        "personalizations": [{"to": [{"email": message.to}], "custom_args": {MESSAGE_ID_ARG: message.message_id}}],
        "from": sender,
        "subject": message.subject,
        "content": content,
        "categories": ["backorder", message.template or "message"],
        "headers": {"X-Backorder-Message-Id": message.message_id, **dict(message.headers)},
    }
    return body


def event_updates(events: list[dict[str, Any]]) -> list[tuple[str | None, str | None, str, str, str | None]]:
    """``(our message id, provider ref, status, event, email)`` per event that changes a status."""
    found = []
    for event in events:
        kind = str(event.get("event", ""))
        status = EVENT_STATUS.get(kind)
        if kind == "bounce" and event.get("type") == "blocked":
            kind, status = "blocked", "failed"  # the receiving server refused the sender, not the address
        if status is None:
            continue
        ref = event.get("sg_message_id")
        ref = str(ref).split(".", 1)[0] if ref else None
        found.append((event.get(MESSAGE_ID_ARG), ref, status, kind, event.get("email")))
    return found
