"""Privacy requests. :func:`customer_data` answers a data request; :func:`scrub` is a redaction
request's reach beyond the orders' contact columns (Shopify ``customers/redact`` and
``shop/redact``): every other copy of the customer's personal data the store keeps goes too, in the
same transaction as the orders' contact columns are cleared (``SqlOrders.redact_customer``).

- **Inbox**: the raw webhook bodies of the channel that concern the customer (one of their
  orders by its order-id field, or a body holding their email or phone as a whole value) are
  replaced by ``{"redacted":true}``; the privacy request's own body too. A row that was never
  processed (or failed) is not processed any more: it is ``ignored``, with the reason.
- **Sandbox messages** sent to the customer's addresses are deleted.
- **Delivery details** (provider answers kept with attempts and message statuses) that quote the
  customer's email are replaced by a marker.

Matching compares whole values, never parts of one: redacting ``bob@shop.co`` leaves
``jimbob@shop.com``'s order alone, and an order id counts only in an order-id field, not as a line
item's ``id``. Phones compare by their digits (``+44 7700 900123`` is ``+447700900123``).

What stays: the suppression list keeps an address that opted out or bounced (it is what stops
messages to it; removing it would let the next order mail them again), and the sandbox folder's
files (a demo and test aid, not a production store).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, and_, delete, func, or_, select, update

from backorder.store import tables as t

REDACTED_BODY = b'{"redacted":true}'
REDACTED_DETAIL = "[personal data removed by a privacy request]"
REDACTED_REASON = "personal data removed by a privacy request; not processed"
_BATCH = 500
_MIN_PHONE_DIGITS = 7  # shorter "phones" would match unrelated numbers
_ORDER_ID_KEYS = ("id", "order_id", "increment_id", "order_increment_id", "order_no", "orderNo")
_ENVELOPES = ("data", "order")  # Standard Webhooks / cartridge envelopes, Magento's {"order": …}


def _phone(text: str) -> str:
    """A phone number as compared: its digits, with a leading + kept."""
    digits = "".join(ch for ch in text if ch.isdigit())
    return ("+" if text.strip().startswith("+") else "") + digits


@dataclass(frozen=True)
class Customer:
    """What identifies one customer in stored text."""

    emails: frozenset[str]  # lower-cased
    phones: frozenset[str]  # as _phone() gives them
    order_ids: frozenset[str] = frozenset()  # the platform's own order ids (ours without "<channel>-")

    def concerns(self, body: bytes) -> bool:
        """Whether this raw JSON body is one of the customer's orders or holds their email or
        phone as a whole value. A body that is not JSON is nobody's (nothing can be told)."""
        try:
            data: Any = json.loads(body)
        except (ValueError, RecursionError):
            return False
        if self.order_ids and _order_ids(data) & self.order_ids:
            return True
        for value in _strings(data):
            text = value.strip()
            if text.lower() in self.emails:
                return True
            if self.phones and len(text) <= 40 and _phone(text) in self.phones:
                return True
        return False

    def quoted_in(self, text: str) -> bool:
        """Whether a free text (a provider's answer) quotes one of the emails as a whole address."""
        lowered = text.lower()
        return any(re.search(rf"(?<![\w.+-]){re.escape(e)}(?![\w.-])", lowered) for e in self.emails)


def customer(emails: Iterable[str | None], phones: Iterable[str | None], order_ids: Iterable[str] = ()) -> Customer:
    numbers = (_phone(p) for p in phones if p)
    return Customer(
        frozenset(e.strip().lower() for e in emails if e and e.strip()),
        frozenset(n for n in numbers if sum(ch.isdigit() for ch in n) >= _MIN_PHONE_DIGITS),
        frozenset(i for i in order_ids if i),
    )


