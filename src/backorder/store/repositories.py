"""SQL implementations of the service ports, on one Core connection inside one transaction."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from backorder.domain.allocation import Claim, Holding
from backorder.domain.errors import DuplicateOrder
from backorder.domain.eta import Supply
from backorder.domain.model import (
    LineStatus,
    Order,
    OrderLine,
    PoStatus,
    PurchaseOrder,
    PurchaseOrderLine,
    Sku,
    StockLevel,
    StockPosition,
    Supplier,
    SupplierItem,
)
from backorder.services.ports import (
    SHIPMENT_SOURCE,
    AllocationRecord,
    CatalogRepository,
    OrderRepository,
    Outbox,
    OutboxMessage,
    PurchasingRepository,
    StockRepository,
    StockScope,
    WaitingLine,
)
from backorder.store import privacy, statements
from backorder.store import tables as t


def _chunks(values: Sequence[Any], size: int = 900) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def upsert(conn: Connection, table: Any, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """Insert or update by primary key, in either dialect."""
    if not rows:
        return
    dialect = conn.dialect.name
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    updates = {c: ins.excluded[c] for c in rows[0] if c not in keys}
    stmt = ins.on_conflict_do_update(index_elements=keys, set_=updates) if updates else ins.on_conflict_do_nothing()
    conn.execute(stmt, rows)


def _sku_from_row(row: Any) -> Sku:
    return Sku(
        code=row.code,
        name=row.name,
        brand=row.brand,
        product_line=row.product_line,
        colour=row.colour,
        pigments=tuple(p for p in row.pigments.split() if p),
        size=row.size,
        hazmat=bool(row.hazmat),
        safety_stock=row.safety_stock,
        reorder_point=row.reorder_point,
        order_up_to=row.order_up_to,
        preferred_supplier=row.preferred_supplier,
        unit_price=Decimal(row.unit_price) if row.unit_price is not None else None,
    )


class SqlCatalog(CatalogRepository):
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._locations: list[str] | None = None
        self._skus: dict[str, Sku] = {}  # read or written in this transaction (Sku is immutable)

    def get_skus(self, codes: Iterable[str]) -> dict[str, Sku]:
        wanted = set(codes)
        found = {code: self._skus[code] for code in wanted if code in self._skus}
        for chunk in _chunks(sorted(wanted - set(found))):
            for row in self.conn.execute(statements.skus_by_code(), {"keys": list(chunk)}):
                found[row.code] = self._skus[row.code] = _sku_from_row(row)
        return found

    def remember(self, sku: Sku) -> Sku:
        """Keep a SKU row read elsewhere in this transaction (``SqlStock.lock_change_scope``)."""
        self._skus[sku.code] = sku
        return sku

    def all_skus(self) -> list[Sku]:
        return [_sku_from_row(r) for r in self.conn.execute(select(t.skus).order_by(t.skus.c.code))]

    def lead_times(self, codes: Iterable[str]) -> dict[str, int | None]:
        result: dict[str, int | None] = {}
        for chunk in _chunks(sorted(set(codes))):
            for code, supplier, item_days, supplier_days in self.conn.execute(
                statements.lead_times(), {"keys": list(chunk)}
            ):
                result[code] = None if not supplier else (item_days if item_days is not None else supplier_days)
        return result

    def upsert_sku(self, sku: Sku) -> None:
        self._skus.pop(sku.code, None)
        upsert(
            self.conn,
            t.skus,
            [
                {
                    "code": sku.code,
                    "name": sku.name,
                    "brand": sku.brand,
                    "product_line": sku.product_line,
                    "colour": sku.colour,
                    "pigments": " ".join(sku.pigments),
                    "size": sku.size,
                    "hazmat": sku.hazmat,
                    "safety_stock": sku.safety_stock,
                    "reorder_point": sku.reorder_point,
                    "order_up_to": sku.order_up_to,
                    "preferred_supplier": sku.preferred_supplier,
                    "unit_price": sku.unit_price,
                }
            ],
            ["code"],
        )

    def get_supplier(self, code: str) -> Supplier | None:
        row = self.conn.execute(select(t.suppliers).where(t.suppliers.c.code == code)).first()
        return Supplier(row.code, row.name, row.email, row.lead_time_days) if row else None

    def upsert_supplier(self, supplier: Supplier) -> None:
        upsert(
            self.conn,
            t.suppliers,
            [
                {
                    "code": supplier.code,
                    "name": supplier.name,
                    "email": supplier.email,
                    "lead_time_days": supplier.lead_time_days,
                }
            ],
            ["code"],
        )

    def supplier_items(self, skus: Iterable[str]) -> dict[tuple[str, str], SupplierItem]:
        found: dict[tuple[str, str], SupplierItem] = {}
        for chunk in _chunks(sorted(set(skus))):
            for r in self.conn.execute(statements.supplier_items_by_sku(), {"keys": list(chunk)}):
                found[(r.supplier, r.sku)] = SupplierItem(
                    r.supplier, r.sku, r.supplier_sku, Decimal(r.unit_cost), r.lead_time_days, r.moq, r.case_pack
                )
        return found

    def upsert_supplier_item(self, item: SupplierItem) -> None:
        upsert(
            self.conn,
            t.supplier_items,
            [
                {
                    "supplier": item.supplier,
                    "sku": item.sku,
                    "supplier_sku": item.supplier_sku,
                    "unit_cost": item.unit_cost,
                    "lead_time_days": item.lead_time_days,
                    "moq": item.moq,
                    "case_pack": item.case_pack,
                }
            ],
            ["supplier", "sku"],
        )

    def locations(self) -> list[str]:
        if self._locations is None:
            self._locations = list(self.conn.execute(statements.location_codes()).scalars())
        return list(self._locations)

    def ensure_location(self, code: str) -> None:
        if code in self.locations():
            return
        position = self.conn.execute(select(func.coalesce(func.max(t.locations.c.position), -1) + 1)).scalar_one()
        upsert(self.conn, t.locations, [{"code": code, "position": position}], ["code"])
        self._locations = None


def apply_location_order(conn: Connection, codes: Sequence[str]) -> None:
    """Configured locations first, in the given order; others keep their order after them."""
    known = list(
        conn.execute(select(t.locations.c.code).order_by(t.locations.c.position, t.locations.c.code)).scalars()
    )
    ordered = list(dict.fromkeys([*codes, *known]))
    upsert(conn, t.locations, [{"code": code, "position": i} for i, code in enumerate(ordered)], ["code"])


class SqlStock(StockRepository):
    def __init__(self, conn: Connection, catalog: SqlCatalog | None = None) -> None:
        self.conn = conn
        self._locked: set[str] = set()  # SKUs this transaction has locked
        self._catalog = catalog if catalog is not None else SqlCatalog(conn)  # its SKU rows are shared

    def lock_skus(self, skus: Iterable[str]) -> None:
        codes = sorted(set(skus) - self._locked)
        if self.conn.dialect.name != "postgresql" or not codes:
            return  # SQLite: BEGIN IMMEDIATE already holds the database's write lock
        self._locked.update(codes)  # held until the transaction ends: taking them again changes nothing
        for chunk in _chunks(codes):
            self.conn.execute(
                select(t.skus.c.code).where(t.skus.c.code.in_(chunk)).order_by(t.skus.c.code).with_for_update()
            )

    def levels(self, skus: Iterable[str]) -> dict[tuple[str, str], StockLevel]:
        found: dict[tuple[str, str], StockLevel] = {}
        for chunk in _chunks(sorted(set(skus))):
            for r in self.conn.execute(statements.stock_levels_by_sku(), {"keys": list(chunk)}):
                found[(r.sku, r.location)] = StockLevel(r.sku, r.location, r.on_hand, r.allocated)
        return found

    def save_levels(self, levels: Iterable[StockLevel]) -> None:
        latest = {(lv.sku, lv.location): lv for lv in levels}  # one row per key, the last given
        if not latest:
            return
        if self.conn.dialect.name == "postgresql":
            self.conn.exec_driver_sql(
                statements.PG_SAVE_LEVELS,
                {
                    "sku": [lv.sku for lv in latest.values()],
                    "location": [lv.location for lv in latest.values()],
                    "on_hand": [lv.on_hand for lv in latest.values()],
                    "allocated": [lv.allocated for lv in latest.values()],
                },
            )
            return
        rows = [
            {"sku": lv.sku, "location": lv.location, "on_hand": lv.on_hand, "allocated": lv.allocated}
            for lv in latest.values()
        ]
        self.conn.execute(statements.upsert_stock_levels(self.conn.dialect.name), rows)

    def last_observed(self, sku: str, location: str) -> datetime | None:
        return self.conn.execute(
            select(t.stock_levels.c.observed_at).where(
                t.stock_levels.c.sku == sku, t.stock_levels.c.location == location
            )
        ).scalar()

    def mark_observed(self, sku: str, location: str, at: datetime) -> None:
        done = self.conn.execute(
            update(t.stock_levels)
            .where(t.stock_levels.c.sku == sku, t.stock_levels.c.location == location)
            .values(observed_at=at)
        )
        if done.rowcount == 0:
            self.conn.execute(
                insert(t.stock_levels).values(sku=sku, location=location, on_hand=0, allocated=0, observed_at=at)
            )

    def positions(self, skus: Iterable[str]) -> dict[str, StockPosition]:
        codes = sorted(set(skus))
        found: dict[str, StockPosition] = {}
        query = statements.positions(self.conn.dialect.name)
        for chunk in _chunks(codes):
            for code, on_hand, allocated, incoming, backordered in self.conn.execute(query, {"keys": list(chunk)}):
                found[code] = StockPosition(
                    code, int(on_hand or 0), int(allocated or 0), int(incoming or 0), int(backordered or 0)
                )
        return {code: found.get(code) or StockPosition(code, 0, 0, 0, 0) for code in codes}

    # --- issue 2 per-receipt perf ---
    def lock_ship_complete_scope(self, skus: Iterable[str]) -> set[str]:
        codes = sorted(set(skus))
        if self.conn.dialect.name != "postgresql" or not codes or len(codes) > 900:
            scope = _ship_complete_scope(self.conn, codes)
            self.lock_skus(scope)
            return scope
        locked = set(self.conn.execute(statements.lock_ship_complete_scope(), {"keys": codes}).scalars())
        self._locked.update(locked)
        return set(codes) | locked

    def record_receipt(
        self, sku: str, location: str, quantity: int, received_at: datetime, po_number: str | None
    ) -> int:
        result = self.conn.execute(
            insert(t.receipts).values(
                sku=sku, location=location, quantity=quantity, received_at=received_at, po_number=po_number
            )
        )
        return int(result.inserted_primary_key[0])

    # --- issue 2 per-receipt round trips ---
    def lock_existing_skus(self, skus: Iterable[str]) -> dict[str, Sku]:
        codes = sorted(set(skus))
        if self.conn.dialect.name != "postgresql":
            return self._catalog.get_skus(codes)  # BEGIN IMMEDIATE holds the write lock already
        todo = [code for code in codes if code not in self._locked]
        found: dict[str, Sku] = {}
        for chunk in _chunks(todo):
            for row in self.conn.execute(statements.lock_sku_rows(), {"keys": list(chunk)}):
                found[row.code] = self._catalog.remember(_sku_from_row(row))
        self._locked.update(found)
        held = set(codes) - set(todo)
        if held:
            found.update(self._catalog.get_skus(held))
        return found

    def lock_change_scope(self, sku: str) -> StockScope | None:
        if self.conn.dialect.name == "postgresql":  # the closure's SKU rows locked, in code order
            locked = {sku} | {row[0] for row in self._first_statement(statements.PG_LOCK_SCOPE, {"keys": [sku]})}
            self._locked.update(locked)
        else:
            locked = self.lock_ship_complete_scope([sku])  # the SKU (when it exists) and its partners
        # Read after the locks are granted (a statement's snapshot is taken as it starts).
        found = self.read_locked(locked)
        return found if sku in found.scope else None  # else no such SKU (the closure starts from its row)

    def _first_statement(self, sql: str, params: Mapping[str, Any]) -> list[Any]:
        """PostgreSQL: run raw ``sql``; when it opens the transaction, in pipeline mode, so the
        driver's BEGIN goes in the same round trip instead of one of its own."""
        raw = self.conn.connection.driver_connection
        assert raw is not None
        if raw.info.transaction_status.name != "IDLE":
            return list(self.conn.exec_driver_sql(sql, params))
        with raw.pipeline(), raw.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def read_locked(self, skus: Iterable[str], with_positions: bool = False) -> StockScope:
        codes = sorted(set(skus))
        if self.conn.dialect.name != "postgresql":
            found = self._catalog.get_skus(codes)
            scope = set(found)
            return StockScope(
                found,
                scope,
                self.levels(scope),
                self._catalog.lead_times(scope),
                SqlPurchasing(self.conn).skus_with_open_supply(scope, dated_only=True),
                scope,  # not asked: every SKU may have sent supply (``open_for_sku`` tells)
            )
        statement = statements.PG_READ_SKUS_WITH_POSITIONS if with_positions else statements.PG_READ_SKUS
        rows = self.conn.exec_driver_sql(statement, {"keys": codes}).mappings().all()
        found = {}
        levels: dict[tuple[str, str], StockLevel] = {}
        lead_times: dict[str, int | None] = {}
        dated: set[str] = set()
        sent: set[str] = set()
        positions: dict[str, StockPosition] | None = {} if with_positions else None
        for r in rows:
            code = r["code"]
            found[code] = self._catalog.remember(_sku_from_row(_Row(r)))
            lead_times[code] = (
                None
                if not r["preferred_supplier"]
                else (r["item_days"] if r["item_days"] is not None else r["supplier_days"])
            )
            held = [
                StockLevel(code, location, int(on_hand), int(allocated))
                for location, on_hand, allocated in r["levels"] or ()
            ]
            levels.update(((code, level.location), level) for level in held)
            if r["dated"]:
                dated.add(code)
            if r["sent"]:
                sent.add(code)
            if positions is not None:
                positions[code] = StockPosition(
                    code,
                    sum(level.on_hand for level in held),
                    sum(level.allocated for level in held),
                    int(r["incoming"] or 0),
                    int(r["backordered"] or 0),
                )
        return StockScope(found, set(found), levels, lead_times, dated, sent, positions)


