"""The full backorder run over every SKU at once: read all waiting lines in rank order in one
pass, allocate with the vectorised contract, write the results in bulk.

Reading keeps no object per line: the rows are streamed from the DBAPI cursor in chunks and
turned into columns (numpy arrays, and the order ids as one tuple of strings), so a million
waiting lines cost under 100 MB and little per-row Python work beyond the driver's own.

Writing: SQLite gets one ``executemany`` per table (lines in rank order, holdings in line-id
order, which halves SQLite's B-tree work for them); PostgreSQL gets the grants by ``COPY`` into
a temporary table and one set-based statement per table. Every line and stock update is
conditional (``backordered >= granted``; ``on_hand - allocated >= granted``) and its row count is
checked, so a queue that went stale under us fails the transaction instead of over-allocating.

Which SKUs must take the general walk: a SKU whose queue holds a ship-complete line or a line of
a location-restricted channel needs the walk only if such a line is ranked before the SKU's
stock runs out. When the ordinary lines ahead of the first such line already want all the
stock, the contract gives that line and every later one nothing, which is exactly what the
vectorised contract gives too — so the SKU stays on the fast path.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain, repeat
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from backorder.domain import events
from backorder.services.ports import BopQueue, BulkAllocation
from backorder.store.repositories import SqlOrders

_WAITING_SQL = (
    "SELECT id, sku, order_id, line_no, backordered, ship_complete, channel FROM order_lines "
    "WHERE status = 'open' AND backordered > 0 "
    "ORDER BY sku, priority DESC, placed_at, order_id, line_no"
)
_FETCH = 65536
_UNPLACED = 1 << 30
_SQLITE_CACHE_CAP = 512 * 1024 * 1024


def _cache_kib(cache_size: int, page_size: int) -> int:
    """SQLite's ``cache_size``: negative is KiB, positive is pages."""
    return -cache_size if cache_size < 0 else cache_size * page_size // 1024


class _Codes(dict[str, int]):
    """Strings to small integers, in order of first appearance."""

    def __missing__(self, key: str) -> int:
        value = self[key] = len(self)
        return value


