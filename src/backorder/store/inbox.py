"""The webhook inbox and the sales-channel state beside it (issue 3).

The inbox is the durable first step of every inbound event: the ingress commits a row (raw body,
headers, topic) keyed by (platform, channel, event key) before it answers 200; a duplicate key
inserts nothing. A processor later claims ``received`` rows (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, the write lock on SQLite), marks each ``processed``, ``ignored`` or ``failed`` (with
the reason), and a failed row can be put back to ``received`` to be processed again.

A claimed row is ``processing`` with ``processed_at`` holding the end of its lease: a process that
dies mid-way leaves the row to be claimed again once that time has passed.

Beside it: the channel's item map (SKU ↔ the platform's inventory item / product id), the last
applied version of each channel order (out-of-order ``orders/updated`` must not overwrite a newer
one), the reconciliation watermark, and the coalescing queue of stock pushes.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import StaticPool

from backorder.store import tables as t


@dataclass(frozen=True)
class InboxRow:
    id: int
    platform: str
    channel: str
    event_key: str
    topic: str
    headers: dict[str, str]
    body: bytes
    status: str
    error: str | None
    attempts: int
    received_at: datetime


def _insert(conn: Connection, table: Any) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def _row(r: Any) -> InboxRow:
    return InboxRow(
        r.id,
        r.platform,
        r.channel,
        r.event_key,
        r.topic,
        dict(r.headers or {}),
        bytes(r.body),
        r.status,
        r.error,
        r.attempts,
        r.received_at,
    )


class InboxStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._raw: _RawInbox | None = None
        self._raw_lock = threading.Lock()

    def record(
        self,
        platform: str,
        channel: str,
        event_key: str,
        topic: str,
        headers: Mapping[str, str],
        body: bytes,
        now: datetime,
    ) -> tuple[int | None, bool]:
        """Commit the event; returns (row id, True) when new, (existing id, False) for a duplicate."""
        with self.engine.begin() as conn:
            stmt = (
                _insert(conn, t.inbox)
                .values(
                    platform=platform,
                    channel=channel,
                    event_key=event_key[:200],
                    topic=topic[:80],
                    headers=dict(headers),
                    body=body,
                    status="received",
                    attempts=0,
                    received_at=now,
                )
                .on_conflict_do_nothing(index_elements=["platform", "channel", "event_key"])
                .returning(t.inbox.c.id)
            )
            new_id = conn.execute(stmt).scalar()
            if new_id is not None:
                return int(new_id), True
            i = t.inbox.c
            existing = conn.execute(
                select(i.id).where(i.platform == platform, i.channel == channel, i.event_key == event_key[:200])
            ).scalar()
            return (int(existing) if existing is not None else None), False

    def record_many(
        self, items: Sequence[tuple[str, str, str, str, Mapping[str, str], bytes, datetime]]
    ) -> list[tuple[int | None, bool]]:
        """Commit several events in ONE transaction (group commit); results in the same order.
        All or nothing: if the commit fails, none of them is stored.

        The ingress's hot path: one multi-row ``INSERT .. ON CONFLICT DO NOTHING RETURNING`` on a
        DBAPI connection this store keeps open (no pool checkout, ping or statement compilation
        per batch; values go through the columns' own SQLAlchemy bind processors, so they are
        stored exactly as the Core path stores them). The keys it did not insert (duplicates,
        from before or within the batch) are looked up afterwards, in the same transaction."""
        if not items:
            return []
        with self._raw_lock:
            if self._raw is None:
                self._raw = _RawInbox(self.engine)
            try:
                return self._raw.record_many(items)
            except BaseException:
                self._raw.discard()  # a broken connection is not reused; the next batch opens one
                self._raw = None
                raise

    def close(self) -> None:
        """Release the connection :meth:`record_many` keeps."""
        with self._raw_lock:
            if self._raw is not None:
                self._raw.discard()
                self._raw = None

    def claim(self, now: datetime, limit: int, lease: timedelta = timedelta(minutes=5)) -> list[InboxRow]:
        i = t.inbox.c
        due = or_(i.status == "received", and_(i.status == "processing", i.processed_at < now))
        with self.engine.begin() as conn:
            q = select(i.id).where(due).order_by(i.id).limit(limit)
            if conn.dialect.name == "postgresql":
                q = q.with_for_update(skip_locked=True)
            ids = list(conn.execute(q).scalars())
            if not ids:
                return []
            conn.execute(
                update(t.inbox)
                .where(i.id.in_(ids))
                .values(status="processing", processed_at=now + lease, attempts=i.attempts + 1)
            )
            rows = conn.execute(select(t.inbox).where(i.id.in_(ids)).order_by(i.id)).all()
        return [_row(r) for r in rows]

    def claim_one(self, row_id: int, now: datetime, lease: timedelta = timedelta(minutes=5)) -> InboxRow | None:
        """Claim one ``received`` row by id (the API processes its own order inline)."""
        i = t.inbox.c
        with self.engine.begin() as conn:
            done = conn.execute(
                update(t.inbox)
                .where(i.id == row_id, i.status == "received")
                .values(status="processing", processed_at=now + lease, attempts=i.attempts + 1)
            )
            if done.rowcount != 1:
                return None
            r = conn.execute(select(t.inbox).where(i.id == row_id)).one()
        return _row(r)

    def finish(
        self,
        row_id: int,
        status: str,
        error: str | None,
        now: datetime,
        order_version: tuple[str, str, str, datetime] | None = None,
    ) -> None:
        """Record the row's outcome; with ``order_version`` (channel, external id, our order id,
        version) also advance that order's applied version, in the same transaction."""
        with self.engine.begin() as conn:
            conn.execute(
                update(t.inbox)
                .where(t.inbox.c.id == row_id)
                .values(status=status, error=(error or None) and error[:4000], processed_at=now)
            )
            if order_version is not None:
                advance_order_version(conn, *order_version, now)

    def finish_many(
        self,
        outcomes: Sequence[tuple[int, str, str | None, tuple[str, str, str, datetime | None] | None]],
        now: datetime,
    ) -> None:
        """:meth:`finish` for several rows ``(id, status, error, order_version)``, in ONE
        transaction."""
        if not outcomes:
            return
        i = t.inbox.c
        with self.engine.begin() as conn:
            by_outcome: dict[tuple[str, str | None], list[int]] = {}
            for row_id, status, error, _ in outcomes:
                by_outcome.setdefault((status, (error or None) and error[:4000]), []).append(row_id)
            for (status, error), ids in by_outcome.items():
                conn.execute(update(t.inbox).where(i.id.in_(ids)).values(status=status, error=error, processed_at=now))
            _advance_order_versions(conn, [v for _, _, _, v in outcomes if v is not None], now)

    def reprocess(self, row_id: int) -> bool:
        """Put a failed (or ignored) row back to ``received``."""
        i = t.inbox.c
        with self.engine.begin() as conn:
            done = conn.execute(
                update(t.inbox)
                .where(i.id == row_id, i.status.in_(["failed", "ignored"]))
                .values(status="received", error=None, processed_at=None)
            )
            return done.rowcount == 1

    def get(self, row_id: int) -> InboxRow | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(t.inbox).where(t.inbox.c.id == row_id)).first()
        return _row(r) if r is not None else None

    def list(self, status: str | None = None, channel: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        i = t.inbox.c
        q = (
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
            .order_by(i.id.desc())
            .limit(limit)
        )
        if status:
            q = q.where(i.status == status)
        if channel:
            q = q.where(i.channel == channel)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def counts(self) -> dict[str, int]:
        i = t.inbox.c
        with self.engine.connect() as conn:
            return {r[0]: int(r[1]) for r in conn.execute(select(i.status, func.count()).group_by(i.status))}


_CHUNK = 3000  # rows per INSERT statement (SQLite allows 32,766 parameters, PostgreSQL 65,535; 9 a row)
_INBOX_COLUMNS = ("platform", "channel", "event_key", "topic", "headers", "body", "status", "attempts", "received_at")
_PROCESSED = frozenset({"headers", "body", "received_at"})


def _identity(value: Any) -> Any:
    return value


class _RawInbox:
    """The group-commit insert on one DBAPI connection (SQLite or psycopg), in autocommit mode:
    a batch is ONE ``INSERT .. RETURNING`` statement, which is its own transaction (one round
    trip, no BEGIN/COMMIT); a batch too big for one statement is wrapped in BEGIN/COMMIT. The
    duplicates' ids are looked up after the commit (rows are never deleted meanwhile)."""

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        self.sqlite = dialect.name == "sqlite"
        self.mark = "?" if dialect.paramstyle == "qmark" else "%s"
        processors = []
        for name in _INBOX_COLUMNS:
            column = t.inbox.c[name]
            processors.append(column.type._cached_bind_processor(dialect))
        self.processors: list[Any] = processors
        # The columns that need a bind processor here are headers (JSON), body and received_at;
        # when the others need none (SQLite, psycopg), rows are built without the generic loop.
        plain = [processors[i] for i, name in enumerate(_INBOX_COLUMNS) if name not in _PROCESSED]
        self.direct = all(process is None for process in plain)
        identity = _identity
        self.headers_p: Any = processors[_INBOX_COLUMNS.index("headers")] or identity
        self.body_p: Any = processors[_INBOX_COLUMNS.index("body")] or identity
        self.when_p: Any = processors[_INBOX_COLUMNS.index("received_at")] or identity
        self.row = "(" + ", ".join([self.mark] * len(_INBOX_COLUMNS)) + ")"
        self.head = f"INSERT INTO inbox ({', '.join(_INBOX_COLUMNS)}) VALUES "
        self.tail = " ON CONFLICT (platform, channel, event_key) DO NOTHING RETURNING id, platform, channel, event_key"
        self.statements: dict[int, str] = {}
        # An in-memory SQLite database lives in its one shared connection: never close that one.
        self.shared = isinstance(engine.pool, StaticPool)
        self.fairy: Any = engine.raw_connection()  # not returned to the pool (unless shared): see discard()
        connection: Any = self.fairy.dbapi_connection
        if self.sqlite:
            connection.isolation_level = None  # (the engine sets it too) statements autocommit
            # The engine's synchronous=NORMAL lets a commit be lost to a power cut; a 200 tells
            # the platform never to send the event again, so the inbox fsyncs each (group) commit.
            connection.execute("PRAGMA synchronous=FULL")
        else:
            connection.autocommit = True
        self.connection = connection

    def record_many(
        self, items: Sequence[tuple[str, str, str, str, Mapping[str, str], bytes, datetime]]
    ) -> list[tuple[int | None, bool]]:
        processors = self.processors
        values: list[Any] = []
        keys: list[tuple[str, str, str]] = []
        if self.direct:  # the same values as the generic loop below, built without it
            headers_p, body_p, when_p = self.headers_p, self.body_p, self.when_p
            for platform, channel, event_key, topic, headers, body, now in items:
                key = (platform, channel, event_key[:200])
                keys.append(key)
                values += (
                    platform,
                    channel,
                    key[2],
                    topic[:80],
                    headers_p(headers if type(headers) is dict else dict(headers)),
                    body_p(body),
                    "received",
                    0,
                    when_p(now),
                )
        else:
            for platform, channel, event_key, topic, headers, body, now in items:
                key = (platform, channel, event_key[:200])
                keys.append(key)
                row = (*key, topic[:80], dict(headers), body, "received", 0, now)
                values.extend(
                    value if process is None else process(value) for value, process in zip(row, processors, strict=True)
                )
        width = len(_INBOX_COLUMNS)
        several = len(keys) > _CHUNK
        cursor = self.connection.cursor()
        try:
            inserted: dict[tuple[str, str, str], int] = {}
            if several:
                cursor.execute("BEGIN IMMEDIATE" if self.sqlite else "BEGIN")
            try:
                for start in range(0, len(keys), _CHUNK):
                    n = min(_CHUNK, len(keys) - start)
                    sql = self.statements.get(n)
                    if sql is None:
                        sql = self.statements[n] = self.head + ", ".join([self.row] * n) + self.tail
                    cursor.execute(sql, values[start * width : (start + n) * width])
                    inserted.update({(r[1], r[2], r[3]): int(r[0]) for r in cursor.fetchall()})
                if several:
                    cursor.execute("COMMIT")
            except BaseException:
                if several:
                    with contextlib.suppress(Exception):
                        cursor.execute("ROLLBACK")
                raise
            existing: dict[tuple[str, str, str], int] = {}
            missing = {key for key in keys if key not in inserted}
            for platform, channel in {(k[0], k[1]) for k in missing}:
                wanted = sorted(k[2] for k in missing if k[0] == platform and k[1] == channel)
                marks = ", ".join([self.mark] * len(wanted))
                cursor.execute(
                    f"SELECT id, event_key FROM inbox WHERE platform = {self.mark} AND channel = {self.mark} "
                    f"AND event_key IN ({marks})",
                    [platform, channel, *wanted],
                )
                for row_id, event_key in cursor.fetchall():
                    existing[(platform, channel, event_key)] = int(row_id)
        finally:
            cursor.close()
        results: list[tuple[int | None, bool]] = []
        claimed: set[tuple[str, str, str]] = set()
        for key in keys:
            if key in inserted and key not in claimed:
                claimed.add(key)  # a second copy of the key in this batch is its duplicate
                results.append((inserted[key], True))
            else:
                results.append((inserted.get(key) or existing.get(key), False))
        return results

    def discard(self) -> None:
        """Close the connection for good: its settings (autocommit, synchronous=FULL) are not
        for others, so it never goes back to the pool (an in-memory database's only connection
        is handed back instead)."""
        with contextlib.suppress(Exception):  # already broken: nothing more to release
            if self.shared:
                self.fairy.close()
            else:
                self.fairy.invalidate()


def advance_order_version(
    conn: Connection, channel: str, external_id: str, order_id: str, version: datetime | None, now: datetime
) -> bool:
    c = t.channel_orders.c
    stmt = _insert(conn, t.channel_orders).values(
        channel=channel, external_id=external_id, order_id=order_id, version=version, updated_at=now
    )
    inserted = conn.execute(stmt.on_conflict_do_nothing(index_elements=["channel", "external_id"]))
    if inserted.rowcount == 1 or version is None:
        return True
    done = conn.execute(
        update(t.channel_orders)
        .where(c.channel == channel, c.external_id == external_id, or_(c.version.is_(None), c.version < version))
        .values(version=version, updated_at=now)
    )
    return done.rowcount == 1


def _advance_order_versions(
    conn: Connection, versions: Sequence[tuple[str, str, str, datetime | None]], now: datetime
) -> None:
    """:func:`advance_order_version` for several orders: one multi-row insert of the new ones,
    then an update of each one recorded before (only where the version is newer)."""
    if not versions:
        return
    if len(versions) == 1:
        advance_order_version(conn, *versions[0], now)
        return
    newest: dict[tuple[str, str], tuple[str, datetime | None]] = {}
    for channel, external_id, order_id, version in versions:  # the newest of each order wins
        key = (channel, external_id)
        if key not in newest:
            newest[key] = (order_id, version)
            continue
        first_order_id, kept = newest[key]
        if version is not None and (kept is None or version > kept):
            newest[key] = (first_order_id, version)
    c = t.channel_orders.c
    stmt = (
        _insert(conn, t.channel_orders)
        .on_conflict_do_nothing(index_elements=["channel", "external_id"])
        .returning(c.channel, c.external_id)
    )
    rows = [
        {"channel": ch, "external_id": ext, "order_id": order_id, "version": version, "updated_at": now}
        for (ch, ext), (order_id, version) in newest.items()
    ]
    inserted = {(r.channel, r.external_id) for r in conn.execute(stmt, rows)}
    for (channel, external_id), (_, version) in newest.items():
        if (channel, external_id) in inserted or version is None:
            continue
        conn.execute(
            update(t.channel_orders)
            .where(
                c.channel == channel,
                c.external_id == external_id,
                or_(c.version.is_(None), c.version < version),
            )
            .values(version=version, updated_at=now)
        )


@dataclass(frozen=True)
class ChannelItem:
    sku: str
    item_ref: str
    variant_ref: str | None = None
    parent_ref: str | None = None


class ChannelStore:
    """Per-channel state: item map, order versions, reconciliation watermark, push queue."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- item map --------------------------------------------------------------------------

    def remember_items(self, channel: str, items: Iterable[ChannelItem], now: datetime) -> None:
        rows = [
            {
                "channel": channel,
                "sku": item.sku,
                "item_ref": item.item_ref,
                "variant_ref": item.variant_ref,
                "parent_ref": item.parent_ref,
                "updated_at": now,
            }
            for item in items
            if item.sku and item.item_ref
        ]
        if not rows:
            return
        with self.engine.begin() as conn:
            stmt = _insert(conn, t.channel_items)
            stmt = stmt.on_conflict_do_update(
                index_elements=["channel", "sku"],
                set_={k: stmt.excluded[k] for k in ("item_ref", "variant_ref", "parent_ref", "updated_at")},
            )
            conn.execute(stmt, rows)

    def items_for_skus(self, channel: str, skus: Sequence[str]) -> dict[str, ChannelItem]:
        c = t.channel_items.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(c.sku, c.item_ref, c.variant_ref, c.parent_ref).where(
                    c.channel == channel, c.sku.in_(list(skus))
                )
            ).all()
        return {r.sku: ChannelItem(r.sku, r.item_ref, r.variant_ref, r.parent_ref) for r in rows}

    def sku_for_item(self, channel: str, item_ref: str) -> str | None:
        c = t.channel_items.c
        with self.engine.connect() as conn:
            return conn.execute(
                select(c.sku).where(c.channel == channel, c.item_ref == item_ref).order_by(c.sku).limit(1)
            ).scalar()

    def mark_pushed(self, channel: str, quantities: Mapping[str, int], now: datetime) -> None:
        c = t.channel_items.c
        with self.engine.begin() as conn:
            for sku, quantity in quantities.items():
                conn.execute(
                    update(t.channel_items)
                    .where(c.channel == channel, c.sku == sku)
                    .values(pushed_quantity=quantity, pushed_at=now)
                )

    def pushed_quantity(self, channel: str, sku: str) -> int | None:
        c = t.channel_items.c
        with self.engine.connect() as conn:
            return conn.execute(select(c.pushed_quantity).where(c.channel == channel, c.sku == sku)).scalar()

    # --- order versions --------------------------------------------------------------------

    def order_views(self, order_ids: Sequence[str]) -> dict[str, dict[str, int] | None]:
        """For each order of ``order_ids`` that we hold: the channel's view last applied to it
        (``{sku: units}``), or None when none was kept. Orders we do not hold are absent."""
        if not order_ids:
            return {}
        o, v = t.orders.c, t.order_channel_views.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(o.id, v.units)
                .select_from(t.orders.outerjoin(t.order_channel_views, v.order_id == o.id))
                .where(o.id.in_(sorted(set(order_ids))))
            ).all()
        return {r.id: ({str(k): int(n) for k, n in r.units.items()} if r.units is not None else None) for r in rows}

    def order_version(self, channel: str, external_id: str) -> datetime | None:
        c = t.channel_orders.c
        with self.engine.connect() as conn:
            return conn.execute(select(c.version).where(c.channel == channel, c.external_id == external_id)).scalar()

    def order_versions(self, channel: str, external_ids: Sequence[str]) -> dict[str, datetime | None]:
        """:meth:`order_version` of several orders of a channel (absent: none recorded)."""
        c = t.channel_orders.c
        found: dict[str, datetime | None] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(external_ids), 500):
                chunk = list(external_ids[start : start + 500])
                for r in conn.execute(
                    select(c.external_id, c.version).where(c.channel == channel, c.external_id.in_(chunk))
                ):
                    found[r.external_id] = r.version
        return found

    def advance_order_version(
        self, channel: str, external_id: str, order_id: str, version: datetime | None, now: datetime
    ) -> bool:
        """Record ``version`` unless a newer-or-equal one is recorded; True when it advanced (or
        when the source gives no version)."""
        with self.engine.begin() as conn:
            return advance_order_version(conn, channel, external_id, order_id, version, now)

    # --- reconciliation --------------------------------------------------------------------

    def sync_state(self, channel: str) -> tuple[datetime | None, datetime | None]:
        """(last reconciled at, watermark)."""
        c = t.channel_sync.c
        with self.engine.connect() as conn:
            r = conn.execute(select(c.last_reconciled_at, c.watermark).where(c.channel == channel)).first()
        return (r.last_reconciled_at, r.watermark) if r else (None, None)

    def save_sync_state(
        self, channel: str, reconciled_at: datetime, watermark: datetime | None, error: str | None
    ) -> None:
        with self.engine.begin() as conn:
            stmt = _insert(conn, t.channel_sync).values(
                channel=channel, last_reconciled_at=reconciled_at, watermark=watermark, last_error=error
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["channel"],
                    set_={
                        "last_reconciled_at": stmt.excluded.last_reconciled_at,
                        "watermark": func.coalesce(stmt.excluded.watermark, t.channel_sync.c.watermark),
                        "last_error": stmt.excluded.last_error,
                    },
                )
            )

    # --- stock push coalescing -------------------------------------------------------------

    def queue_push(self, channels: Sequence[str], sku: str, due_at: datetime) -> int:
        """Ask for a push of ``sku`` to each channel at ``due_at``; a push already pending for
        that channel and SKU absorbs this one (its earlier due time stands). Returns how many
        new pending pushes were made."""
        if not channels:
            return 0
        with self.engine.begin() as conn:
            stmt = _insert(conn, t.stock_push_pending).on_conflict_do_nothing(index_elements=["channel", "sku"])
            result = conn.execute(stmt, [{"channel": ch, "sku": sku, "due_at": due_at} for ch in channels])
            return max(int(result.rowcount or 0), 0)

    def take_due_pushes(self, now: datetime, batch_sizes: Mapping[str, int]) -> list[tuple[str, list[str]]]:
        """Move due pending pushes into outbox rows, one ``push_stock_batch`` row per channel and
        batch (at most ``batch_sizes[channel]`` SKUs), in one transaction. Returns the batches."""
        p = t.stock_push_pending.c
        made: list[tuple[str, list[str]]] = []
        with self.engine.begin() as conn:
            q = select(p.channel, p.sku).where(p.due_at <= now).order_by(p.channel, p.sku).limit(5000)
            if conn.dialect.name == "postgresql":
                q = q.with_for_update(skip_locked=True)
            due = conn.execute(q).all()
            if not due:
                return []
            by_channel: dict[str, list[str]] = {}
            for r in due:
                by_channel.setdefault(r.channel, []).append(r.sku)
            for channel, skus in by_channel.items():
                size = max(1, batch_sizes.get(channel, 50))
                for start in range(0, len(skus), size):
                    made.append((channel, skus[start : start + size]))
                conn.execute(delete(t.stock_push_pending).where(p.channel == channel, p.sku.in_(skus)))
            if made:
                conn.execute(
                    insert(t.outbox),
                    [
                        {
                            "action": "push_stock_batch",
                            "target": f"channel:{channel}",
                            "payload": {"channel": channel, "skus": skus},
                            "status": "pending",
                            "attempts": 0,
                            "next_attempt_at": now,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for channel, skus in made
                    ],
                )
        return made

    def pending_pushes(self) -> list[tuple[str, str, datetime]]:
        p = t.stock_push_pending.c
        with self.engine.connect() as conn:
            return [(r.channel, r.sku, r.due_at) for r in conn.execute(select(p.channel, p.sku, p.due_at))]


# --- webhook registrations (issue 3: `backorder connect`) --------------------------------------


@dataclass(frozen=True)
class Registration:
    """One webhook subscription `backorder connect` asked a platform for, and the answer."""

    channel: str
    platform: str
    topic: str
    address: str
    provider_ref: str | None
    registered_at: datetime
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class RegistrationStore:
    """What was registered where: one row per (channel, topic), replaced by each `connect`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, registrations: Sequence[Registration]) -> None:
        if not registrations:
            return
        r = t.channel_registrations.c
        with self.engine.begin() as conn:
            for reg in registrations:
                values = {
                    "platform": reg.platform,
                    "address": reg.address[:500],
                    "provider_ref": reg.provider_ref[:200] if reg.provider_ref else None,
                    "registered_at": reg.registered_at,
                    "error": reg.error,
                }
                changed = conn.execute(
                    update(t.channel_registrations)
                    .where(r.channel == reg.channel, r.topic == reg.topic[:80])
                    .values(**values)
                ).rowcount
                if not changed:
                    conn.execute(
                        insert(t.channel_registrations).values(channel=reg.channel, topic=reg.topic[:80], **values)
                    )

    def for_channel(self, channel: str) -> list[Registration]:
        r = t.channel_registrations.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.channel_registrations).where(r.channel == channel).order_by(r.topic)).all()
        return [
            Registration(x.channel, x.platform, x.topic, x.address, x.provider_ref, x.registered_at, x.error)
            for x in rows
        ]
