"""Messaging state kept in the database: the link-signing key, channel preferences and SMS
consent, suppressed addresses, per-message delivery status and the ETA each customer was last
told. Tables are created by migration 0003 (``store/tables.py``, issue 4 section); they are named
here with lightweight ``sqlalchemy.table`` clauses because ``notify`` sits beside ``store`` in the
layer diagram and may not import it."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Engine,
    Integer,
    String,
    Text,
    column,
    insert,
    or_,
    select,
    table,
    update,
)
from sqlalchemy.exc import IntegrityError

from backorder.notify.debounce import Told

_settings = table("message_settings", column("key", String), column("value", Text))
_prefs = table(
    "message_preferences",
    column("order_id", String),
    column("channel", String),
    column("sms_consent", Boolean),
    column("source", String),
    column("updated_at", DateTime(timezone=True)),
)
_suppressions = table(
    "suppressions",
    column("address", String),
    column("kind", String),
    column("reason", String),
    column("source", String),
    column("created_at", DateTime(timezone=True)),
    column("confirmed_at", DateTime(timezone=True)),
)
_status = table(
    "message_status",
    column("message_id", String),
    column("outbox_id", Integer),
    column("channel", String),
    column("provider", String),
    column("provider_ref", String),
    column("status", String),
    column("detail", Text),
    column("updated_at", DateTime(timezone=True)),
)
_eta = table(
    "eta_notices",
    column("order_id", String),
    column("line_no", Integer),
    column("eta", Date),
    column("notified_at", DateTime(timezone=True)),
    column("reserved", Boolean),
)
_slots = table(
    "eta_slots",
    column("order_id", String),
    column("outbox_id", Integer),
    column("claimed_at", DateTime(timezone=True)),
)

CHANNELS = ("email", "sms", "both", "none")
FINAL_STATUSES = ("delivered", "bounced", "failed", "undelivered", "complained")
_NOT_PHONE = re.compile(r"[^\d+]")


def normalise_address(address: str) -> str:
    """Email addresses lower-cased; phone numbers reduced to ``+`` and digits (E.164 as sent)."""
    address = address.strip()
    if "@" in address:
        return address.lower()
    return _NOT_PHONE.sub("", address)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given where UTC is required")
    return value.astimezone(UTC)


def _read_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _bind(engine: Engine, value: datetime) -> datetime:
    # SQLite keeps no zone: store naive UTC, as store.tables.UtcDateTime does.
    value = _utc(value)
    return value.replace(tzinfo=None) if engine.dialect.name == "sqlite" else value


@dataclass(frozen=True)
class Preference:
    order_id: str
    channel: str  # email | sms | both | none
    sms_consent: bool
    source: str


@dataclass(frozen=True)
class MessageRecord:
    message_id: str
    outbox_id: int | None
    channel: str
    provider: str
    provider_ref: str | None
    status: str


class MessagingState:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- settings ------------------------------------------------------------------------------

    def setting(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(_settings.c.value).where(_settings.c.key == key)).scalar_one_or_none()

    def claim_setting(self, key: str, value: str) -> bool:
        """Insert ``key`` once; False when it already exists (another process got there first)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(_settings).values(key=key, value=value))
            return True
        except IntegrityError:
            return False

    def secret_key(self, configured: str | None) -> str:
        """The configured secret, else one generated on first use and kept in the database."""
        if configured:
            return configured
        found = self.setting("secret_key")
        if found:
            return found
        self.claim_setting("secret_key", secrets.token_urlsafe(32))
        found = self.setting("secret_key")
        assert found is not None
        return found

    # --- preferences ---------------------------------------------------------------------------

    def preference(self, order_id: str) -> Preference | None:
        p = _prefs.c
        with self.engine.connect() as conn:
            r = conn.execute(select(_prefs).where(p.order_id == order_id)).first()
        return Preference(r.order_id, r.channel, bool(r.sms_consent), r.source) if r else None

    def set_preference(
        self, order_id: str, channel: str | None, sms_consent: bool | None, source: str, now: datetime
    ) -> Preference:
        if channel is not None and channel not in CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(CHANNELS)}")
        p = _prefs.c
        with self.engine.begin() as conn:
            r = conn.execute(select(_prefs).where(p.order_id == order_id)).first()
            if r is None:
                values = {
                    "order_id": order_id,
                    "channel": channel or "email",
                    "sms_consent": bool(sms_consent),
                    "source": source,
                    "updated_at": _bind(self.engine, now),
                }
                conn.execute(insert(_prefs).values(**values))
            else:
                values = {
                    "channel": channel or r.channel,
                    "sms_consent": bool(r.sms_consent) if sms_consent is None else sms_consent,
                    "source": source,
                    "updated_at": _bind(self.engine, now),
                }
                conn.execute(update(_prefs).where(p.order_id == order_id).values(**values))
        found = self.preference(order_id)
        assert found is not None
        return found

    # --- suppressions ----------------------------------------------------------------------------

    def is_suppressed(self, address: str) -> bool:
        s = _suppressions.c
        with self.engine.connect() as conn:
            return conn.execute(select(s.address).where(s.address == normalise_address(address))).first() is not None

    def suppress(self, address: str, kind: str, reason: str, source: str, now: datetime) -> bool:
        """Suppress an address at once; True when it was not suppressed before."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(_suppressions).values(
                        address=normalise_address(address),
                        kind=kind,
                        reason=reason,
                        source=source,
                        created_at=_bind(self.engine, now),
                        confirmed_at=None,
                    )
                )
            return True
        except IntegrityError:
            return False

    def lift_suppression(self, address: str) -> bool:
        """A customer opted back in (e.g. Twilio START): the address may be messaged again."""
        from sqlalchemy import delete

        with self.engine.begin() as conn:
            done = conn.execute(delete(_suppressions).where(_suppressions.c.address == normalise_address(address)))
            return bool(done.rowcount)

    def confirmation_pending(self, address: str) -> bool:
        """Suppressed and not yet told so (the one confirmation may still be sent)."""
        s = _suppressions.c
        with self.engine.connect() as conn:
            r = conn.execute(select(s.confirmed_at).where(s.address == normalise_address(address))).first()
        return r is not None and r.confirmed_at is None

    def take_confirmation(self, address: str, now: datetime) -> bool:
        """True exactly once per suppression: the one confirmation message may be sent."""
        s = _suppressions.c
        with self.engine.begin() as conn:
            done = conn.execute(
                update(_suppressions)
                .where(s.address == normalise_address(address), s.confirmed_at.is_(None))
                .values(confirmed_at=_bind(self.engine, now))
            )
            return done.rowcount == 1

    def suppressions(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(_suppressions).order_by(_suppressions.c.created_at))]

    # --- delivery status ------------------------------------------------------------------------

    def record_sent(
        self, message_id: str, outbox_id: int, channel: str, provider: str, provider_ref: str | None, now: datetime
    ) -> None:
        s = _status.c
        values = {
            "outbox_id": outbox_id,
            "channel": channel,
            "provider": provider,
            "provider_ref": provider_ref,
            "status": "sent",
            "detail": None,
            "updated_at": _bind(self.engine, now),
        }
        with self.engine.begin() as conn:
            done = conn.execute(update(_status).where(s.message_id == message_id).values(**values))
            if done.rowcount == 0:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(_status).values(message_id=message_id, **values))
                except IntegrityError:  # a concurrent duplicate delivery recorded it first
                    pass

    def find_message(self, message_id: str | None = None, provider_ref: str | None = None) -> MessageRecord | None:
        s = _status.c
        q = select(_status)
        if message_id:
            q = q.where(s.message_id == message_id)
        elif provider_ref:
            q = q.where(s.provider_ref == provider_ref)
        else:
            return None
        with self.engine.connect() as conn:
            r = conn.execute(q.limit(1)).first()
        return MessageRecord(r.message_id, r.outbox_id, r.channel, r.provider, r.provider_ref, r.status) if r else None

    def update_status(self, message_id: str, status: str, detail: str | None, now: datetime) -> None:
        s = _status.c
        with self.engine.begin() as conn:
            conn.execute(
                update(_status)
                .where(s.message_id == message_id)
                .values(status=status, detail=(detail or "")[:2000] or None, updated_at=_bind(self.engine, now))
            )

    def statuses(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            return {r.message_id: r.status for r in conn.execute(select(_status.c.message_id, _status.c.status))}

    # --- ETA notices ----------------------------------------------------------------------------

    def eta_notices(self, order_id: str) -> dict[int, Told]:
        e = _eta.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(e.line_no, e.eta, e.notified_at, e.reserved).where(e.order_id == order_id)).all()
        return {
            r.line_no: Told(r.eta, _read_utc(r.notified_at) or datetime.min.replace(tzinfo=UTC), bool(r.reserved))
            for r in rows
        }

    def record_eta_notices(
        self, order_id: str, etas: dict[int, date | None], now: datetime, *, reserved: bool = False
    ) -> None:
        """What the customer was just told per line: its ETA, or (``reserved``) that its units are
        reserved for them."""
        e = _eta.c
        at = _bind(self.engine, now)
        told = {"notified_at": at, "reserved": reserved}
        with self.engine.begin() as conn:
            for line_no, eta in sorted(etas.items()):
                done = conn.execute(
                    update(_eta).where(e.order_id == order_id, e.line_no == line_no).values(eta=eta, **told)
                )
                if done.rowcount == 0:
                    try:
                        with conn.begin_nested():
                            conn.execute(insert(_eta).values(order_id=order_id, line_no=line_no, eta=eta, **told))
                    except IntegrityError:
                        conn.execute(
                            update(_eta).where(e.order_id == order_id, e.line_no == line_no).values(eta=eta, **told)
                        )

    def claim_eta_slot(self, order_id: str, outbox_id: int, now: datetime, interval: timedelta) -> datetime | None:
        """Claim the order's ETA-message slot for outbox row ``outbox_id``: None when claimed
        (free, expired, or already this row's: a retry after a crash), else when the holder's
        interval ends. A conditional UPDATE, or the primary key on INSERT, lets one of two
        concurrent claims win on PostgreSQL and SQLite alike."""
        s = _slots.c
        at = _bind(self.engine, now)
        with self.engine.begin() as conn:
            done = conn.execute(
                update(_slots)
                .where(
                    s.order_id == order_id,
                    or_(s.claimed_at <= _bind(self.engine, now - interval), s.outbox_id == outbox_id),
                )
                .values(outbox_id=outbox_id, claimed_at=at)
            )
            if done.rowcount == 1:
                return None
            try:
                with conn.begin_nested():
                    conn.execute(insert(_slots).values(order_id=order_id, outbox_id=outbox_id, claimed_at=at))
                return None
            except IntegrityError:
                held = conn.execute(select(s.claimed_at).where(s.order_id == order_id)).scalar_one()
        claimed = _read_utc(held)
        assert claimed is not None
        return claimed + interval