@contextmanager
def _no_gc() -> Iterator[None]:
    """Building millions of short tuples triggers the cyclic collector over and over, and
    with a million live objects each full pass is slow; none of these objects form cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class _Waiting:
    """Every waiting line as read by ``load_queue``, in scan order (SKU, then rank)."""

    line_id: npt.NDArray[np.int64]
    sku: npt.NDArray[np.int32]  # index into sku_names
    wanted: npt.NDArray[np.int64]
    line_no: npt.NDArray[np.int64]
    channel: npt.NDArray[np.int16]  # index into channel_names
    order_id: tuple[str, ...]
    sku_names: list[str]
    channel_names: list[str]
    location_names: list[str]
    pools: list[list[tuple[int, int]]]  # per SKU: (location index, available) in preference order
    queue_pos: npt.NDArray[np.int64]  # position of each queue line in these arrays
    queue_ids: npt.NDArray[np.int64]  # the very array handed out as queue.line_ids


class SqlBulkAllocation(BulkAllocation):
    def __init__(self, conn: Connection, orders: SqlOrders) -> None:
        self.conn = conn
        self.orders = orders
        self._waiting: _Waiting | None = None

    # --- reading --------------------------------------------------------------------------

    def _location_order(self) -> dict[str, int]:
        rows = self.conn.exec_driver_sql("SELECT code FROM locations ORDER BY position, code").fetchall()
        return {code: i for i, (code,) in enumerate(rows)}

    def _stock(self) -> tuple[dict[str, list[tuple[int, int]]], list[str]]:
        """Available units by SKU, as (location index, units) in the default preference order."""
        position = self._location_order()
        rows = sorted(
            self.conn.exec_driver_sql(
                "SELECT sku, location, on_hand - allocated FROM stock_levels WHERE on_hand > allocated"
            ).fetchall(),
            key=lambda r: (r[0], position.get(r[1], _UNPLACED), r[1]),
        )
        locations = _Codes(position)  # known locations first, in their order
        pools: dict[str, list[tuple[int, int]]] = {}
        for sku, location, units in rows:
            pools.setdefault(sku, []).append((locations[location], int(units)))
        return pools, list(locations)

    def _scan(self) -> tuple[list[npt.NDArray[Any]], tuple[str, ...], list[str], list[str]]:
        """Stream the waiting lines into columns (ids, SKU codes, wanted, line numbers, ship
        complete, channel codes) plus the order ids."""
        skus, channels = _Codes(), _Codes()
        parts: list[list[npt.NDArray[Any]]] = [[], [], [], [], [], []]
        order_ids: list[tuple[str, ...]] = []
        result = self.conn.exec_driver_sql(_WAITING_SQL)
        cursor = getattr(result, "cursor", None)
        fetch = cursor.fetchmany if cursor is not None else result.fetchmany
        try:
            while True:
                chunk = fetch(_FETCH)
                if not chunk:
                    break
                n = len(chunk)
                ids, sku, order, line_no, wanted, ship_complete, channel = zip(*chunk, strict=True)
                del chunk
                parts[0].append(np.fromiter(ids, dtype=np.int64, count=n))
                parts[1].append(np.fromiter(map(skus.__getitem__, sku), dtype=np.int32, count=n))
                parts[2].append(np.fromiter(wanted, dtype=np.int64, count=n))
                parts[3].append(np.fromiter(line_no, dtype=np.int64, count=n))
                parts[4].append(np.fromiter(ship_complete, dtype=bool, count=n))
                parts[5].append(np.fromiter(map(channels.__getitem__, channel), dtype=np.int16, count=n))
                order_ids.append(order)
        finally:
            result.close()
        columns = [
            np.concatenate(p) if p else np.zeros(0, dtype=d)
            for p, d in zip(parts, (np.int64, np.int32, np.int64, np.int64, bool, np.int16), strict=True)
        ]
        return columns, tuple(chain.from_iterable(order_ids)), list(skus), list(channels)

    def load_queue(self, walk_channels: set[str]) -> BopQueue:
        with _no_gc():
            return self._load_queue(walk_channels)

    def _lock(self) -> None:
        """Serialise with every other writer of the SKUs this run can touch: their rows in
        ``skus`` locked in code order, as ``StockRepository.lock_skus`` does (SQLite: ``BEGIN
        IMMEDIATE`` already holds the database's write lock). Read after this, stock and queues
        stay as read until commit."""
        if self.conn.dialect.name == "postgresql":
            self.conn.exec_driver_sql(
                "SELECT code FROM skus WHERE code IN (SELECT sku FROM stock_levels WHERE on_hand > allocated) "
                "ORDER BY code FOR UPDATE"
            )

    def _load_queue(self, walk_channels: set[str]) -> BopQueue:
        self._lock()
        pools_by_code, location_names = self._stock()
        (line_id, sku, wanted, line_no, ship_complete, channel), order_id, sku_names, channel_names = self._scan()
        pools = [pools_by_code.get(code, []) for code in sku_names]
        available = np.fromiter((sum(u for _, u in pool) for pool in pools), dtype=np.int64, count=len(pools))
        stocked = available > 0

        # Units wanted ahead of each line within its SKU (lines arrive grouped by SKU).
        starts = np.ones(sku.size, dtype=bool)
        np.not_equal(sku[1:], sku[:-1], out=starts[1:])
        before = np.cumsum(wanted) - wanted
        ahead = before - before[np.flatnonzero(starts)][np.cumsum(starts) - 1]

        special = ship_complete.copy()
        restricted = [i for i, name in enumerate(channel_names) if name in walk_channels]
        if restricted:
            special |= np.isin(channel, np.asarray(restricted, dtype=np.int16))
        must_walk = special & stocked[sku] & (ahead < available[sku])
        walk = np.zeros(len(sku_names), dtype=bool)
        walk[sku[must_walk]] = True

        in_queue = stocked & ~walk
        new_index = np.cumsum(in_queue) - 1
        queue_pos = np.flatnonzero(in_queue[sku])
        queue_ids = line_id[queue_pos]
        self._waiting = _Waiting(
            line_id=line_id,
            sku=sku,
            wanted=wanted,
            line_no=line_no,
            channel=channel,
            order_id=order_id,
            sku_names=sku_names,
            channel_names=channel_names,
            location_names=location_names,
            pools=pools,
            queue_pos=queue_pos,
            queue_ids=queue_ids,
        )
        queue_skus = np.flatnonzero(in_queue)
        return BopQueue(
            sku_codes=[sku_names[i] for i in queue_skus.tolist()],
            available=available[queue_skus],
            line_ids=queue_ids,
            sku_index=new_index[sku[queue_pos]].astype(np.int64),
            wanted=wanted[queue_pos].copy(),
            needs_walk={sku_names[i] for i in np.flatnonzero(walk).tolist()},
        )

    # --- writing --------------------------------------------------------------------------

    def _positions(self, queue: BopQueue) -> npt.NDArray[np.int64]:
        """Where each queue line sits in the arrays read by ``load_queue``."""
        w = self._waiting
        if w is None:
            raise RuntimeError("apply() needs the queue from load_queue() in the same unit of work")
        if queue.line_ids is w.queue_ids:
            return w.queue_pos
        order = np.argsort(w.line_id, kind="stable")
        found = np.searchsorted(w.line_id, queue.line_ids, sorter=order)
        found = np.minimum(found, max(w.line_id.size - 1, 0))
        pos = order[found] if w.line_id.size else found
        if queue.line_ids.size and (w.line_id.size == 0 or not np.array_equal(w.line_id[pos], queue.line_ids)):
            raise RuntimeError("the queue names lines that load_queue() did not read")
        return pos.astype(np.int64)

    def apply(self, queue: BopQueue, granted: npt.NDArray[np.int64], at: datetime, source: str) -> list[events.Event]:
        with _no_gc():
            return self._apply(queue, np.asarray(granted, dtype=np.int64), at, source)

    def _apply(self, queue: BopQueue, granted: npt.NDArray[np.int64], at: datetime, source: str) -> list[events.Event]:
        hit = np.flatnonzero(granted > 0)
        if hit.size == 0:
            return []
        w = self._waiting
        pos = self._positions(queue)[hit]
        assert w is not None
        quantity = granted[hit]
        if np.any(quantity > w.wanted[pos]):
            raise RuntimeError("granted more than a line waits for")
        grant_pos, grant_loc, grant_qty = self._split(pos, quantity)
        if self.conn.dialect.name == "postgresql":
            self._write_postgres(pos, quantity, grant_pos, grant_loc, grant_qty, at, source)
        else:
            with self._sqlite_page_cache():
                self._write_sqlite(pos, quantity, grant_pos, grant_loc, grant_qty, at, source)
        return self._events(pos, quantity, source)

    @contextmanager
    def _sqlite_page_cache(self) -> Iterator[None]:
        """SQLite's default page cache is 2 MB; rank-ordered updates touch most of the lines
        table and its indexes, and with pages going back and forth through the OS cache the
        writes cost nearly twice the CPU. Size it to the database (capped) for the writes and
        put it back after, so a pooled connection does not keep the memory."""
        run = self.conn.exec_driver_sql
        previous = run("PRAGMA cache_size").scalar()
        page_size = run("PRAGMA page_size").scalar() or 4096
        pages = run("PRAGMA page_count").scalar() or 0
        wanted_kib = min(pages * page_size, _SQLITE_CACHE_CAP) // 1024
        if previous is None or wanted_kib <= _cache_kib(previous, page_size):
            yield
            return
        run(f"PRAGMA cache_size = -{int(wanted_kib)}")
        try:
            yield
        finally:
            run(f"PRAGMA cache_size = {int(previous)}")

    def _split(
        self, pos: npt.NDArray[np.int64], quantity: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Each line's units over its SKU's locations, in rank order (one row per line and
        location). A SKU stocked at one location — the usual case — needs no Python loop."""
        w = self._waiting
        assert w is not None
        single = np.fromiter(
            (pool[0][0] if len(pool) == 1 else -1 for pool in w.pools), dtype=np.int64, count=len(w.pools)
        )
        location = single[w.sku[pos]]
        simple = location >= 0
        if simple.all():
            return pos, location, quantity
        rows_pos, rows_loc, rows_qty = [pos[simple]], [location[simple]], [quantity[simple]]
        left: dict[int, list[list[int]]] = {}
        extra_pos: list[int] = []
        extra_loc: list[int] = []
        extra_qty: list[int] = []
        for p, qty in zip(pos[~simple].tolist(), quantity[~simple].tolist(), strict=True):
            s = int(w.sku[p])
            pool = left.get(s)
            if pool is None:
                pool = left[s] = [[loc, units] for loc, units in w.pools[s]]
            for slot in pool:
                take = min(slot[1], qty)
                if take <= 0:
                    continue
                slot[1] -= take
                qty -= take
                extra_pos.append(p)
                extra_loc.append(slot[0])
                extra_qty.append(take)
                if qty == 0:
                    break
            if qty:
                raise RuntimeError(f"granted more of {w.sku_names[s]} than is available")
        rows_pos.append(np.asarray(extra_pos, dtype=np.int64))
        rows_loc.append(np.asarray(extra_loc, dtype=np.int64))
        rows_qty.append(np.asarray(extra_qty, dtype=np.int64))
        # keep rank order (a stable sort on position in the scan)
        all_pos = np.concatenate(rows_pos)
        order = np.argsort(all_pos, kind="stable")
        return all_pos[order], np.concatenate(rows_loc)[order], np.concatenate(rows_qty)[order]

    def _level_deltas(
        self, grant_pos: npt.NDArray[np.int64], grant_loc: npt.NDArray[np.int64], grant_qty: npt.NDArray[np.int64]
    ) -> list[tuple[int, str, str]]:
        """(units, sku, location) per stock level touched."""
        w = self._waiting
        assert w is not None
        n_loc = max(len(w.location_names), 1)
        key = w.sku[grant_pos].astype(np.int64) * n_loc + grant_loc
        keys, inverse = np.unique(key, return_inverse=True)
        totals = np.bincount(inverse, weights=grant_qty).astype(np.int64)
        return [
            (units, w.sku_names[k // n_loc], w.location_names[k % n_loc])
            for k, units in zip(keys.tolist(), totals.tolist(), strict=True)
        ]

    def _write_sqlite(
        self,
        pos: npt.NDArray[np.int64],
        quantity: npt.NDArray[np.int64],
        grant_pos: npt.NDArray[np.int64],
        grant_loc: npt.NDArray[np.int64],
        grant_qty: npt.NDArray[np.int64],
        at: datetime,
        source: str,
    ) -> None:
        w = self._waiting
        assert w is not None
        run = self.conn.exec_driver_sql
        line_ids = w.line_id[pos].tolist()
        done = run(
            "UPDATE order_lines SET allocated = allocated + ?1, backordered = backordered - ?1 "
            "WHERE id = ?2 AND status = 'open' AND backordered >= ?1",
            list(zip(quantity.tolist(), line_ids, strict=True)),
        )
        _expect(done.rowcount, len(line_ids), "order lines")
        deltas = self._level_deltas(grant_pos, grant_loc, grant_qty)
        done = run(
            "UPDATE stock_levels SET allocated = allocated + ?1 WHERE sku = ?2 AND location = ?3 "
            "AND on_hand - allocated >= ?1",
            deltas,
        )
        _expect(done.rowcount, len(deltas), "stock levels")
        skus, locations = w.sku_names, w.location_names
        by_id = np.argsort(w.line_id[grant_pos], kind="stable")  # B-tree order of the holdings key
        h_pos = grant_pos[by_id]
        run(
            "INSERT INTO line_holdings (line_id, location, sku, quantity) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (line_id, location) DO UPDATE SET quantity = line_holdings.quantity + excluded.quantity",
            list(
                zip(
                    w.line_id[h_pos].tolist(),
                    map(locations.__getitem__, grant_loc[by_id].tolist()),
                    map(skus.__getitem__, w.sku[h_pos].tolist()),
                    grant_qty[by_id].tolist(),
                    strict=True,
                )
            ),
        )
        at_text = at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        n = int(grant_pos.size)
        run(
            "INSERT INTO allocation_ledger (order_id, line_no, sku, location, quantity, kind, source, source_ref, at) "
            "VALUES (?, ?, ?, ?, ?, 'allocate', ?, NULL, ?)",
            list(
                zip(
                    map(w.order_id.__getitem__, grant_pos.tolist()),
                    w.line_no[grant_pos].tolist(),
                    map(skus.__getitem__, w.sku[grant_pos].tolist()),
                    map(locations.__getitem__, grant_loc.tolist()),
                    grant_qty.tolist(),
                    repeat(source, n),
                    repeat(at_text, n),
                    strict=True,
                )
            ),
        )

    def _write_postgres(
        self,
        pos: npt.NDArray[np.int64],
        quantity: npt.NDArray[np.int64],
        grant_pos: npt.NDArray[np.int64],
        grant_loc: npt.NDArray[np.int64],
        grant_qty: npt.NDArray[np.int64],
        at: datetime,
        source: str,
    ) -> None:
        w = self._waiting
        assert w is not None
        run = self.conn.exec_driver_sql
        raw = self.conn.connection.driver_connection
        assert raw is not None
        # Hash joins and aggregates over a few hundred thousand grants spill to disk at the
        # default 4 MB; this transaction only.
        run("SET LOCAL work_mem = '256MB'")
        run(
            "CREATE TEMP TABLE IF NOT EXISTS bop_grants "
            "(seq integer, line_id bigint, sku text, location text, qty integer) ON COMMIT DROP"
        )
        run("TRUNCATE bop_grants")
        skus, locations = w.sku_names, w.location_names
        sku_text = [_copy_text(code) for code in skus]
        location_text = [_copy_text(code) for code in locations]
        rows = zip(
            w.line_id[grant_pos].tolist(),
            w.sku[grant_pos].tolist(),
            grant_loc.tolist(),
            grant_qty.tolist(),
            strict=True,
        )
        with raw.cursor() as cur, cur.copy("COPY bop_grants (seq, line_id, sku, location, qty) FROM STDIN") as copy:
            block: list[str] = []
            for seq, (line_id, s, loc, qty) in enumerate(rows):
                block.append(f"{seq}\t{line_id}\t{sku_text[s]}\t{location_text[loc]}\t{qty}\n")
                if len(block) == 50000:
                    copy.write("".join(block))
                    block.clear()
            if block:
                copy.write("".join(block))
        run("ANALYZE bop_grants")
        done = run(
            "UPDATE order_lines o SET allocated = o.allocated + g.qty, backordered = o.backordered - g.qty "
            "FROM (SELECT line_id, SUM(qty) AS qty FROM bop_grants GROUP BY line_id) g "
            "WHERE o.id = g.line_id AND o.status = 'open' AND o.backordered >= g.qty"
        )
        _expect(done.rowcount, int(pos.size), "order lines")
        done = run(
            "UPDATE stock_levels s SET allocated = s.allocated + g.qty "
            "FROM (SELECT sku, location, SUM(qty) AS qty FROM bop_grants GROUP BY sku, location) g "
            "WHERE s.sku = g.sku AND s.location = g.location AND s.on_hand - s.allocated >= g.qty"
        )
        _expect(done.rowcount, len(self._level_deltas(grant_pos, grant_loc, grant_qty)), "stock levels")
        run(
            "INSERT INTO line_holdings (line_id, location, sku, quantity) "
            "SELECT line_id, location, sku, qty FROM bop_grants ORDER BY line_id, location "
            "ON CONFLICT (line_id, location) DO UPDATE SET quantity = line_holdings.quantity + excluded.quantity"
        )
        # The ledger straight from what was read (a COPY costs the server less than joining the
        # grants back to the lines and sorting them).
        at_text = at.astimezone(UTC).isoformat(sep=" ", timespec="microseconds")
        order_of = w.order_id.__getitem__
        with (
            raw.cursor() as cur,
            cur.copy(
                "COPY allocation_ledger (order_id, line_no, sku, location, quantity, kind, source, at) FROM STDIN"
            ) as copy,
        ):
            tail = f"\tallocate\t{_copy_text(source)}\t{at_text}\n"
            block = []
            for p, n, s, loc, qty in zip(
                grant_pos.tolist(),
                w.line_no[grant_pos].tolist(),
                w.sku[grant_pos].tolist(),
                grant_loc.tolist(),
                grant_qty.tolist(),
                strict=True,
            ):
                block.append(f"{_copy_text(order_of(p))}\t{n}\t{sku_text[s]}\t{location_text[loc]}\t{qty}{tail}")
                if len(block) == 50000:
                    copy.write("".join(block))
                    block.clear()
            if block:
                copy.write("".join(block))

    # --- events ---------------------------------------------------------------------------

    def _events(self, pos: npt.NDArray[np.int64], quantity: npt.NDArray[np.int64], source: str) -> list[events.Event]:
        """One BackorderAllocated per order (lines by number; ready when none of the order's
        lines still waits), in order-id order — what ``apply_grants`` records for the same
        grants. (The handler records StockLevelChanged for the SKUs it touched.)"""
        w = self._waiting
        assert w is not None
        left = w.wanted.copy()
        left[pos] -= quantity
        order_of = w.order_id.__getitem__
        still_waiting = set(map(order_of, np.flatnonzero(left > 0).tolist()))
        names = np.asarray(list(map(order_of, pos.tolist())))
        line_no = w.line_no[pos]
        by_order = np.lexsort((line_no, names))
        names = names[by_order]
        sku_of = w.sku[pos]
        skus, channels = w.sku_names, w.channel_names
        lines = list(
            map(
                events.AllocatedLine,
                line_no[by_order].tolist(),
                map(skus.__getitem__, sku_of[by_order].tolist()),
                quantity[by_order].tolist(),
                left[pos[by_order]].tolist(),
            )
        )
        starts = np.flatnonzero(np.concatenate(([True], names[1:] != names[:-1])))
        ends = np.append(starts[1:], names.size).tolist()
        order_names = names[starts].tolist()
        channel_names = list(map(channels.__getitem__, w.channel[pos[by_order[starts]]].tolist()))
        allocated = events.BackorderAllocated
        result: list[events.Event] = [
            allocated(oid, channel, source, tuple(lines[a:b]), oid not in still_waiting)
            for oid, channel, a, b in zip(order_names, channel_names, starts.tolist(), ends, strict=True)
        ]
        return result


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: str) -> str:
    """A value in PostgreSQL's COPY text format."""
    return value.translate(_COPY_ESCAPES)


def _expect(rowcount: int, wanted: int, what: str) -> None:
    if rowcount != wanted:
        raise RuntimeError(f"bulk allocation: {rowcount} of {wanted} {what} matched; the queue changed under the run")