def _order_ids(data: Any) -> set[str]:
    """The order ids a body names in its order-id fields, at the top or inside its envelope."""
    found: set[str] = set()
    scopes = [data, *(data.get(k) for k in _ENVELOPES)] if isinstance(data, dict) else []
    for obj in scopes:
        if not isinstance(obj, dict):
            continue
        for key in _ORDER_ID_KEYS:
            value = obj.get(key)
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                found.add(str(value))
        gid = obj.get("admin_graphql_api_id")
        if isinstance(gid, str) and gid.startswith("gid://shopify/Order/"):
            found.add(gid.rsplit("/", 1)[-1])
    return found


def _strings(data: Any) -> Iterator[str]:
    """Every string value in a JSON document, without recursion (bodies may nest deeply)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def scrub(conn: Connection, channel: str, who: Customer, whole_channel: bool) -> int:
    """Remove the copies described above; returns how many inbox rows were scrubbed."""
    scrubbed = _scrub_inbox(conn, channel, who, whole_channel)
    m = t.sandbox_messages.c
    gone = [
        r.id
        for r in conn.execute(select(m.id, m.kind, m.recipient).where(m.kind.in_(["email", "sms"])))
        if (r.recipient.strip().lower() in who.emails if r.kind == "email" else _phone(r.recipient) in who.phones)
    ]
    for start in range(0, len(gone), _BATCH):
        conn.execute(delete(t.sandbox_messages).where(m.id.in_(gone[start : start + _BATCH])))
    if who.emails:
        for table, key in (
            (t.delivery_attempts, t.delivery_attempts.c.id),
            (t.message_status, t.message_status.c.message_id),
        ):
            detail = table.c.detail
            # a LIKE finds the candidates; only a whole address counts (not jimbob@ for bob@)
            like = or_(*(func.lower(detail).contains(e, autoescape=True) for e in sorted(who.emails)))
            rows = conn.execute(select(key, detail).where(detail.is_not(None), like)).all()
            quoted = [r[0] for r in rows if who.quoted_in(r[1])]
            for start in range(0, len(quoted), _BATCH):
                chunk = quoted[start : start + _BATCH]
                conn.execute(update(table).where(key.in_(chunk)).values(detail=REDACTED_DETAIL))
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


def _scrub_inbox(conn: Connection, channel: str, who: Customer, whole_channel: bool) -> int:
    i = t.inbox.c
    matched = [
        row.id
        for row in _webhooks(conn, and_(i.channel == channel, i.body != REDACTED_BODY))
        if whole_channel or who.concerns(bytes(row.body))
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
    the raw webhooks that are their orders or hold their email or phone."""
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
    phones = [order["customer_phone"] for order in orders]
    who = customer([email], phones)
    by_channel = {
        ch: customer([email], phones, (o["id"].removeprefix(f"{ch}-") for o in orders if o["channel"] == ch))
        for ch in {o["channel"] for o in orders}
    }
    p, m = t.message_preferences.c, t.sandbox_messages.c
    preferences = (
        [dict(r._mapping) for r in conn.execute(select(t.message_preferences).where(p.order_id.in_(ids)))]
        if ids
        else []
    )
    suppressions = [
        dict(r._mapping)
        for r in conn.execute(select(t.suppressions))
        if r.address.strip().lower() in who.emails or _phone(r.address) in who.phones
    ]
    messages = [
        dict(r._mapping)
        for r in conn.execute(
            select(m.kind, m.template, m.recipient, m.subject, m.body, m.created_at)
            .where(m.kind.in_(["email", "sms"]))
            .order_by(m.id)
        )
        if (r.recipient.strip().lower() in who.emails if r.kind == "email" else _phone(r.recipient) in who.phones)
    ]
    i = t.inbox.c
    webhooks = [
        {k: v for k, v in row._mapping.items() if k != "body"} | {"body": bytes(row.body).decode("utf-8", "replace")}
        for row in _webhooks(conn, i.channel == channel if channel is not None else i.id.is_not(None))
        if by_channel.get(row.channel, who).concerns(bytes(row.body))
    ]
    return {
        "email": email.strip().lower(),
        "orders": orders,
        "message_preferences": preferences,
        "suppressions": suppressions,
        "messages": messages,
        "webhooks": webhooks,
    }