def _utc(value: datetime) -> datetime:
    """As ``tables.UtcDateTime`` binds on PostgreSQL, for raw driver statements."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given where UTC is required")
    return value.astimezone(UTC)


class _Row:
    """Attribute access to a dict (``_sku_from_row`` reads rows by attribute)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)


def _ship_complete_scope(conn: Connection, skus: Iterable[str]) -> set[str]:
    """``skus`` and, transitively, the SKUs of open ship-complete orders waiting on them. What is
    reached from a set is the union of what is reached from its parts: chunks need no second pass."""
    scope = set(skus)
    query = statements.ship_complete_scope(conn.dialect.name)
    for chunk in _chunks(sorted(scope)):
        scope.update(conn.execute(query, {"keys": list(chunk)}).scalars())
    return scope


def _line_from_row(r: Any) -> OrderLine:
    return OrderLine(
        r.order_id,
        r.line_no,
        r.sku,
        r.quantity,
        r.allocated,
        r.shipped,
        r.backordered,
        LineStatus(r.status),
        r.eta,
        r.id,
    )


class SqlOrders(OrderRepository):
    def __init__(self, conn: Connection, clock_now: Any) -> None:
        self.conn = conn
        self._now = clock_now

    def _orders(self, ids: Sequence[str]) -> dict[str, Order]:
        found: dict[str, Order] = {}
        for chunk in _chunks(sorted(set(ids))):
            for r in self.conn.execute(statements.orders_by_id(), {"keys": list(chunk)}):
                found[r.id] = Order(
                    r.id,
                    r.channel,
                    r.placed_at,
                    r.priority,
                    bool(r.ship_complete),
                    r.customer_email,
                    r.customer_phone,
                    r.customer_name,
                    [],
                    r.reference,
                )
            if not found:
                continue  # none of these orders exists: no lines to read
            for r in self.conn.execute(statements.lines_by_order(), {"keys": list(chunk)}):
                found[r.order_id].lines.append(_line_from_row(r))
        return found

    def _orders_of_lines(self, line_ids: Sequence[int]) -> dict[str, Order]:
        """The orders these lines belong to, with all their lines, in one statement."""
        found: dict[str, Order] = {}
        for r in self.conn.execute(statements.orders_with_lines_of_lines(), {"keys": list(line_ids)}):
            order = found.get(r.order_id)
            if order is None:
                order = found[r.order_id] = Order(
                    r.order_id,
                    r.o_channel,
                    r.o_placed_at,
                    r.o_priority,
                    bool(r.o_ship_complete),
                    r.customer_email,
                    r.customer_phone,
                    r.customer_name,
                    [],
                    r.reference,
                )
            order.lines.append(_line_from_row(r))
        return found

    def get(self, order_id: str) -> Order | None:
        return self._orders([order_id]).get(order_id)

    def add(self, order: Order, channel_view: Mapping[str, int] | None = None) -> None:
        created_at = self._now()
        if self.conn.dialect.name == "postgresql":  # the order and its lines in one statement
            rows = self.conn.exec_driver_sql(
                statements.PG_ADD_ORDER if channel_view is None else statements.PG_ADD_ORDER_WITH_VIEW,
                {
                    "units": None if channel_view is None else json.dumps(dict(channel_view)),
                    "id": order.id,
                    "channel": order.channel,
                    "placed_at": _utc(order.placed_at),
                    "priority": order.priority,
                    "ship_complete": order.ship_complete,
                    "customer_email": order.customer_email,
                    "customer_phone": order.customer_phone,
                    "customer_name": order.customer_name,
                    "reference": order.reference,
                    "created_at": _utc(created_at),
                    "line_no": [line.line_no for line in order.lines],
                    "sku": [line.sku for line in order.lines],
                    "quantity": [line.quantity for line in order.lines],
                    "allocated": [line.allocated for line in order.lines],
                    "shipped": [line.shipped for line in order.lines],
                    "backordered": [line.backordered for line in order.lines],
                    "status": [line.status.value for line in order.lines],
                    "eta": [line.eta for line in order.lines],
                },
            ).all()
            if not rows:
                raise DuplicateOrder(order.id)
            ids = {line_no: line_id for _, line_id, line_no in rows if line_id is not None}
            for line in order.lines:
                line.id = int(ids[line.line_no])
            return
        done = self.conn.execute(
            statements.insert_order_if_new(),
            {
                "id": order.id,
                "channel": order.channel,
                "placed_at": order.placed_at,
                "priority": order.priority,
                "ship_complete": order.ship_complete,
                "customer_email": order.customer_email,
                "customer_phone": order.customer_phone,
                "customer_name": order.customer_name,
                "reference": order.reference,
                "created_at": created_at,
            },
        )
        if done.rowcount == 0:
            raise DuplicateOrder(order.id)
        if channel_view is not None:
            self.save_channel_view(order.id, channel_view)
        if not order.lines:
            return
        rows = [
            {
                "order_id": order.id,
                "line_no": line.line_no,
                "sku": line.sku,
                "quantity": line.quantity,
                "allocated": line.allocated,
                "shipped": line.shipped,
                "backordered": line.backordered,
                "status": line.status.value,
                "eta": line.eta,
                "channel": order.channel,
                "priority": order.priority,
                "placed_at": order.placed_at,
                "ship_complete": order.ship_complete,
            }
            for line in order.lines
        ]
        returned = self.conn.execute(
            insert(t.order_lines).returning(t.order_lines.c.id, t.order_lines.c.line_no, sort_by_parameter_order=True),
            rows,
        )
        ids = {line_no: line_id for line_id, line_no in returned}
        for line in order.lines:
            line.id = int(ids[line.line_no])

    def save_lines(self, lines: Iterable[OrderLine]) -> None:
        if self.conn.dialect.name == "postgresql":
            latest = {line.id: line for line in lines}  # one row per line, the last given
            if latest:
                self.conn.exec_driver_sql(
                    statements.PG_SAVE_LINES,
                    {
                        "id": list(latest),
                        "allocated": [x.allocated for x in latest.values()],
                        "shipped": [x.shipped for x in latest.values()],
                        "backordered": [x.backordered for x in latest.values()],
                        "status": [x.status.value for x in latest.values()],
                        "eta": [x.eta for x in latest.values()],
                    },
                )
            return
        rows = [
            {
                "b_id": line.id,
                "allocated": line.allocated,
                "shipped": line.shipped,
                "backordered": line.backordered,
                "status": line.status.value,
                "eta": line.eta,
            }
            for line in lines
        ]
        if rows:
            self.conn.execute(update(t.order_lines).where(t.order_lines.c.id == bindparam("b_id")), rows)

    def save_priority(self, order_id: str, priority: int) -> None:
        self.conn.execute(update(t.orders).where(t.orders.c.id == order_id).values(priority=priority))
        self.conn.execute(update(t.order_lines).where(t.order_lines.c.order_id == order_id).values(priority=priority))

    def save_etas(self, etas: dict[int, date | None]) -> None:
        if self.conn.dialect.name == "postgresql":
            if etas:
                self.conn.exec_driver_sql(statements.PG_SAVE_ETAS, {"id": list(etas), "eta": list(etas.values())})
            return
        rows = [{"b_id": line_id, "eta": eta} for line_id, eta in etas.items()]
        if rows:
            self.conn.execute(update(t.order_lines).where(t.order_lines.c.id == bindparam("b_id")), rows)

    def waiting(self, skus: Iterable[str]) -> list[WaitingLine]:
        result: list[WaitingLine] = []
        for chunk in _chunks(sorted(set(skus))):
            result.extend(_waiting_lines(self.conn.execute(statements.waiting_by_sku(), {"keys": list(chunk)})))
        return result

    def lines_by_id(self, line_ids: Iterable[int]) -> dict[int, tuple[Order, OrderLine]]:
        ids = sorted(set(line_ids))
        orders: dict[str, Order] = {}
        for chunk in _chunks(ids):
            orders.update(self._orders_of_lines(chunk))
        wanted = set(ids)
        return {line.id: (order, line) for order in orders.values() for line in order.lines if line.id in wanted}  # type: ignore[misc]

    def ship_complete_partner_skus(self, skus: Iterable[str]) -> set[str]:
        c = t.order_lines.c
        partners: set[str] = set()
        for chunk in _chunks(sorted(set(skus))):
            waiting_orders = (
                select(c.order_id).where(
                    c.sku.in_(chunk), c.status == "open", c.backordered > 0, c.ship_complete.is_(True)
                )
            ).scalar_subquery()
            partners.update(
                self.conn.execute(
                    select(c.sku)
                    .where(c.order_id.in_(waiting_orders), c.status == "open", c.backordered > 0)
                    .distinct()
                ).scalars()
            )
        return partners

    def holdings(self, sku: str, location: str) -> list[Holding]:
        h, c = t.line_holdings.c, t.order_lines.c
        rows = self.conn.execute(
            select(h.line_id, h.quantity, c.order_id, c.line_no, c.priority, c.placed_at)
            .join(t.order_lines, c.id == h.line_id)
            .where(h.sku == sku, h.location == location, h.quantity > 0)
        )
        return [
            Holding(r.line_id, r.order_id, r.line_no, sku, location, r.quantity, r.priority, r.placed_at) for r in rows
        ]

    def _held_changes(self, records: Sequence[AllocationRecord]) -> dict[tuple[int, str], tuple[str, int]]:
        """How ``records`` change holdings: (line id, location) → (sku, change)."""
        held_delta: dict[tuple[int | None, str, int, str, str], int] = defaultdict(int)
        for r in records:
            sign = {"allocate": 1, "release": 1, "withdraw": 1, "ship": -1}.get(r.kind)
            if sign is not None:
                held_delta[(r.line_id, r.order_id, r.line_no, r.sku, r.location)] += sign * r.quantity
        missing = sorted({(o, n) for (i, o, n, _, _) in held_delta if i is None})
        ids = self._line_ids(missing) if missing else {}
        held: dict[tuple[int, str], tuple[str, int]] = {}  # (line id, location) → (sku, change)
        for (line_id, order_id, line_no, sku, location), delta in held_delta.items():
            key = (line_id if line_id is not None else ids[(order_id, line_no)], location)
            held[key] = (sku, held.get(key, (sku, 0))[1] + delta)
        return held

    def _ledger_params(self, records: Sequence[AllocationRecord]) -> dict[str, list[Any]]:
        """Parameters of ``PG_LEDGER_AND_HOLDINGS`` (and the same part of ``PG_SAVE_GRANTS``)."""
        held = self._held_changes(records)
        return {
            "order_id": [r.order_id for r in records],
            "line_no": [r.line_no for r in records],
            "sku": [r.sku for r in records],
            "location": [r.location for r in records],
            "quantity": [r.quantity for r in records],
            "kind": [r.kind for r in records],
            "source": [r.source for r in records],
            "source_ref": [r.source_ref for r in records],
            "at": [r.at for r in records],
            "h_line_id": [line_id for line_id, _ in held],
            "h_location": [location for _, location in held],
            "h_sku": [sku for sku, _ in held.values()],
            "h_quantity": [change for _, change in held.values()],
        }

    def record_allocations(self, records: Sequence[AllocationRecord]) -> None:
        if not records:
            return
        if self.conn.dialect.name == "postgresql":  # ledger and holdings in one statement
            self.conn.exec_driver_sql(statements.PG_LEDGER_AND_HOLDINGS, self._ledger_params(records))
            return
        held = self._held_changes(records)
        self.conn.execute(
            insert(t.allocation_ledger),
            [
                {
                    "order_id": r.order_id,
                    "line_no": r.line_no,
                    "sku": r.sku,
                    "location": r.location,
                    "quantity": r.quantity,
                    "kind": r.kind,
                    "source": r.source,
                    "source_ref": r.source_ref,
                    "at": r.at,
                }
                for r in records
            ],
        )
        if held:
            rows = [
                {"line_id": line_id, "location": location, "sku": sku, "quantity": change}
                for (line_id, location), (sku, change) in held.items()
            ]
            self.conn.execute(statements.add_to_holdings(self.conn.dialect.name), rows)

    def _line_ids(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        c = t.order_lines.c
        ids: dict[tuple[str, int], int] = {}
        for chunk in _chunks(sorted({o for o, _ in keys})):
            for r in self.conn.execute(select(c.id, c.order_id, c.line_no).where(c.order_id.in_(chunk))):
                ids[(r.order_id, r.line_no)] = r.id
        return ids

    def ledger(self, order_id: str) -> list[AllocationRecord]:
        a = t.allocation_ledger.c
        return [
            AllocationRecord(r.order_id, r.line_no, r.sku, r.location, r.quantity, r.kind, r.source, r.source_ref, r.at)
            for r in self.conn.execute(select(t.allocation_ledger).where(a.order_id == order_id).order_by(a.id))
        ]

    def held_at(self, line_id: int) -> dict[str, int]:
        """Units held by location, in the locations' preference order."""
        h, loc = t.line_holdings.c, t.locations.c
        q = (
            select(h.location, h.quantity)
            .select_from(t.line_holdings)
            .outerjoin(t.locations, loc.code == h.location)
            .where(h.line_id == line_id, h.quantity > 0)
            .order_by(loc.position, h.location)
        )
        return {r.location: r.quantity for r in self.conn.execute(q)}

    # --- issue 5 (staff, self-service): a customer's accepted substitute ---
    def add_line(self, order: Order, line: OrderLine) -> None:
        result = self.conn.execute(
            insert(t.order_lines).values(
                order_id=order.id,
                line_no=line.line_no,
                sku=line.sku,
                quantity=line.quantity,
                allocated=line.allocated,
                shipped=line.shipped,
                backordered=line.backordered,
                status=line.status.value,
                eta=line.eta,
                channel=order.channel,
                priority=order.priority,
                placed_at=order.placed_at,
                ship_complete=order.ship_complete,
            )
        )
        line.id = int(result.inserted_primary_key[0])

    # --- issue 3 (channels): privacy redaction ---
    def redact_customer(self, channel: str, email: str | None, order_ids: Sequence[str]) -> list[str]:
        o = t.orders.c
        clauses = []
        if email:
            clauses.append(func.lower(o.customer_email) == email.lower())
        if order_ids:
            clauses.append(o.id.in_(list(order_ids)))
        where = o.channel == channel
        if clauses:
            where = and_(where, or_(*clauses))
        elif email is not None:
            return []
        found = self.conn.execute(select(o.id, o.customer_email, o.customer_phone).where(where)).all()
        ids = sorted(r.id for r in found)
        for chunk in _chunks(ids):
            self.conn.execute(
                update(t.orders)
                .where(o.id.in_(list(chunk)))
                .values(customer_email=None, customer_phone=None, customer_name=None)
            )
        # the other copies: raw webhooks, sandbox messages, provider answers (store/privacy.py)
        prefix = f"{channel}-"
        who = privacy.customer(
            [email, *(r.customer_email for r in found)],
            (r.customer_phone for r in found),
            (i.removeprefix(prefix) for i in [*ids, *order_ids] if i.startswith(prefix)),
        )
        privacy.scrub(self.conn, channel, who, whole_channel=not clauses and email is None)
        return ids

    # --- issue 3 (channels): order edits ---
    def save_quantities(self, lines: Iterable[OrderLine]) -> None:
        rows = [{"b_id": line.id, "quantity": line.quantity} for line in lines]
        if rows:
            self.conn.execute(update(t.order_lines).where(t.order_lines.c.id == bindparam("b_id")), rows)

    def channel_view(self, order_id: str) -> dict[str, int] | None:
        v = t.order_channel_views.c
        found = self.conn.execute(select(v.units).where(v.order_id == order_id)).scalar()
        return {str(k): int(n) for k, n in found.items()} if found is not None else None

    def save_channel_view(self, order_id: str, units: Mapping[str, int]) -> None:
        row = {"order_id": order_id, "units": dict(units), "updated_at": self._now()}
        self.conn.execute(statements.upsert_channel_view(self.conn.dialect.name), row)

    # --- issue 2 per-receipt perf: read a SKU's queue only as far as the stock reaches ---
    def waiting_page(self, sku: str, offset: int, limit: int) -> list[WaitingLine]:
        params = {"sku": sku, "limit": limit, "offset": offset}
        return _waiting_lines(self.conn.execute(statements.waiting_page(), params))

    def waiting_of_orders(self, order_ids: Iterable[str]) -> list[WaitingLine]:
        result: list[WaitingLine] = []
        for chunk in _chunks(sorted(set(order_ids))):
            result.extend(_waiting_lines(self.conn.execute(statements.waiting_of_orders(), {"keys": list(chunk)})))
        return result

    def ship_complete_scope(self, skus: Iterable[str]) -> set[str]:
        return _ship_complete_scope(self.conn, skus)

    def waiting_eta_not(self, etas: Mapping[str, date]) -> list[WaitingLine]:
        by_date: dict[date, list[str]] = defaultdict(list)
        for sku, eta in sorted(etas.items()):
            by_date[eta].append(sku)
        result: list[WaitingLine] = []
        for eta, skus in sorted(by_date.items()):
            for chunk in _chunks(skus):
                params = {"keys": list(chunk), "eta": eta}
                result.extend(_waiting_lines(self.conn.execute(statements.waiting_eta_not(), params)))
        return result

    # --- issue 2 per-receipt round trips ---
    def save_grants(
        self, lines: Iterable[OrderLine], levels: Iterable[StockLevel], records: Sequence[AllocationRecord]
    ) -> None:
        if self.conn.dialect.name != "postgresql":
            self.save_lines(lines)
            SqlStock(self.conn).save_levels(levels)
            self.record_allocations(records)
            return
        latest = {line.id: line for line in lines}  # one row per line / level, the last given
        stock = {(lv.sku, lv.location): lv for lv in levels}
        params: dict[str, Any] = {
            "l_id": list(latest),
            "l_allocated": [x.allocated for x in latest.values()],
            "l_shipped": [x.shipped for x in latest.values()],
            "l_backordered": [x.backordered for x in latest.values()],
            "l_status": [x.status.value for x in latest.values()],
            "l_eta": [x.eta for x in latest.values()],
            "s_sku": [lv.sku for lv in stock.values()],
            "s_location": [lv.location for lv in stock.values()],
            "s_on_hand": [lv.on_hand for lv in stock.values()],
            "s_allocated": [lv.allocated for lv in stock.values()],
        }
        params.update(self._ledger_params(records))
        self.conn.exec_driver_sql(statements.PG_SAVE_GRANTS, params)

    # --- issue 3 (channels): exactly-once shipments (index ux_allocation_ledger_shipment) ---
    def shipment_recorded(self, order_id: str, shipment_ref: str) -> bool:
        a = t.allocation_ledger.c
        found = self.conn.execute(
            select(a.id)
            .where(a.order_id == order_id, a.source == SHIPMENT_SOURCE, a.source_ref == shipment_ref)
            .limit(1)
        ).first()
        return found is not None


class SqlPurchasing(PurchasingRepository):
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._stored: dict[int, tuple[Any, ...]] = {}  # po line id → values as last read or written
        self._stored_po: dict[int, tuple[Any, ...]] = {}  # po id → (status, sent_at) as last read or written

    def _load(self, where: Any, order_by: Any = None) -> list[PurchaseOrder]:
        """The POs ``where`` selects (by ``order_by``, else id) with their lines by id: one statement."""
        p, pl = t.purchase_orders.c, t.po_lines.c
        query = statements.pos_with_lines().where(where)
        first = order_by if order_by is not None else p.id
        return self._from_rows(self.conn.execute(query.order_by(first, p.id, pl.id)))

    def _from_rows(self, rows: Iterable[Any]) -> list[PurchaseOrder]:
        pos: dict[int, PurchaseOrder] = {}
        for r in rows:
            po = pos.get(r.id)
            if po is None:
                po = pos[r.id] = PurchaseOrder(
                    r.number, r.supplier, r.created_at, PoStatus(r.status), r.sent_at, [], r.id
                )
                self._stored_po[r.id] = (po.status.value, po.sent_at)
            if r.line_id is not None:
                line = PurchaseOrderLine(r.sku, r.quantity, Decimal(r.unit_cost), r.received, r.expected_on, r.line_id)
                po.lines.append(line)
                self._stored[r.line_id] = _po_line_values(line)
        return list(pos.values())

    def get(self, number: str) -> PurchaseOrder | None:
        found = self._load(t.purchase_orders.c.number == number)
        return found[0] if found else None

    def open_draft(self, supplier: str) -> PurchaseOrder | None:
        p = t.purchase_orders.c
        found = self._load(and_(p.supplier == supplier, p.status == PoStatus.DRAFT.value))
        return found[0] if found else None

    def add(self, po: PurchaseOrder) -> None:
        result = self.conn.execute(
            insert(t.purchase_orders).values(
                number=po.number,
                supplier=po.supplier,
                status=po.status.value,
                created_at=po.created_at,
                sent_at=po.sent_at,
            )
        )
        po.id = int(result.inserted_primary_key[0])
        self._stored_po[po.id] = (po.status.value, po.sent_at)
        self._save_lines(po)

    def _save_lines(self, po: PurchaseOrder) -> None:
        """Insert new lines; update only lines whose values changed since read."""
        changed = []
        for line in po.lines:
            values = {
                "sku": line.sku,
                "quantity": line.quantity,
                "received": line.received,
                "unit_cost": line.unit_cost,
                "expected_on": line.expected_on,
            }
            if line.id is None:
                line.id = int(
                    self.conn.execute(insert(t.po_lines).values(po_id=po.id, **values)).inserted_primary_key[0]
                )
            elif self._stored.get(line.id) != _po_line_values(line):
                changed.append({"b_id": line.id, **values})
            self._stored[line.id] = _po_line_values(line)
        if changed:
            self.conn.execute(update(t.po_lines).where(t.po_lines.c.id == bindparam("b_id")), changed)

    def save(self, po: PurchaseOrder) -> None:
        header = (po.status.value, po.sent_at)
        if po.id is None or self._stored_po.get(po.id) != header:  # unchanged since read: not written again
            self.conn.execute(
                update(t.purchase_orders)
                .where(t.purchase_orders.c.id == po.id)
                .values(status=po.status.value, sent_at=po.sent_at)
            )
            if po.id is not None:
                self._stored_po[po.id] = header
        self._save_lines(po)

    def next_number(self, at: datetime) -> str:
        name = "po_number"
        done = self.conn.execute(
            update(t.counters).where(t.counters.c.name == name).values(value=t.counters.c.value + 1)
        )
        if done.rowcount == 0:
            self.conn.execute(insert(t.counters).values(name=name, value=1))
        value = self.conn.execute(select(t.counters.c.value).where(t.counters.c.name == name)).scalar_one()
        return f"PO-{at:%Y%m%d}-{value:05d}"

    def open_for_sku(self, sku: str) -> list[PurchaseOrder]:
        pos = self._from_rows(self.conn.execute(statements.open_pos_of_sku(), {"sku": sku}))

        def expected(po: PurchaseOrder) -> tuple[date, int]:
            line = po.line_for(sku)
            return (line.expected_on if line and line.expected_on else date.max, po.id or 0)

        return sorted(pos, key=expected)

    def drafts(self) -> list[PurchaseOrder]:
        return self._load(t.purchase_orders.c.status == PoStatus.DRAFT.value)

    # --- issue 2 per-receipt perf ---
    def supply(self, sku: str, draft_expected_on: date) -> list[Supply]:
        """As the port's, in one query and without building the POs."""
        return [
            Supply(expected if expected is not None else draft_expected_on, int(units))
            for units, expected in self.conn.execute(statements.supply_of_sku(), {"sku": sku})
        ]

    def skus_with_open_supply(self, skus: Iterable[str], *, dated_only: bool = False) -> set[str]:
        found: set[str] = set()
        query = statements.skus_with_open_supply(dated_only)
        for chunk in _chunks(sorted(set(skus))):
            found.update(self.conn.execute(query, {"keys": list(chunk)}).scalars())
        return found


def _waiting_lines(rows: Iterable[Any]) -> list[WaitingLine]:
    """Rows of the waiting-line statements (``statements._waiting_columns``) as WaitingLines."""
    return [
        WaitingLine(Claim(key, order_id, line_no, sku, wanted, priority, placed_at, bool(whole)), channel, eta)
        for key, order_id, line_no, sku, wanted, priority, placed_at, whole, channel, eta in rows
    ]


def _po_line_values(line: PurchaseOrderLine) -> tuple[Any, ...]:
    return (line.sku, line.quantity, line.received, line.unit_cost, line.expected_on)


class SqlOutbox(Outbox):
    """Outbox rows written with the driver's own ``executemany`` (SQLite) or ``COPY``
    (PostgreSQL; one INSERT over arrays for a command's few rows), in blocks: a full run writes
    hundreds of thousands. Each payload is encoded
    once for the actions that share it (the rules give an event's actions one payload), as the
    JSON column would encode it."""

    _BLOCK = 20000
    _SMALL = 500

    def __init__(self, conn: Connection, clock_now: Any, *, defer: bool = False) -> None:
        self.conn = conn
        self._now = clock_now
        self._defer = defer
        self._pending: dict[str, Any] | None = None

    def take_pending(self) -> dict[str, Any] | None:
        """PostgreSQL with ``defer``: the parameters of ``statements.PG_ADD_OUTBOX`` for the rows
        ``add`` kept back (a command's few), for the unit of work to send with its COMMIT; None
        when there are none. Whoever takes them sends them."""
        pending, self._pending = self._pending, None
        return pending

    def add(self, messages: Sequence[OutboxMessage]) -> None:
        if not messages:
            return
        now = self._now()
        last: list[Any] = [None, ""]  # the payload last encoded and its text (kept alive by ``messages``)

        def payload(m: OutboxMessage) -> str:
            if m.payload is not last[0]:
                last[0], last[1] = m.payload, _encode(m.payload)
            text: str = last[1]
            return text

        pending = self.take_pending()
        if pending is not None:  # rows kept back by an earlier call go first
            self.conn.exec_driver_sql(statements.PG_ADD_OUTBOX, pending)
        if self.conn.dialect.name == "postgresql" and len(messages) <= self._SMALL:
            # a command's few rows: one INSERT over arrays (COPY costs a round trip more), kept
            # back with ``defer`` for the unit of work's commit to send along with its COMMIT
            rows = {
                "action": [m.action for m in messages],
                "target": [m.target for m in messages],
                "payload": [payload(m) for m in messages],
                "dedupe_key": [m.dedupe_key for m in messages],
                "now": _utc(now),
            }
            if self._defer:
                self._pending = rows
            else:
                self.conn.exec_driver_sql(statements.PG_ADD_OUTBOX, rows)
            return
        if self.conn.dialect.name == "postgresql":
            raw = self.conn.connection.driver_connection
            assert raw is not None
            stamp = now.astimezone(UTC).isoformat(sep=" ", timespec="microseconds")
            tail = f"\tpending\t0\t{stamp}\t{stamp}\t{stamp}\n"
            with (
                raw.cursor() as cur,
                cur.copy(
                    "COPY outbox (action, target, payload, dedupe_key, status, attempts, next_attempt_at, "
                    "created_at, updated_at) FROM STDIN"
                ) as copy,
            ):
                block: list[str] = []
                for m in messages:
                    dedupe = "\\N" if m.dedupe_key is None else _copy_text(m.dedupe_key)
                    block.append(
                        f"{_copy_text(m.action)}\t{_copy_text(m.target)}\t{_copy_text(payload(m))}\t{dedupe}{tail}"
                    )
                    if len(block) == self._BLOCK:
                        copy.write("".join(block))
                        block.clear()
                if block:
                    copy.write("".join(block))
            return
        stamp = now.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        for i in range(0, len(messages), self._BLOCK):
            self.conn.exec_driver_sql(
                "INSERT INTO outbox (action, target, payload, dedupe_key, status, attempts, next_attempt_at, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
                [
                    (m.action, m.target, payload(m), m.dedupe_key, stamp, stamp, stamp)
                    for m in messages[i : i + self._BLOCK]
                ],
            )


_encode = json.JSONEncoder(check_circular=False).encode
"""``json.dumps`` as the JSON column encodes (payloads are trees: no cycle check)."""

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: str) -> str:
    """A value in PostgreSQL's COPY text format."""
    return value.translate(_COPY_ESCAPES)
