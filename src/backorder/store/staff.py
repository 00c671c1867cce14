"""SQL for the staff area (issue 5): users, sessions, login throttling, API keys, the audit log,
persisted secrets, and the read queries behind the dashboard, the API and the self-service page.

Writes are short transactions of their own; reads are read-only. Nothing here changes order or
stock state: that goes through the message bus."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, and_, case, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from backorder.store import tables as t
from backorder.store.engine import READ_ONLY

# --- users, sessions, throttling, keys, audit, secrets ---------------------------------------


@dataclass(frozen=True)
class UserRow:
    id: int
    username: str
    password_hash: str
    role: str
    active: bool


@dataclass(frozen=True)
class SessionRow:
    user_id: int
    username: str
    role: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class ApiKeyRow:
    id: int
    prefix: str
    key_hash: str
    name: str
    scopes: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class StaffStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # users
    def add_user(self, username: str, password_hash: str, role: str, now: datetime) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                insert(t.staff_users).values(
                    username=username, password_hash=password_hash, role=role, active=True, created_at=now
                )
            )
            return int(result.inserted_primary_key[0])

    def set_user(self, username: str, *, password_hash: str | None = None, role: str | None = None) -> int | None:
        """Change a user's password and/or role (None keeps it). Either change also deletes the
        user's sessions in the same transaction: whoever was signed in as them must sign in again
        (with the new password, under the new role). Returns the number of sessions ended, or None
        for an unknown user."""
        values: dict[str, Any] = {}
        if password_hash is not None:
            values["password_hash"] = password_hash
        if role is not None:
            values["role"] = role
        u = t.staff_users.c
        with self.engine.begin() as conn:
            user_id = conn.execute(select(u.id).where(u.username == username)).scalar()
            if user_id is None:
                return None
            if not values:
                return 0
            conn.execute(update(t.staff_users).where(u.id == user_id).values(**values))
            ended = conn.execute(delete(t.staff_sessions).where(t.staff_sessions.c.user_id == user_id))
            return int(ended.rowcount or 0)

    def set_active(self, username: str, active: bool) -> int | None:
        """Enable or disable a user. Disabling also deletes their sessions (so a signed-in browser
        is signed out at once). Returns the number of sessions deleted, or None for an unknown user."""
        u = t.staff_users.c
        with self.engine.begin() as conn:
            user_id = conn.execute(select(u.id).where(u.username == username)).scalar()
            if user_id is None:
                return None
            conn.execute(update(t.staff_users).where(u.id == user_id).values(active=active))
            if active:
                return 0
            ended = conn.execute(delete(t.staff_sessions).where(t.staff_sessions.c.user_id == user_id))
            return int(ended.rowcount or 0)

    def user(self, username: str) -> UserRow | None:
        u = t.staff_users.c
        with self.engine.connect() as conn:
            r = conn.execute(select(t.staff_users).where(u.username == username)).first()
        return UserRow(r.id, r.username, r.password_hash, r.role, bool(r.active)) if r else None

    def users(self) -> list[dict[str, Any]]:
        u = t.staff_users.c
        with self.engine.connect() as conn:
            return [
                dict(r._mapping)
                for r in conn.execute(
                    select(u.id, u.username, u.role, u.active, u.created_at, u.last_login_at).order_by(u.username)
                )
            ]

    def touch_login(self, user_id: int, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(t.staff_users).where(t.staff_users.c.id == user_id).values(last_login_at=now))

    # sessions
    def add_session(self, token_hash: str, user_id: int, csrf: str, now: datetime, expires: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(t.staff_sessions).where(t.staff_sessions.c.expires_at < now))
            conn.execute(
                insert(t.staff_sessions).values(
                    token_hash=token_hash, user_id=user_id, csrf_token=csrf, created_at=now, expires_at=expires
                )
            )

    def session(self, token_hash: str, now: datetime) -> SessionRow | None:
        s, u = t.staff_sessions.c, t.staff_users.c
        with self.engine.connect() as conn:
            r = conn.execute(
                select(s.user_id, u.username, u.role, s.csrf_token, s.expires_at)
                .join(t.staff_users, u.id == s.user_id)
                .where(s.token_hash == token_hash, s.expires_at > now, u.active.is_(True))
            ).first()
        return SessionRow(r.user_id, r.username, r.role, r.csrf_token, r.expires_at) if r else None

    def drop_session(self, token_hash: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(t.staff_sessions).where(t.staff_sessions.c.token_hash == token_hash))

    # throttling
    def locked_until(self, keys: Sequence[str], now: datetime) -> datetime | None:
        f = t.login_failures.c
        with self.engine.connect() as conn:
            found = conn.execute(
                select(func.max(f.locked_until)).where(f.key.in_(list(keys)), f.locked_until > now)
            ).scalar()
        return found  # type: ignore[no-any-return]

    def record_failure(self, limits: Mapping[str, int], now: datetime, window: timedelta, lock: timedelta) -> None:
        """Count one failed sign-in under each key; a key that reaches its limit (``limits[key]``
        failures within ``window``) is locked for ``lock``."""
        f = t.login_failures.c
        with self.engine.begin() as conn:
            for key, limit in limits.items():
                row = conn.execute(select(t.login_failures).where(f.key == key)).first()
                if row is None or row.window_start < now - window:
                    conn.execute(delete(t.login_failures).where(f.key == key))
                    conn.execute(insert(t.login_failures).values(key=key, failures=1, window_start=now))
                    failures = 1
                else:
                    failures = row.failures + 1
                    conn.execute(update(t.login_failures).where(f.key == key).values(failures=failures))
                if failures >= limit:
                    conn.execute(update(t.login_failures).where(f.key == key).values(locked_until=now + lock))

    def clear_failures(self, keys: Sequence[str]) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(t.login_failures).where(t.login_failures.c.key.in_(list(keys))))

    # API keys
    def add_api_key(self, prefix: str, key_hash: str, name: str, scopes: str, now: datetime) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                insert(t.api_keys).values(prefix=prefix, key_hash=key_hash, name=name, scopes=scopes, created_at=now)
            )
            return int(result.inserted_primary_key[0])

    def api_key(self, prefix: str) -> ApiKeyRow | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(t.api_keys).where(t.api_keys.c.prefix == prefix)).first()
        return ApiKeyRow(**dict(r._mapping)) if r else None

    def api_keys(self) -> list[ApiKeyRow]:
        with self.engine.connect() as conn:
            return [ApiKeyRow(**dict(r._mapping)) for r in conn.execute(select(t.api_keys).order_by(t.api_keys.c.id))]

    def touch_api_key(self, key_id: int, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(t.api_keys).where(t.api_keys.c.id == key_id).values(last_used_at=now))

    def revoke_api_key(self, prefix: str, now: datetime) -> bool:
        k = t.api_keys.c
        with self.engine.begin() as conn:
            done = conn.execute(
                update(t.api_keys).where(k.prefix == prefix, k.revoked_at.is_(None)).values(revoked_at=now)
            )
            return bool(done.rowcount)

    # audit
    def audit(self, at: datetime, actor: str, action: str, target: str, detail: dict[str, Any], outcome: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(t.audit_log).values(
                    at=at, actor=actor[:200], action=action[:80], target=target[:200], detail=detail, outcome=outcome
                )
            )

    def audit_entries(self, limit: int = 100, offset: int = 0, target: str | None = None) -> list[dict[str, Any]]:
        a = t.audit_log.c
        q = select(t.audit_log).order_by(a.id.desc()).limit(limit).offset(offset)
        if target:
            q = q.where(a.target == target)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # secrets
    def secret(self, name: str, make: Any, now: datetime) -> str:
        """The persisted secret ``name``, created with ``make()`` the first time (race-safe)."""
        s = t.app_secrets.c
        with self.engine.connect() as conn:
            found = conn.execute(select(s.value).where(s.name == name)).scalar()
        if found:
            return str(found)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(t.app_secrets).values(name=name, value=make(), created_at=now))
        except IntegrityError:  # another process created it first: read theirs below
            pass
        with self.engine.connect() as conn:
            return str(conn.execute(select(s.value).where(s.name == name)).scalar_one())


# --- read queries: dashboard, API, self-service ---------------------------------------------

AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-2 days", 0, 3),
    ("3-7 days", 3, 8),
    ("8-14 days", 8, 15),
    ("15-30 days", 15, 31),
    ("over 30 days", 31, None),
)

SORTS = {
    "age": ("placed_at", False),
    "-age": ("placed_at", True),
    "eta": ("eta", False),
    "-eta": ("eta", True),
    "sku": ("sku", False),
    "units": ("backordered", True),
    "order": ("order_id", False),
    "priority": ("priority", True),
}


@dataclass(frozen=True)
class LineFilter:
    sku: str | None = None
    supplier: str | None = None
    channel: str | None = None
    status: str = "backordered"  # backordered | open | shipped | cancelled | all
    min_age_days: int | None = None
    max_age_days: int | None = None
    eta_before: date | None = None
    eta_missing: bool = False
    order_id: str | None = None
    """What staff type to find an order: our order id, the customer's order number
    (``orders.reference``, with or without '#'), the customer's email (case-insensitive, exact),
    phone (exact once spaces are removed) or name (case-insensitive part of it, 3+ characters).
    With it, the default status ("backordered") widens to every status."""

    @property
    def effective_status(self) -> str:
        """The status actually filtered on: looking an order up finds it whatever its lines' state
        (a customer phones about an order that shipped too), unless a narrower status was chosen."""
        return "all" if self.order_id and self.status == "backordered" else self.status


MIN_NAME_SEARCH = 3
"""The customer-name search needs at least this many characters (so "a" does not list everyone)."""


def contains_text(column: Any, text: str) -> Any:
    """``column`` contains ``text``, case-insensitively, with LIKE's wildcards (``%``, ``_``) and
    the escape character in ``text`` taken literally."""
    return func.lower(column).contains(text.lower(), autoescape=True)


def order_number_match(typed: str) -> Any:
    """``orders`` whose id or customer's number is what staff typed: indexed, tried first."""
    o = t.orders.c
    typed = typed.strip()
    return or_(o.id == typed, o.reference.in_({typed, "#" + typed.removeprefix("#")}))


