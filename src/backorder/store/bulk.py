"""The full backorder run over every SKU at once: read all waiting lines in rank order through
one covering index, allocate with the vectorised contract, write the results in bulk (SQLite:
``executemany``; PostgreSQL: ``COPY`` into a temporary table and one ``UPDATE … FROM``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from backorder.domain import events
from backorder.services.ports import BopQueue, BulkAllocation
from backorder.store.repositories import SqlOrders, _chunks

_WAITING_SQL = (
    "SELECT id, sku, order_id, line_no, backordered, ship_complete, channel FROM order_lines "
    "WHERE status = 'open' AND backordered > 0 "
    "ORDER BY sku, priority DESC, placed_at, order_id, line_no"
)


class SqlBulkAllocation(BulkAllocation):
    def __init__(self, conn: Connection, orders: SqlOrders) -> None:
        self.conn = conn
        self.orders = orders
        self._rows: dict[int, tuple[str, int, str]] = {}
        self._pools: dict[str, dict[str, int]] = {}

    def _locations(self) -> list[str]:
        return [r[0] for r in self.conn.exec_driver_sql("SELECT code FROM locations ORDER BY position, code")]

    def load_queue(self, walk_channels: set[str]) -> BopQueue:
        position = {code: i for i, code in enumerate(self._locations())}
        pools: dict[str, dict[str, int]] = defaultdict(dict)
        for sku, location, on_hand, allocated in sorted(
            self.conn.exec_driver_sql(
                "SELECT sku, location, on_hand, allocated FROM stock_levels WHERE on_hand > allocated"
            ).fetchall(),
            key=lambda r: (r[0], position.get(r[1], 1 << 30), r[1]),
        ):
            pools[sku][location] = on_hand - allocated
        self._pools = pools
        rows = self.conn.exec_driver_sql(_WAITING_SQL).fetchall()
        sku_codes: list[str] = []
        available: list[int] = []
        needs_walk: set[str] = set()
        keep_ids: list[int] = []
        keep_sku: list[int] = []
        keep_wanted: list[int] = []
        current, current_index, skip = None, -1, True
        meta = self._rows
        meta.clear()
        for line_id, sku, order_id, line_no, backordered, ship_complete, channel in rows:
            if sku != current:
                current = sku
                skip = sku not in pools
                if not skip:
                    sku_codes.append(sku)
                    available.append(sum(pools[sku].values()))
                    current_index = len(sku_codes) - 1
            if skip:
                continue
            if ship_complete or channel in walk_channels:
                needs_walk.add(sku)
            keep_ids.append(line_id)
            keep_sku.append(current_index)
            keep_wanted.append(backordered)
            meta[line_id] = (order_id, line_no, channel)
        sku_index = np.fromiter(keep_sku, dtype=np.int64, count=len(keep_sku))
        queue = BopQueue(
            sku_codes=sku_codes,
            available=np.asarray(available, dtype=np.int64),
            line_ids=np.fromiter(keep_ids, dtype=np.int64, count=len(keep_ids)),
            sku_index=sku_index,
            wanted=np.fromiter(keep_wanted, dtype=np.int64, count=len(keep_wanted)),
            needs_walk=needs_walk,
        )
        if needs_walk:
            walk_idx = np.array([i for i, code in enumerate(sku_codes) if code in needs_walk], dtype=np.int64)
            keep = ~np.isin(queue.sku_index, walk_idx)
            queue.line_ids, queue.sku_index, queue.wanted = queue.line_ids[keep], queue.sku_index[keep], queue.wanted[keep]
            queue.available = queue.available.copy()
            queue.available[walk_idx] = 0
        return queue

    def apply(
        self, queue: BopQueue, granted: npt.NDArray[np.int64], at: datetime, source: str
    ) -> list[events.Event]:
        hit = np.flatnonzero(granted > 0)
        if hit.size == 0:
            return []
        line_ids = queue.line_ids[hit].tolist()
        quantities = granted[hit].tolist()
        remaining = (queue.wanted[hit] - granted[hit]).tolist()
        skus = [queue.sku_codes[i] for i in queue.sku_index[hit].tolist()]
        # split each line's units over its SKU's locations, in rank order
        by_location: list[tuple[int, str, str, int]] = []  # (line_id, sku, location, qty)
        level_delta: dict[tuple[str, str], int] = defaultdict(int)
        pools = {sku: dict(locs) for sku, locs in self._pools.items()}
        for line_id, sku, qty in zip(line_ids, skus, quantities, strict=True):
            pool = pools[sku]
            if len(pool) == 1:
                location = next(iter(pool))
                by_location.append((line_id, sku, location, qty))
                level_delta[(sku, location)] += qty
                continue
            for location in pool:
                take = min(pool[location], qty)
                if take <= 0:
                    continue
                pool[location] -= take
                qty -= take
                by_location.append((line_id, sku, location, take))
                level_delta[(sku, location)] += take
                if qty == 0:
                    break
        self._write(line_ids, quantities, by_location, level_delta, at, source)
        return self._events(line_ids, skus, quantities, remaining, source)

    def _write(
        self,
        line_ids: list[int],
        quantities: list[int],
        by_location: list[tuple[int, str, str, int]],
        level_delta: dict[tuple[str, str], int],
        at: datetime,
        source: str,
    ) -> None:
        meta = self._rows
        ledger = [
            (meta[line_id][0], meta[line_id][1], sku, location, qty, "allocate", source, None, at)
            for line_id, sku, location, qty in by_location
        ]
        if self.conn.dialect.name == "postgresql":
            self._write_postgres(line_ids, quantities, by_location, level_delta, ledger)
            return
        run = self.conn.exec_driver_sql
        run(
            "UPDATE order_lines SET allocated = allocated + ?, backordered = backordered - ? WHERE id = ?",
            [(q, q, i) for i, q in zip(line_ids, quantities, strict=True)],
        )
        run(
            "UPDATE stock_levels SET allocated = allocated + ? WHERE sku = ? AND location = ?",
            [(q, sku, loc) for (sku, loc), q in level_delta.items()],
        )
        run(
            "INSERT INTO line_holdings (line_id, location, sku, quantity) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (line_id, location) DO UPDATE SET quantity = line_holdings.quantity + excluded.quantity",
            [(i, loc, sku, q) for i, sku, loc, q in by_location],
        )
        at_text = at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        run(
            "INSERT INTO allocation_ledger (order_id, line_no, sku, location, quantity, kind, source, source_ref, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [row[:8] + (at_text,) for row in ledger],
        )

    def _write_postgres(
        self,
        line_ids: list[int],
        quantities: list[int],
        by_location: list[tuple[int, str, str, int]],
        level_delta: dict[tuple[str, str], int],
        ledger: list[tuple[Any, ...]],
    ) -> None:
        run = self.conn.exec_driver_sql
        raw = self.conn.connection.driver_connection
        assert raw is not None
        run("CREATE TEMP TABLE IF NOT EXISTS bop_grants (line_id bigint, sku text, location text, qty integer) ON COMMIT DROP")
        run("TRUNCATE bop_grants")
        with raw.cursor() as cur, cur.copy("COPY bop_grants (line_id, sku, location, qty) FROM STDIN") as copy:
            for row in by_location:
                copy.write_row(row)
        run(
            "UPDATE order_lines o SET allocated = o.allocated + g.qty, backordered = o.backordered - g.qty "
            "FROM (SELECT line_id, SUM(qty) AS qty FROM bop_grants GROUP BY line_id) g WHERE o.id = g.line_id"
        )
        run(
            "UPDATE stock_levels s SET allocated = s.allocated + g.qty "
            "FROM (SELECT sku, location, SUM(qty) AS qty FROM bop_grants GROUP BY sku, location) g "
            "WHERE s.sku = g.sku AND s.location = g.location"
        )
        run(
            "INSERT INTO line_holdings (line_id, location, sku, quantity) "
            "SELECT line_id, location, sku, qty FROM bop_grants "
            "ON CONFLICT (line_id, location) DO UPDATE SET quantity = line_holdings.quantity + excluded.quantity"
        )
        with raw.cursor() as cur, cur.copy(
            "COPY allocation_ledger (order_id, line_no, sku, location, quantity, kind, source, source_ref, at) FROM STDIN"
        ) as copy:
            for row in ledger:
                copy.write_row(row)
        del line_ids, quantities, level_delta  # totals are derived from bop_grants above

    def _events(
        self, line_ids: list[int], skus: list[str], quantities: list[int], remaining: list[int], source: str
    ) -> list[events.Event]:
        meta = self._rows
        per_order: dict[str, list[events.AllocatedLine]] = defaultdict(list)
        channel_of: dict[str, str] = {}
        for line_id, sku, qty, left in zip(line_ids, skus, quantities, remaining, strict=True):
            order_id, line_no, channel = meta[line_id]
            per_order[order_id].append(events.AllocatedLine(line_no, sku, qty, left))
            channel_of[order_id] = channel
        still_waiting = self._orders_still_waiting(per_order)
        result: list[events.Event] = [
            events.BackorderAllocated(
                order_id, channel_of[order_id], source, tuple(sorted(lines, key=lambda a: a.line_no)),
                order_id not in still_waiting,
            )
            for order_id, lines in sorted(per_order.items())
        ]
        result.extend(events.StockLevelChanged(sku) for sku in sorted(set(skus)))
        return result

    def _orders_still_waiting(self, order_ids: Iterable[str]) -> set[str]:
        waiting: set[str] = set()
        ids = sorted(order_ids)
        param = "?" if self.conn.dialect.name == "sqlite" else "%s"
        for chunk in _chunks(ids, 900):
            marks = ",".join([param] * len(chunk))
            waiting.update(
                r[0]
                for r in self.conn.exec_driver_sql(
                    f"SELECT DISTINCT order_id FROM order_lines WHERE order_id IN ({marks}) "
                    "AND status = 'open' AND backordered > 0",
                    tuple(chunk),
                )
            )
        return waiting

