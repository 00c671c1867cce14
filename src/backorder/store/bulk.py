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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import chain, repeat
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from backorder.domain import events
from backorder.domain.allocation import Claim, Grant
from backorder.domain.model import OPEN_PO_STATUSES
from backorder.services.ports import BopQueue, BulkAllocation, WaitingLine
from backorder.store.repositories import SqlCatalog, SqlOrders

_WAITING_SQL = (
    "SELECT id, sku, order_id, line_no, backordered, ship_complete, channel, priority, placed_at FROM order_lines "
    "WHERE status = 'open' AND backordered > 0 "
    "ORDER BY sku, priority DESC, placed_at, order_id, line_no"
)
_FETCH = 65536
_UNPLACED = 1 << 30
_SQLITE_CACHE_CAP = 512 * 1024 * 1024
_DATE_PASSES = 8  # ETA dates handled one pass each; more than that: one join


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
    ship_complete: npt.NDArray[np.bool_]
    priority: npt.NDArray[np.int64]
    order_id: tuple[str, ...]
    placed_at: tuple[Any, ...]  # as the driver returns it (text on SQLite); converted for walk lines only
    sku_names: list[str]
    channel_names: list[str]
    location_names: list[str]
    pools: list[list[tuple[int, int]]]  # per SKU: (location index, available) in preference order
    queue_pos: npt.NDArray[np.int64]  # position of each queue line in these arrays
    queue_ids: npt.NDArray[np.int64]  # the very array handed out as queue.line_ids
    queue_skus: npt.NDArray[np.int64]  # scan SKU index of each queue SKU (queue.sku_codes)
    walk: npt.NDArray[np.bool_]  # per scan SKU: left to the general walk
    special: npt.NDArray[np.bool_]  # per line: ship-complete, or of a channel limited to some locations
    left: npt.NDArray[np.int64] | None = None  # units each line still waits for, once applied
    sku_index: dict[str, int] | None = None  # SKU code → index into sku_names


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

    def _scan(self) -> tuple[list[npt.NDArray[Any]], tuple[str, ...], tuple[Any, ...], list[str], list[str]]:
        """Stream the waiting lines into columns (ids, SKU codes, wanted, line numbers, ship
        complete, channel codes, priority) plus the order ids and placing times."""
        skus, channels = _Codes(), _Codes()
        dtypes = (np.int64, np.int32, np.int64, np.int64, bool, np.int16, np.int64)
        parts: list[list[npt.NDArray[Any]]] = [[] for _ in dtypes]
        order_ids: list[tuple[str, ...]] = []
        placed: list[tuple[Any, ...]] = []
        result = self.conn.exec_driver_sql(_WAITING_SQL)
        cursor = getattr(result, "cursor", None)
        fetch = cursor.fetchmany if cursor is not None else result.fetchmany
        try:
            while True:
                chunk = fetch(_FETCH)
                if not chunk:
                    break
                n = len(chunk)
                ids, sku, order, line_no, wanted, ship_complete, channel, priority, placed_at = zip(*chunk, strict=True)
                del chunk
                parts[0].append(np.fromiter(ids, dtype=np.int64, count=n))
                parts[1].append(np.fromiter(map(skus.__getitem__, sku), dtype=np.int32, count=n))
                parts[2].append(np.fromiter(wanted, dtype=np.int64, count=n))
                parts[3].append(np.fromiter(line_no, dtype=np.int64, count=n))
                parts[4].append(np.fromiter(ship_complete, dtype=bool, count=n))
                parts[5].append(np.fromiter(map(channels.__getitem__, channel), dtype=np.int16, count=n))
                parts[6].append(np.fromiter(priority, dtype=np.int64, count=n))
                order_ids.append(order)
                placed.append(placed_at)
        finally:
            result.close()
        columns = [np.concatenate(p) if p else np.zeros(0, dtype=d) for p, d in zip(parts, dtypes, strict=True)]
        return (
            columns,
            tuple(chain.from_iterable(order_ids)),
            tuple(chain.from_iterable(placed)),
            list(skus),
            list(channels),
        )

    def load_queue(self, walk_channels: set[str]) -> BopQueue:
        with _no_gc():
            return self._load_queue(walk_channels)

    def _lock(self) -> None:
        """Serialise with every other writer of the SKUs this run can touch: their rows in
        ``skus`` locked in code order, as ``StockRepository.lock_skus`` does (SQLite: ``BEGIN
        IMMEDIATE`` already holds the database's write lock). Read after this, stock and queues
        stay as read until commit."""
        if self.conn.dialect.name == "postgresql":
            # Stocked SKUs, and every SKU a waiting ship-complete line is on: the walk may judge
            # those orders whole (their SKUs' ETAs are refreshed too), all locked in one pass.
            self.conn.exec_driver_sql(
                "SELECT code FROM skus WHERE code IN (SELECT sku FROM stock_levels WHERE on_hand > allocated "
                "UNION SELECT sku FROM order_lines WHERE status = 'open' AND backordered > 0 AND ship_complete) "
                "ORDER BY code FOR UPDATE"
            )

    def _load_queue(self, walk_channels: set[str]) -> BopQueue:
        self._lock()
        pools_by_code, location_names = self._stock()
        columns, order_id, placed_at, sku_names, channel_names = self._scan()
        line_id, sku, wanted, line_no, ship_complete, channel, priority = columns
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
            ship_complete=ship_complete,
            priority=priority,
            order_id=order_id,
            placed_at=placed_at,
            sku_names=sku_names,
            channel_names=channel_names,
            location_names=location_names,
            pools=pools,
            queue_pos=queue_pos,
            queue_ids=queue_ids,
            queue_skus=np.flatnonzero(in_queue),
            walk=walk,
            special=special,
        )
        queue_skus = self._waiting.queue_skus
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

    def walk_lines(
        self, queue: BopQueue, granted: npt.NDArray[np.int64]
    ) -> tuple[list[WaitingLine], dict[str, dict[str, int]]]:
        w = self._waiting
        if w is None:
            raise RuntimeError("walk_lines() needs the queue from load_queue() in the same unit of work")
        granted = np.asarray(granted, dtype=np.int64)
        # What the queue's grants leave: per line, and per SKU (taken from its locations in
        # preference order, as ``_split`` hands them out).
        left = w.wanted.copy()
        left[self._positions(queue)] -= granted
        taken = np.zeros(len(w.sku_names), dtype=np.int64)
        np.add.at(taken, w.queue_skus[queue.sku_index], granted)
        walk_skus = np.zeros(len(w.sku_names), dtype=bool)
        for code in queue.needs_walk:
            index = self._sku_index.get(code)
            if index is not None:
                walk_skus[index] = True
        in_walk = walk_skus[w.sku]
        # Ship-complete orders with a line in the walk are judged whole: their lines elsewhere
        # come along (on a SKU of the queue such a line ranks after its stock ran out, so the
        # contract gives it nothing; the walk sees that SKU's remaining stock).
        order_of = w.order_id.__getitem__
        whole = set(map(order_of, np.flatnonzero(in_walk & w.ship_complete).tolist()))
        elsewhere = [p for p in np.flatnonzero(~in_walk & w.ship_complete).tolist() if order_of(p) in whole]
        # In a walked SKU, a line that is not ship-complete gets nothing once the ordinary lines
        # ranked before it want all the stock (they take it whatever the others do): leave it out.
        ordinary = np.where(in_walk & ~w.special, w.wanted, 0)
        before = np.cumsum(ordinary) - ordinary
        starts = np.ones(w.sku.size, dtype=bool)
        np.not_equal(w.sku[1:], w.sku[:-1], out=starts[1:])
        ahead = before - before[np.flatnonzero(starts)][np.cumsum(starts) - 1]
        stock = np.fromiter((sum(max(u, 0) for _, u in pool) for pool in w.pools), dtype=np.int64, count=len(w.pools))
        reachable = in_walk & (w.ship_complete | (ahead < stock[w.sku]))
        positions = np.concatenate([np.flatnonzero(reachable), np.asarray(elsewhere, dtype=np.int64)])
        positions = positions[left[positions] > 0]
        pools: dict[str, dict[str, int]] = {}
        locations, skus, channels = w.location_names, w.sku_names, w.channel_names
        for s in np.unique(w.sku[positions]).tolist():
            pool: dict[str, int] = {}
            used = int(taken[s])
            for loc, units in w.pools[s]:
                use = min(units, used)
                used -= use
                pool[locations[loc]] = units - use
            pools[skus[s]] = pool
        lines = [
            WaitingLine(
                Claim(line_id, order_of(p), line_no, skus[s], units, priority, _utc(w.placed_at[p]), ship_complete),
                channels[c],
                None,
            )
            for p, line_id, line_no, s, units, priority, ship_complete, c in zip(
                positions.tolist(),
                w.line_id[positions].tolist(),
                w.line_no[positions].tolist(),
                w.sku[positions].tolist(),
                left[positions].tolist(),
                w.priority[positions].tolist(),
                w.ship_complete[positions].tolist(),
                w.channel[positions].tolist(),
                strict=True,
            )
        ]
        return lines, pools

    @property
    def _sku_index(self) -> dict[str, int]:
        w = self._waiting
        assert w is not None
        if w.sku_index is None:
            w.sku_index = {code: i for i, code in enumerate(w.sku_names)}
        return w.sku_index

    def apply(
        self,
        queue: BopQueue,
        granted: npt.NDArray[np.int64],
        at: datetime,
        source: str,
        walk: Sequence[Grant] = (),
    ) -> list[events.Event]:
        with _no_gc():
            return self._apply(queue, np.asarray(granted, dtype=np.int64), at, source, walk)

    def _walk_rows(
        self, walk: Sequence[Grant]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The walk's grants as (scan position, location index, units), one row per grant."""
        w = self._waiting
        assert w is not None
        ids = np.fromiter((g.line_key for g in walk), dtype=np.int64, count=len(walk))
        order = np.argsort(w.line_id, kind="stable")
        found = np.minimum(np.searchsorted(w.line_id, ids, sorter=order), max(w.line_id.size - 1, 0))
        pos = order[found] if w.line_id.size else found
        if ids.size and (w.line_id.size == 0 or not np.array_equal(w.line_id[pos], ids)):
            raise RuntimeError("the walk granted to lines that load_queue() did not read")
        location = {code: i for i, code in enumerate(w.location_names)}
        loc = np.fromiter((location[g.location] for g in walk), dtype=np.int64, count=len(walk))
        qty = np.fromiter((g.quantity for g in walk), dtype=np.int64, count=len(walk))
        return pos.astype(np.int64), loc, qty

    def _apply(
        self, queue: BopQueue, granted: npt.NDArray[np.int64], at: datetime, source: str, walk: Sequence[Grant]
    ) -> list[events.Event]:
        w = self._waiting
        if w is None:
            raise RuntimeError("apply() needs the queue from load_queue() in the same unit of work")
        hit = np.flatnonzero(granted > 0)
        bulk_pos = self._positions(queue)[hit]
        grant_pos, grant_loc, grant_qty = self._split(bulk_pos, granted[hit])
        if walk:
            walk_pos, walk_loc, walk_qty = self._walk_rows(walk)
            grant_pos = np.concatenate([grant_pos, walk_pos])
            grant_loc = np.concatenate([grant_loc, walk_loc])
            grant_qty = np.concatenate([grant_qty, walk_qty])
            by_rank = np.argsort(grant_pos, kind="stable")  # rank order (scan order)
            grant_pos, grant_loc, grant_qty = grant_pos[by_rank], grant_loc[by_rank], grant_qty[by_rank]
        if grant_pos.size == 0:
            w.left = w.wanted.copy()
            return []
        pos, first = np.unique(grant_pos, return_index=True)
        quantity = np.add.reduceat(grant_qty, first) if np.all(np.diff(grant_pos) >= 0) else None
        if quantity is None:  # not in rank order: total per line the slow way
            quantity = np.zeros(pos.size, dtype=np.int64)
            np.add.at(quantity, np.searchsorted(pos, grant_pos), grant_qty)
        if np.any(grant_qty <= 0) or np.any(quantity > w.wanted[pos]):
            raise RuntimeError("granted more than a line waits for")
        if self.conn.dialect.name == "postgresql":
            self._write_postgres(pos, quantity, grant_pos, grant_loc, grant_qty, at, source)
        else:
            with self._sqlite_page_cache():
                self._write_sqlite(pos, quantity, grant_pos, grant_loc, grant_qty, at, source)
        w.left = w.wanted.copy()
        w.left[pos] -= quantity
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
            "UPDATE order_lines SET allocated = allocated + ?1, backordered = backordered - ?1, "
            "eta = CASE WHEN backordered = ?1 THEN NULL ELSE eta END "
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
            "UPDATE order_lines o SET allocated = o.allocated + g.qty, backordered = o.backordered - g.qty, "
            "eta = CASE WHEN o.backordered = g.qty THEN NULL ELSE o.eta END "
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
        assert w is not None and w.left is not None
        left = w.left
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

    # --- ETAs (issue 2 perf) --------------------------------------------------------------

    def waiting_ranked(self, skus: Iterable[str]) -> dict[str, list[tuple[int, int]]]:
        w = self._waiting
        if w is None:
            raise RuntimeError("waiting_ranked() needs load_queue() in the same unit of work")
        left = w.left if w.left is not None else w.wanted
        index = self._sku_index
        result: dict[str, list[tuple[int, int]]] = {}
        for code in sorted(set(skus)):
            s = index.get(code)
            if s is None:
                continue
            # the scan is grouped by SKU, indices in order of first appearance: a sorted column
            a, b = np.searchsorted(w.sku, [s, s + 1])
            keep = np.flatnonzero(left[a:b] > 0) + a
            if keep.size:
                result[code] = list(zip(w.line_id[keep].tolist(), left[keep].tolist(), strict=True))
        return result

    def open_supply(self) -> dict[str, list[tuple[date | None, int]]]:
        statuses = ", ".join(f"'{status.value}'" for status in OPEN_PO_STATUSES)
        rows = self.conn.exec_driver_sql(
            "SELECT pl.po_id, pl.sku, pl.expected_on, pl.quantity - pl.received FROM po_lines pl "
            "JOIN purchase_orders p ON p.id = pl.po_id "
            f"WHERE p.status IN ({statuses}) AND pl.sku IN "
            "(SELECT sku FROM po_lines WHERE quantity > received) ORDER BY pl.po_id, pl.id"
        )
        supply: dict[str, list[tuple[date | None, int]]] = {}
        seen: set[tuple[int, str]] = set()
        for po_id, sku, expected, outstanding in rows:
            if (po_id, sku) in seen:
                continue  # a PO's first line of a SKU is the one counted (``PurchaseOrder.line_for``)
            seen.add((po_id, sku))
            if outstanding > 0:
                supply.setdefault(sku, []).append((_day(expected), int(outstanding)))
        return supply

    def lead_times(self, skus: Iterable[str]) -> dict[str, int | None]:
        wanted = set(skus)
        if len(wanted) < 2000:
            return SqlCatalog(self.conn).lead_times(wanted)
        rows = self.conn.exec_driver_sql(
            "SELECT k.code, k.preferred_supplier, i.lead_time_days, s.lead_time_days FROM skus k "
            "LEFT JOIN supplier_items i ON i.sku = k.code AND i.supplier = k.preferred_supplier "
            "LEFT JOIN suppliers s ON s.code = k.preferred_supplier"
        )
        return {
            code: None if not supplier else (item_days if item_days is not None else supplier_days)
            for code, supplier, item_days, supplier_days in rows
            if code in wanted
        }

    def save_etas(self, due_by_sku: Mapping[str, date], due_by_line: Mapping[int, date]) -> list[events.Event]:
        run = self.conn.exec_driver_sql
        pg = self.conn.dialect.name == "postgresql"
        moved: list[tuple[str, str, int, str, date | None, date]] = []  # order, channel, line no, sku, was, now
        if due_by_sku:
            if pg:
                run("CREATE TEMP TABLE IF NOT EXISTS bop_due (sku text PRIMARY KEY, due date) ON COMMIT DROP")
                run("TRUNCATE bop_due")
                raw = self.conn.connection.driver_connection
                assert raw is not None
                with raw.cursor() as cur, cur.copy("COPY bop_due (sku, due) FROM STDIN") as copy:
                    copy.write("".join(f"{_copy_text(code)}\t{due.isoformat()}\n" for code, due in due_by_sku.items()))
                run("ANALYZE bop_due")
            else:
                run("CREATE TEMP TABLE IF NOT EXISTS bop_due (sku TEXT PRIMARY KEY, due DATE)")
                run("DELETE FROM bop_due")
                run("INSERT INTO bop_due (sku, due) VALUES (?, ?)", [(c, d.isoformat()) for c, d in due_by_sku.items()])
            # One pass over the lines per distinct date (SKUs share a few lead times), the
            # SKU test last: it runs only for lines whose ETA differs from that date.
            table = "order_lines" if pg else "order_lines NOT INDEXED"
            mark = "%(due)s" if pg else ":due"
            stale = (
                f"status = 'open' AND backordered > 0 AND (eta IS NULL OR eta <> {mark}) "
                f"AND sku IN (SELECT sku FROM bop_due WHERE due = {mark})"
            )
            dates = sorted(set(due_by_sku.values()))
            for due in dates if len(dates) <= _DATE_PASSES else ():
                param = {"due": due if pg else due.isoformat()}
                rows = run(f"SELECT order_id, channel, line_no, sku, eta FROM {table} WHERE {stale}", param).fetchall()
                if not rows:
                    continue
                done = run(f"UPDATE order_lines SET eta = {mark} WHERE {stale}", param)
                _expect(done.rowcount, len(rows), "ETA changes")
                moved.extend((o, c, n, sku, _day(was), due) for o, c, n, sku, was in rows)
            if len(dates) > _DATE_PASSES:  # many lead times: one join instead
                joined = (
                    "status = 'open' AND backordered > 0 AND (eta IS NULL OR eta <> d.due) AND d.sku = order_lines.sku"
                )
                rows = run(
                    "SELECT order_lines.order_id, order_lines.channel, order_lines.line_no, order_lines.sku, "
                    f"order_lines.eta, d.due FROM {table} JOIN bop_due d ON {joined}"
                ).fetchall()
                if rows:
                    done = run(f"UPDATE order_lines SET eta = d.due FROM bop_due d WHERE {joined}")
                    _expect(done.rowcount, len(rows), "ETA changes")
                    moved.extend((o, c, n, sku, _day(was), _day(due) or due) for o, c, n, sku, was, due in rows)
            if not pg:
                run("DROP TABLE bop_due")
        if due_by_line:
            ids = sorted(due_by_line)
            changed: list[tuple[Any, int]] = []
            for i in range(0, len(ids), 900):
                chunk = ids[i : i + 900]
                marks = ", ".join("?" if not pg else "%s" for _ in chunk)
                for line_id, o, c, n, sku, was in run(
                    "SELECT id, order_id, channel, line_no, sku, eta FROM order_lines "
                    f"WHERE id IN ({marks}) AND status = 'open' AND backordered > 0",
                    tuple(chunk),
                ):
                    was, now = _day(was), due_by_line[line_id]
                    if was != now:
                        changed.append((now if pg else now.isoformat(), line_id))
                        moved.append((o, c, n, sku, was, now))
            if changed:
                done = run(
                    f"UPDATE order_lines SET eta = {'%s' if pg else '?'} WHERE id = {'%s' if pg else '?'}", changed
                )
                _expect(done.rowcount, len(changed), "ETA changes")
        self._waiting = None  # the run's last step: the scan is not needed any more
        by_order: dict[tuple[str, str], list[events.EtaChange]] = {}
        for o, c, n, sku, was, now in moved:
            by_order.setdefault((o, c), []).append(events.EtaChange(n, sku, was, now))
        return [
            events.BackorderEtaChanged(o, c, tuple(sorted(changes, key=lambda change: change.line_no)))
            for (o, c), changes in sorted(by_order.items())
        ]


def _utc(value: Any) -> datetime:
    """A placing time as the driver returned it (SQLite: naive UTC text) as an aware datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _day(value: Any) -> date | None:
    """A date as the driver returned it (SQLite: ISO text)."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: str) -> str:
    """A value in PostgreSQL's COPY text format."""
    return value.translate(_COPY_ESCAPES)


def _expect(rowcount: int, wanted: int, what: str) -> None:
    if rowcount != wanted:
        raise RuntimeError(f"bulk allocation: {rowcount} of {wanted} {what} matched; the queue changed under the run")
