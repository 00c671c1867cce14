"""A customer's channel preference (email, SMS, both, none) and SMS consent, per order.

The default, when nothing is recorded, comes from the order: email when it has an address, SMS
when it has only a phone number *and* consent is recorded. ``[messages] sms_consent_from_order =
true`` says the shop's checkout collects SMS consent with the phone number (the demo does), so a
phone on the order counts as consent. The customer changes it with :func:`set_preference` (the
self-service page calls it) or a signed link (``/hooks/preferences/{token}``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from backorder.notify.state import CHANNELS, MessagingState, Preference

__all__ = ["CHANNELS", "Preference", "Recipients", "resolve", "set_preference"]


def set_preference(
    engine: Engine,
    order_id: str,
    channel: str | None = None,
    *,
    sms_consent: bool | None = None,
    source: str = "customer",
    now: datetime | None = None,
) -> Preference:
    """Record how the customer of ``order_id`` wants to hear from us.

    ``channel`` is one of email, sms, both, none (None keeps the current one); ``sms_consent``
    records (True) or withdraws (False) consent to SMS (None keeps it). Raises ValueError for an
    unknown channel."""
    return MessagingState(engine).set_preference(order_id, channel, sms_consent, source, now or datetime.now(UTC))


@dataclass(frozen=True)
class Recipients:
    email: str | None
    phone: str | None
    reason: str = ""


def resolve(
    preference: Preference | None,
    email: str | None,
    phone: str | None,
    *,
    consent_from_order: bool,
    suppressed: set[str] | frozenset[str] = frozenset(),
) -> Recipients:
    """Which of the order's addresses get this message. ``suppressed`` holds the addresses
    (as given) that are on the suppression list."""
    consent = preference.sms_consent if preference is not None else False
    consent = consent or (consent_from_order and phone is not None and preference is None)
    if preference is not None:
        channel = preference.channel
    elif email:
        channel = "email"
    elif phone:
        channel = "sms"
    else:
        return Recipients(None, None, "no email address or phone number on the order")
    if channel == "none":
        return Recipients(None, None, "the customer chose no messages")
    to_email = email if channel in ("email", "both") and email and email not in suppressed else None
    to_phone = phone if channel in ("sms", "both") and phone and consent and phone not in suppressed else None
    reasons = []
    if channel in ("email", "both") and not to_email:
        reasons.append("email address missing or suppressed")
    if channel in ("sms", "both") and not to_phone:
        reasons.append("phone missing, suppressed or no SMS consent recorded")
    return Recipients(to_email, to_phone, "; ".join(reasons))


def has_sms_consent(preference: Preference | None, phone: str | None, *, consent_from_order: bool) -> bool:
    if not phone:
        return False
    if preference is not None:
        return preference.sms_consent or (consent_from_order and preference.source == "order")
    return consent_from_order
