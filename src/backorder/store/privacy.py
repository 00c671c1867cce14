"""Privacy requests. :func:`customer_data` answers a data request; :func:`scrub` is a redaction
request's reach beyond the orders' contact columns (Shopify ``customers/redact`` and
``shop/redact``): every other copy of the customer's personal data the store keeps goes too, in the
same transaction as the orders' contact columns are cleared (``SqlOrders.redact_customer``).

- **Inbox**: the raw webhook bodies of the channel that concern the customer (their email or phone
  appears in the body, or the body is one of the redacted orders) are replaced by
  ``{"redacted":true}``; the privacy request's own body too. A row that was never processed (or
  failed) is not processed any more: it is ``ignored``, with the reason.
- **Sandbox messages** sent to the customer's addresses are deleted.
- **Delivery details** (provider answers kept with attempts and message statuses) that quote an
  address are replaced by a marker.

What stays: the suppression list keeps an address that opted out or bounced (it is what stops
messages to it; removing it would let the next order mail them again), and the sandbox folder's
files (a demo and test aid, not a production store).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, and_, delete, func, or_, select, update

from backorder.store import tables as t

REDACTED_BODY = b'{"redacted":true}'
REDACTED_DETAIL = "[personal data removed by a privacy request]"
REDACTED_REASON = "personal data removed by a privacy request; not processed"
_BATCH = 500
_MIN_PHONE_CHARS = 7  # shorter "phones" would match unrelated bodies


def _order_pattern(external_ids: Iterable[str]) -> re.Pattern[bytes] | None:
    """A JSON body whose id field is one of these order ids (``"id": 1001``, ``"order_no": "00001234"``)."""
    ids = sorted({i for i in external_ids if i})
    if not ids:
        return None
    alternatives = b"|".join(re.escape(i.encode()) for i in ids)
    return re.compile(
        rb'"(?:id|order_id|increment_id|order_increment_id|order_no|orderNo)"\s*:\s*"?(?:'
        + alternatives
        + rb')"?\s*[,}\]]'
    )


def identifiers(emails: Iterable[str | None], phones: Iterable[str | None]) -> set[str]:
    """The strings that identify the customer in stored text: emails (lower-cased) and phone numbers."""
    found = {e.strip().lower() for e in emails if e and e.strip()}
    found |= {p.strip() for p in phones if p and len(p.strip()) >= _MIN_PHONE_CHARS}
    return found


def scrub(conn: Connection, channel: str, known_as: set[str], external_ids: set[str], whole_channel: bool) -> int:
    """Remove the copies described above; returns how many inbox rows were scrubbed."""
    scrubbed = _scrub_inbox(conn, channel, known_as, external_ids, whole_channel)
    if known_as:
        sandbox = t.sandbox_messages.c
        conn.execute(delete(t.sandbox_messages).where(func.lower(sandbox.recipient).in_(sorted(known_as))))
        for table in (t.delivery_attempts, t.message_status):
            detail = table.c.detail
            quoted = or_(*(func.lower(detail).contains(x, autoescape=True) for x in sorted(known_as)))
            conn.execute(update(table).where(detail.is_not(None), quoted).values(detail=REDACTED_DETAIL))
    return scrubbed


def _webhooks(conn: Connection, where: ColumnElement[bool]) -> Iterator[Row[Any]]:
    """The inbox rows ``where`` holds, in id order, a batch per query (bodies can be large)."""
    i = t.inbox.c
    last = 0
    while True:
        rows = conn.execute(
            select(i.id, i.platform, i.channel, i.topic, i.status, i.received_at, i.body)
            .where(where, i.id > last)
            .order_by(i.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        last = rows[-1].id
        yield from rows


def _mentions(body: bytes, needles: list[bytes], order: re.Pattern[bytes] | None) -> bool:
    lowered = body.lower()
    return any(n in lowered for n in needles) or (order is not None and order.search(body) is not None)


def _scrub_inbox(
    conn: Connection, channel: str, known_as: set[str], external_ids: set[str], whole_channel: bool
) -> int:
    i = t.inbox.c
    needles = [x.encode() for x in known_as]
    order = _order_pattern(external_ids)
    matched = [
        row.id
        for row in _webhooks(conn, and_(i.channel == channel, i.body != REDACTED_BODY))
        if whole_channel or _mentions(bytes(row.body), needles, order)
    ]
    for start in range(0, len(matched), _BATCH):
        chunk = matched[start : start + _BATCH]
        conn.execute(
            update(t.inbox)
            .where(i.id.in_(chunk), i.status.in_(["received", "failed"]))
            .values(status="ignored", error=REDACTED_REASON)
        )
        conn.execute(update(t.inbox).where(i.id.in_(chunk)).values(body=REDACTED_BODY))
    return len(matched)


def customer_data(conn: Connection, email: str, channel: str | None = None) -> dict[str, Any]:
    """Everything the store holds about the customer with this email (a data request: Shopify
    ``customers/data_request``, or one made to the shop directly): their orders with contact
    fields and lines, message preferences, suppressions, the messages the sandbox recorded, and
    the raw webhooks that mention them."""
    o, c = t.orders.c, t.order_lines.c
    where = func.lower(o.customer_email) == email.strip().lower()
    if channel is not None:
        where = and_(where, o.channel == channel)
    orders = [dict(r._mapping) for r in conn.execute(select(t.orders).where(where).order_by(o.placed_at, o.id))]
    ids = [order["id"] for order in orders]
    lines: dict[str, list[dict[str, Any]]] = {}
    if ids:
        for r in conn.execute(
            select(c.order_id, c.line_no, c.sku, c.quantity, c.allocated, c.shipped, c.backordered, c.status, c.eta)
            .where(c.order_id.in_(ids))
            .order_by(c.order_id, c.line_no)
        ):
            lines.setdefault(r.order_id, []).append({k: v for k, v in r._mapping.items() if k != "order_id"})
    for order in orders:
        order["lines"] = lines.get(order["id"], [])
    known_as = identifiers([email], (order["customer_phone"] for order in orders))
    p, s, m = t.message_preferences.c, t.suppressions.c, t.sandbox_messages.c
    preferences = (
        [dict(r._mapping) for r in conn.execute(select(t.message_preferences).where(p.order_id.in_(ids)))]
        if ids
        else []
    )
    suppressions = [
        dict(r._mapping) for r in conn.execute(select(t.suppressions).where(s.address.in_(sorted(known_as))))
    ]
    messages = [
        dict(r._mapping)
        for r in conn.execute(
            select(m.kind, m.template, m.recipient, m.subject, m.body, m.created_at)
            .where(func.lower(m.recipient).in_(sorted(known_as)))
            .order_by(m.id)
        )
    ]
    i = t.inbox.c
    needles = [x.encode() for x in known_as]
    webhooks = [
        {k: v for k, v in row._mapping.items() if k != "body"} | {"body": bytes(row.body).decode("utf-8", "replace")}
        for row in _webhooks(conn, i.channel == channel if channel is not None else i.id.is_not(None))
        if _mentions(bytes(row.body), needles, None)
    ]
    return {
        "email": email.strip().lower(),
        "orders": orders,
        "message_preferences": preferences,
        "suppressions": suppressions,
        "messages": messages,
        "webhooks": webhooks,
    }