_PHONE_CHARS = frozenset("0123456789 +-().")


def order_search(typed: str) -> Any:
    """The condition on ``orders`` for what staff typed in the order filter (see
    ``LineFilter.order_id``): the number, or the customer's email (it has an ``@``), phone (only
    phone characters, at least 7 digits) or part of their name (letters, at least 3 characters)."""
    o = t.orders.c
    typed = typed.strip()
    conds = [order_number_match(typed)]
    if "@" in typed:
        conds.append(func.lower(o.customer_email) == typed.lower())
    elif set(typed) <= _PHONE_CHARS and sum(ch.isdigit() for ch in typed) >= 7:
        conds.append(func.replace(o.customer_phone, " ", "") == typed.replace(" ", ""))
    elif len(typed) >= MIN_NAME_SEARCH and any(ch.isalpha() for ch in typed):
        conds.append(contains_text(o.customer_name, typed))
    return or_(*conds)


class StaffQueries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _conn(self) -> Any:
        return self.engine.connect().execution_options(**READ_ONLY)

    # overview
    def overview(self, now: datetime) -> dict[str, Any]:
        c, s = t.order_lines.c, t.skus.c
        waiting = and_(c.status == "open", c.backordered > 0)
        today = now.date()
        with self._conn() as conn:
            head = conn.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(c.backordered), 0),
                    func.coalesce(func.sum(c.backordered * func.coalesce(s.unit_price, 0)), 0),
                    func.min(c.placed_at),
                    func.count(func.distinct(c.order_id)),
                )
                .select_from(t.order_lines.join(t.skus, s.code == c.sku))
                .where(waiting)
            ).one()
            buckets = []
            for label, lo, hi in AGE_BUCKETS:
                conds = [waiting, c.placed_at <= now - timedelta(days=lo)]
                if hi is not None:
                    conds.append(c.placed_at > now - timedelta(days=hi))
                n = conn.execute(select(func.count()).select_from(t.order_lines).where(*conds)).scalar_one()
                buckets.append({"label": label, "min_age": lo, "max_age": None if hi is None else hi - 1, "lines": n})
            by_supplier = [
                {"supplier": r[0] or "", "lines": r[1], "units": int(r[2])}
                for r in conn.execute(
                    select(s.preferred_supplier, func.count(), func.sum(c.backordered))
                    .select_from(t.order_lines.join(t.skus, s.code == c.sku))
                    .where(waiting)
                    .group_by(s.preferred_supplier)
                    .order_by(func.sum(c.backordered).desc())
                )
            ]
            by_channel = [
                {"channel": r[0], "lines": r[1], "units": int(r[2])}
                for r in conn.execute(
                    select(c.channel, func.count(), func.sum(c.backordered))
                    .where(waiting)
                    .group_by(c.channel)
                    .order_by(func.sum(c.backordered).desc())
                )
            ]
            p, pl = t.purchase_orders.c, t.po_lines.c
            awaiting_ack = conn.execute(select(func.count()).where(p.status == "sent")).scalar_one()
            overdue = conn.execute(
                select(func.count(func.distinct(p.id)))
                .select_from(t.purchase_orders.join(t.po_lines, pl.po_id == p.id))
                .where(p.status.in_(["sent", "acknowledged"]), pl.expected_on < today, pl.received < pl.quantity)
            ).scalar_one()
            drafts = conn.execute(select(func.count()).where(p.status == "draft")).scalar_one()
            dead = conn.execute(select(func.count()).where(t.outbox.c.status == "dead")).scalar_one()
            pending = conn.execute(select(func.count()).where(t.outbox.c.status == "pending")).scalar_one()
            failed_inbox = conn.execute(select(func.count()).where(t.inbox.c.status == "failed")).scalar_one()
        oldest = head[3]
        return {
            "open_lines": head[0],
            "open_units": int(head[1]),
            "open_orders": head[4],
            "value_at_risk": Decimal(head[2] or 0).quantize(Decimal("0.01")),
            "oldest_placed_at": oldest,
            "oldest_age_days": (now - oldest).days if oldest else None,
            "age_buckets": buckets,
            "by_supplier": by_supplier,
            "by_channel": by_channel,
            "po_awaiting_ack": awaiting_ack,
            "po_overdue": overdue,
            "po_drafts": drafts,
            "dead_letters": dead,
            "outbox_pending": pending,
            "failed_inbox": failed_inbox,
        }

    # order lines
    def lines(
        self, f: LineFilter, now: datetime, sort: str = "age", limit: int = 50, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        c, s = t.order_lines.c, t.skus.c
        conds: list[Any] = []
        status = f.effective_status
        if status == "backordered":
            conds += [c.status == "open", c.backordered > 0]
        elif status in ("open", "shipped", "cancelled"):
            conds.append(c.status == status)
        if f.sku:
            conds.append(c.sku == f.sku)
        if f.channel:
            conds.append(c.channel == f.channel)
        if f.supplier:
            conds.append(s.preferred_supplier == f.supplier)
        if f.order_id and f.order_id.strip():  # our id, the customer's number, email, phone or name
            with self._conn() as conn:  # an exact number first (indexed); the wider search only if none
                exact = list(conn.execute(select(t.orders.c.id).where(order_number_match(f.order_id))).scalars())
            search = t.orders.c.id.in_(exact) if exact else order_search(f.order_id)
            conds.append(c.order_id.in_(select(t.orders.c.id).where(search)))
        if f.min_age_days is not None:
            conds.append(c.placed_at <= now - timedelta(days=f.min_age_days))
        if f.max_age_days is not None:
            conds.append(c.placed_at > now - timedelta(days=f.max_age_days + 1))
        if f.eta_before is not None:
            conds.append(c.eta <= f.eta_before)
        if f.eta_missing:
            conds.append(c.eta.is_(None))
        column, desc = SORTS.get(sort, SORTS["age"])
        key = getattr(c, column)
        order = [key.desc() if desc else key]
        if column == "eta":
            order.insert(0, case((c.eta.is_(None), 1), else_=0))
        order += [c.order_id, c.line_no]
        joined = t.order_lines.join(t.skus, s.code == c.sku)
        with self._conn() as conn:
            total = conn.execute(select(func.count()).select_from(joined).where(*conds)).scalar_one()
            rows = conn.execute(
                select(
                    c.order_id,
                    c.line_no,
                    c.sku,
                    s.name.label("sku_name"),
                    s.preferred_supplier.label("supplier"),
                    s.unit_price,
                    c.channel,
                    c.priority,
                    c.placed_at,
                    c.quantity,
                    c.allocated,
                    c.shipped,
                    c.backordered,
                    c.status,
                    c.eta,
                )
                .select_from(joined)
                .where(*conds)
                .order_by(*order)
                .limit(limit)
                .offset(offset)
            ).all()
        out = []
        for r in rows:
            d = dict(r._mapping)
            d["age_days"] = (now - d["placed_at"]).days
            out.append(d)
        return out, int(total)

    def channels(self) -> list[str]:
        with self._conn() as conn:
            return list(conn.execute(select(t.orders.c.channel).distinct().order_by(t.orders.c.channel)).scalars())

    def suppliers(self) -> list[dict[str, Any]]:
        with self._conn() as conn:
            return [dict(r._mapping) for r in conn.execute(select(t.suppliers).order_by(t.suppliers.c.code))]

    def order(self, order_id: str) -> dict[str, Any] | None:
        with self._conn() as conn:
            r = conn.execute(select(t.orders).where(t.orders.c.id == order_id)).first()
            if r is None:
                return None
            order = dict(r._mapping)
            c, s = t.order_lines.c, t.skus.c
            order["lines"] = [
                dict(x._mapping)
                for x in conn.execute(
                    select(
                        c.line_no,
                        c.sku,
                        s.name.label("sku_name"),
                        s.unit_price,
                        c.quantity,
                        c.allocated,
                        c.shipped,
                        c.backordered,
                        c.status,
                        c.eta,
                    )
                    .join(t.skus, s.code == c.sku)
                    .where(c.order_id == order_id)
                    .order_by(c.line_no)
                )
            ]
        return order

    # SKUs
    def skus(self, q: str | None, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        s, lv, c = t.skus.c, t.stock_levels.c, t.order_lines.c
        conds = []
        if q:
            conds.append(or_(contains_text(s.code, q), contains_text(s.name, q)))
        on_hand = select(func.coalesce(func.sum(lv.on_hand), 0)).where(lv.sku == s.code).scalar_subquery()
        allocated = select(func.coalesce(func.sum(lv.allocated), 0)).where(lv.sku == s.code).scalar_subquery()
        waiting = (
            select(func.coalesce(func.sum(c.backordered), 0))
            .where(c.sku == s.code, c.status == "open")
            .scalar_subquery()
        )
        with self._conn() as conn:
            total = conn.execute(select(func.count()).select_from(t.skus).where(*conds)).scalar_one()
            rows = conn.execute(
                select(
                    s.code,
                    s.name,
                    s.brand,
                    s.product_line,
                    s.pigments,
                    s.size,
                    s.unit_price,
                    s.preferred_supplier,
                    on_hand.label("on_hand"),
                    allocated.label("allocated"),
                    waiting.label("backordered"),
                )
                .where(*conds)
                .order_by(s.code)
                .limit(limit)
                .offset(offset)
            ).all()
        return [dict(r._mapping) for r in rows], int(total)

    def sku(self, code: str, now: datetime) -> dict[str, Any] | None:
        s, lv, c = t.skus.c, t.stock_levels.c, t.order_lines.c
        p, pl = t.purchase_orders.c, t.po_lines.c
        with self._conn() as conn:
            r = conn.execute(select(t.skus).where(s.code == code)).first()
            if r is None:
                return None
            sku = dict(r._mapping)
            sku["levels"] = [
                dict(x._mapping)
                for x in conn.execute(
                    select(lv.location, lv.on_hand, lv.allocated, lv.observed_at)
                    .join(t.locations, t.locations.c.code == lv.location, isouter=True)
                    .where(lv.sku == code)
                    .order_by(t.locations.c.position, lv.location)
                )
            ]
            sku["open_pos"] = [
                dict(x._mapping)
                for x in conn.execute(
                    select(p.number, p.supplier, p.status, pl.quantity, pl.received, pl.expected_on)
                    .join(t.po_lines, pl.po_id == p.id)
                    .where(pl.sku == code, p.status.in_(["draft", "sent", "acknowledged"]), pl.quantity > pl.received)
                    .order_by(pl.expected_on, p.id)
                )
            ]
            sku["queue"] = [
                dict(x._mapping)
                for x in conn.execute(
                    select(c.order_id, c.line_no, c.priority, c.placed_at, c.channel, c.backordered, c.allocated, c.eta)
                    .where(c.sku == code, c.status == "open", c.backordered > 0)
                    .order_by(c.priority.desc(), c.placed_at, c.order_id, c.line_no)
                    .limit(200)
                )
            ]
            since = now - timedelta(days=90)
            demand_rows = conn.execute(select(c.placed_at, c.quantity).where(c.sku == code, c.placed_at >= since)).all()
        demand: dict[date, int] = {}
        for placed_at, quantity in demand_rows:
            demand[placed_at.date()] = demand.get(placed_at.date(), 0) + quantity
        sku["demand_90d"] = [
            {
                "day": (since + timedelta(days=i)).date().isoformat(),
                "units": demand.get((since + timedelta(days=i)).date(), 0),
            }
            for i in range(91)
        ]
        sku["projection"] = project_stock(
            now.date(),
            on_hand=sum(x["on_hand"] for x in sku["levels"]),
            allocated=sum(x["allocated"] for x in sku["levels"]),
            backordered=sum(x["backordered"] for x in sku["queue"]),
            incoming=[
                (x["expected_on"], x["quantity"] - x["received"]) for x in sku["open_pos"] if x["status"] != "draft"
            ],
        )
        return sku

    # purchase orders
    def purchase_orders(
        self, status: str | None, now: datetime, limit: int = 50, offset: int = 0, number: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        p, pl = t.purchase_orders.c, t.po_lines.c
        today = now.date()
        overdue_ids = select(pl.po_id).where(pl.expected_on < today, pl.received < pl.quantity).scalar_subquery()
        conds: list[Any] = [p.number == number] if number else []
        if status == "overdue":
            conds += [p.status.in_(["sent", "acknowledged"]), p.id.in_(overdue_ids)]
        elif status:
            conds.append(p.status == status)
        with self._conn() as conn:
            total = conn.execute(select(func.count()).select_from(t.purchase_orders).where(*conds)).scalar_one()
            heads = conn.execute(
                select(t.purchase_orders, t.suppliers.c.name.label("supplier_name"))
                .join(t.suppliers, t.suppliers.c.code == p.supplier)
                .where(*conds)
                .order_by(p.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
            ids = [h.id for h in heads]
            lines: dict[int, list[dict[str, Any]]] = {}
            if ids:
                for r in conn.execute(
                    select(pl.id, pl.po_id, pl.sku, pl.quantity, pl.received, pl.unit_cost, pl.expected_on)
                    .where(pl.po_id.in_(ids))
                    .order_by(pl.id)
                ):
                    lines.setdefault(r.po_id, []).append(dict(r._mapping))
        out = []
        for h in heads:
            d = dict(h._mapping)
            d["lines"] = lines.get(h.id, [])
            d["units"] = sum(x["quantity"] for x in d["lines"])
            d["received"] = sum(x["received"] for x in d["lines"])
            d["value"] = sum((Decimal(x["unit_cost"]) * x["quantity"] for x in d["lines"]), Decimal(0)).quantize(
                Decimal("0.01")
            )
            d["overdue"] = d["status"] in ("sent", "acknowledged") and any(
                x["expected_on"] is not None and x["expected_on"] < today and x["received"] < x["quantity"]
                for x in d["lines"]
            )
            out.append(d)
        return out, int(total)

    def purchase_order(self, number: str, now: datetime) -> dict[str, Any] | None:
        rows, _ = self.purchase_orders(None, now, limit=1, number=number)
        return rows[0] if rows else None

    # outbox and inbox
    def outbox(
        self, status: str | None, action: str | None, limit: int = 50, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        o, a = t.outbox.c, t.delivery_attempts.c
        conds = []
        if status:
            conds.append(o.status == status)
        if action:
            conds.append(o.action == action)
        with self._conn() as conn:
            total = conn.execute(select(func.count()).select_from(t.outbox).where(*conds)).scalar_one()
            rows = [
                dict(r._mapping)
                for r in conn.execute(
                    select(
                        o.id,
                        o.action,
                        o.target,
                        o.status,
                        o.attempts,
                        o.next_attempt_at,
                        o.created_at,
                        o.updated_at,
                        o.last_error,
                        o.provider_ref,
                        o.parent_id,
                        o.payload,
                    )
                    .where(*conds)
                    .order_by(o.id.desc())
                    .limit(limit)
                    .offset(offset)
                )
            ]
            ids = [r["id"] for r in rows]
            attempts: dict[int, list[dict[str, Any]]] = {}
            if ids:
                for r in conn.execute(select(t.delivery_attempts).where(a.outbox_id.in_(ids)).order_by(a.id)):
                    attempts.setdefault(r.outbox_id, []).append(dict(r._mapping))
        for r in rows:
            r["attempt_log"] = attempts.get(r["id"], [])
            payload = r.pop("payload") or {}
            r["summary"] = payload.get("event") or payload.get("template") or ""
            r["order_id"] = payload.get("order_id")
        return rows, int(total)

    def outbox_status(self, ids: Sequence[int]) -> dict[int, str]:
        with self._conn() as conn:
            return {
                r[0]: r[1]
                for r in conn.execute(select(t.outbox.c.id, t.outbox.c.status).where(t.outbox.c.id.in_(list(ids))))
            }

    def inbox(self, status: str | None, limit: int = 50, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        i = t.inbox.c
        conds = [i.status == status] if status else []
        with self._conn() as conn:
            total = conn.execute(select(func.count()).select_from(t.inbox).where(*conds)).scalar_one()
            rows = [
                dict(r._mapping)
                for r in conn.execute(
                    select(
                        i.id,
                        i.platform,
                        i.channel,
                        i.event_key,
                        i.topic,
                        i.status,
                        i.error,
                        i.attempts,
                        i.received_at,
                        i.processed_at,
                    )
                    .where(*conds)
                    .order_by(i.id.desc())
                    .limit(limit)
                    .offset(offset)
                )
            ]
        return rows, int(total)

    def queue_depths(self) -> dict[str, Any]:
        """For /metrics: outbox and inbox rows per status, and the age of the oldest pending row."""
        o, i = t.outbox.c, t.inbox.c
        with self._conn() as conn:
            outbox = {
                (r[0], r[1]): int(r[2])
                for r in conn.execute(select(o.action, o.status, func.count()).group_by(o.action, o.status))
            }
            oldest = {
                r[0]: r[1]
                for r in conn.execute(
                    select(o.action, func.min(o.created_at)).where(o.status == "pending").group_by(o.action)
                )
            }
            inbox = {
                (r[0], r[1]): int(r[2])
                for r in conn.execute(select(i.platform, i.status, func.count()).group_by(i.platform, i.status))
            }
            attempts = [
                (r[0], r[1], r[2], r[3])
                for r in conn.execute(
                    select(
                        t.delivery_attempts.c.connector,
                        t.delivery_attempts.c.outcome,
                        t.delivery_attempts.c.started_at,
                        t.delivery_attempts.c.finished_at,
                    )
                    .order_by(t.delivery_attempts.c.id.desc())
                    .limit(5000)
                )
            ]
            c = t.order_lines.c
            waiting = conn.execute(
                select(func.count(), func.coalesce(func.sum(c.backordered), 0), func.min(c.placed_at)).where(
                    c.status == "open", c.backordered > 0
                )
            ).one()
        return {"outbox": outbox, "oldest_pending": oldest, "inbox": inbox, "attempts": attempts, "backorders": waiting}

    def connector_activity(self) -> dict[str, dict[str, Any]]:
        """Per connector name: last success, last failure (with its detail), attempt counts."""
        a = t.delivery_attempts.c
        out: dict[str, dict[str, Any]] = {}
        with self._conn() as conn:
            for name, outcome, n, last in conn.execute(
                select(a.connector, a.outcome, func.count(), func.max(a.finished_at)).group_by(a.connector, a.outcome)
            ):
                entry = out.setdefault(
                    name, {"counts": {}, "last_success": None, "last_failure": None, "failure_detail": None}
                )
                entry["counts"][outcome] = int(n)
                if outcome == "sent" and (entry["last_success"] is None or last > entry["last_success"]):
                    entry["last_success"] = last
                if outcome in ("retry", "dead") and (entry["last_failure"] is None or last > entry["last_failure"]):
                    entry["last_failure"] = last
            for name, entry in out.items():
                if entry["last_failure"] is not None:
                    entry["failure_detail"] = conn.execute(
                        select(a.detail)
                        .where(a.connector == name, a.outcome.in_(["retry", "dead"]))
                        .order_by(a.id.desc())
                        .limit(1)
                    ).scalar()
        return out

    # self-service


def project_stock(
    today: date,
    *,
    on_hand: int,
    allocated: int,
    backordered: int,
    incoming: Sequence[tuple[date | None, int]],
    weeks: int = 8,
) -> list[dict[str, Any]]:
    """Week by week: on hand (free after allocations), incoming PO units by expected date, and the
    waiting demand they must first cover. ``projected`` = free stock + cumulative incoming − waiting.
    The waiting demand is there once, now (the first row): it is not new demand every week."""
    free = on_hand - allocated
    out = []
    cumulative = 0
    for week in range(weeks + 1):
        end = today + timedelta(days=7 * week)
        arriving = sum(
            q for d, q in incoming if d is not None and (end - timedelta(days=7) < d <= end or (week == 0 and d <= end))
        )
        cumulative += arriving
        out.append(
            {
                "week": end.isoformat(),
                "on_hand": free,
                "incoming": arriving,
                "backorder_demand": backordered if week == 0 else 0,
                "projected": free + cumulative - backordered,
            }
        )
    return out
