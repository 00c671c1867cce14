"""Our SMS as Twilio Messages form fields; their callbacks as our statuses and opt-outs."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from backorder.connectors.base import OutboundMessage

# https://www.twilio.com/docs/messaging/guides/track-outbound-message-status
STATUS = {"delivered": "delivered", "undelivered": "undelivered", "failed": "failed", "sent": None}

OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})


def with_message_id(url: str, message_id: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "bo"] + [("bo", message_id)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def message_fields(
    message: OutboundMessage, from_number: str | None, service_sid: str | None, callback: str | None
) -> dict[str, str]:
    fields = {"To": message.to, "Body": message.text}
    if service_sid:
        fields["MessagingServiceSid"] = service_sid
    else:
        fields["From"] = from_number or ""
    if callback:
        fields["StatusCallback"] = with_message_id(callback, message.message_id)
    return fields


def is_opt_out(body: str) -> bool:
    """Twilio's standard opt-out keywords, any case, as the whole message (trimmed)."""
    return " ".join(body.upper().split()) in OPT_OUT_WORDS


def is_opt_in(body: str) -> bool:
    return " ".join(body.upper().split()) in OPT_IN_WORDS


def status_update(params: Mapping[str, str]) -> tuple[str | None, str | None, str] | None:
    """``(provider ref, raw status, our status)`` from a status callback, or None when not final."""
    raw = params.get("MessageStatus") or params.get("SmsStatus") or ""
    status = STATUS.get(raw)
    if status is None:
        return None
    return params.get("MessageSid") or params.get("SmsSid"), raw, status
