"""The hot read statements, built once on first use (not at import) and reused: building a
SQLAlchemy statement costs more than SQLite takes to run it. Each takes its keys as one
expanding parameter ``keys``."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Date, Select, TextClause, and_, bindparam, func, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite

from backorder.domain.model import OPEN_PO_STATUSES, PoStatus
from backorder.store import tables as t


def _keys():  # type: ignore[no-untyped-def]
    return bindparam("keys", expanding=True)


@cache
def skus_by_code() -> Select:  # type: ignore[type-arg]
    return select(t.skus).where(t.skus.c.code.in_(_keys()))


@cache
def lead_times() -> Select:  # type: ignore[type-arg]
    k, i, s = t.skus.c, t.supplier_items.c, t.suppliers.c
    return (
        select(k.code, k.preferred_supplier, i.lead_time_days, s.lead_time_days)
        .select_from(t.skus)
        .outerjoin(t.supplier_items, and_(i.sku == k.code, i.supplier == k.preferred_supplier))
        .outerjoin(t.suppliers, s.code == k.preferred_supplier)
        .where(k.code.in_(_keys()))
    )


@cache
def supplier_items_by_sku() -> Select:  # type: ignore[type-arg]
    return select(t.supplier_items).where(t.supplier_items.c.sku.in_(_keys()))


@cache
def stock_levels_by_sku() -> Select:  # type: ignore[type-arg]
    s = t.stock_levels.c
    return select(s.sku, s.location, s.on_hand, s.allocated).where(s.sku.in_(_keys()))


@cache
def on_hand_totals() -> Select:  # type: ignore[type-arg]
    s = t.stock_levels.c
    return select(s.sku, func.sum(s.on_hand), func.sum(s.allocated)).where(s.sku.in_(_keys())).group_by(s.sku)


@cache
def incoming_totals() -> Select:  # type: ignore[type-arg]
    pl, p = t.po_lines.c, t.purchase_orders.c
    return (
        select(pl.sku, func.sum(pl.quantity - pl.received))
        .join(t.purchase_orders, p.id == pl.po_id)
        .where(pl.sku.in_(_keys()), p.status.in_([s.value for s in OPEN_PO_STATUSES]))
        .group_by(pl.sku)
    )


@cache
def backordered_totals() -> Select:  # type: ignore[type-arg]
    c = t.order_lines.c
    return (
        select(c.sku, func.sum(c.backordered))
        .where(c.sku.in_(_keys()), c.status == "open", c.backordered > 0)
        .group_by(c.sku)
    )


@cache
def orders_by_id() -> Select:  # type: ignore[type-arg]
    return select(t.orders).where(t.orders.c.id.in_(_keys()))


@cache
def lines_by_order() -> Select:  # type: ignore[type-arg]
    c = t.order_lines.c
    return select(t.order_lines).where(c.order_id.in_(_keys())).order_by(c.order_id, c.line_no)


@cache
def waiting_by_sku() -> Select:  # type: ignore[type-arg]
    c = t.order_lines.c
    return select(
        c.id, c.order_id, c.line_no, c.sku, c.backordered, c.priority, c.placed_at, c.ship_complete, c.channel, c.eta
    ).where(c.sku.in_(_keys()), c.status == "open", c.backordered > 0)


# --- issue 2 per-receipt perf ---------------------------------------------------------------

WAITING = "status = 'open' AND backordered > 0"
"""The predicate of the partial index ``ix_order_lines_waiting_rank``, written literally: with a
bound parameter instead (or a generic plan on PostgreSQL) the planner cannot use that index."""


def _waiting_columns():  # type: ignore[no-untyped-def]
    c = t.order_lines.c
    return (
        c.id,
        c.order_id,
        c.line_no,
        c.sku,
        c.backordered,
        c.priority,
        c.placed_at,
        c.ship_complete,
        c.channel,
        c.eta,
    )


@cache
def waiting_page() -> Select:  # type: ignore[type-arg]
    """One SKU's waiting lines in rank order, a page at a time (``sku``, ``limit``, ``offset``)."""
    c = t.order_lines.c
    return (
        select(*_waiting_columns())
        .where(c.sku == bindparam("sku"), text(WAITING))
        .order_by(c.priority.desc(), c.placed_at, c.order_id, c.line_no)
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )


@cache
def waiting_of_orders() -> Select:  # type: ignore[type-arg]
    c = t.order_lines.c
    return select(*_waiting_columns()).where(c.order_id.in_(_keys()), text(WAITING))


@cache
def waiting_eta_not() -> Select:  # type: ignore[type-arg]
    """Waiting lines of the SKUs ``keys`` whose ETA is not ``eta``."""
    c = t.order_lines.c
    return select(*_waiting_columns()).where(
        c.sku.in_(_keys()), text(WAITING), or_(c.eta.is_(None), c.eta != bindparam("eta", type_=Date()))
    )


@cache
def skus_with_open_supply(dated_only: bool) -> Select:  # type: ignore[type-arg]
    pl, p = t.po_lines.c, t.purchase_orders.c
    query = (
        select(pl.sku)
        .join(t.purchase_orders, p.id == pl.po_id)
        .where(pl.sku.in_(_keys()), pl.quantity > pl.received, p.status.in_([s.value for s in OPEN_PO_STATUSES]))
        .distinct()
    )
    return query.where(pl.expected_on.is_not(None)) if dated_only else query


def _rank_index(dialect: str) -> str:
    """SQLite's planner prefers ``ix_order_lines_sku_status`` (two equalities) and then reads
    every row; the partial ranking index covers these reads. PostgreSQL chooses by statistics."""
    return " INDEXED BY ix_order_lines_waiting_rank" if dialect == "sqlite" else ""


def _closure(dialect: str) -> str:
    """``WITH RECURSIVE scope(sku)``: the SKUs ``keys`` and, transitively, the SKUs of open
    ship-complete orders waiting on them."""
    return (
        "WITH RECURSIVE scope(sku) AS ("
        " SELECT code FROM skus WHERE code IN :keys"
        " UNION"
        " SELECT l2.sku FROM scope"
        f" JOIN order_lines AS l1{_rank_index(dialect)} ON l1.sku = scope.sku"
        " AND l1.status = 'open' AND l1.backordered > 0 AND l1.ship_complete"
        " JOIN order_lines AS l2 ON l2.order_id = l1.order_id AND l2.status = 'open' AND l2.backordered > 0"
        ")"
    )


@cache
def ship_complete_scope(dialect: str) -> TextClause:
    """``keys`` and, transitively, the SKUs of open ship-complete orders waiting on them."""
    return text(f"{_closure(dialect)} SELECT sku FROM scope").bindparams(bindparam("keys", expanding=True))


@cache
def lock_ship_complete_scope() -> TextClause:
    """PostgreSQL: :func:`ship_complete_scope`, its SKU rows locked in code order (as
    ``SqlStock.lock_skus`` locks them) by the same statement."""
    return text(
        f"{_closure('postgresql')} SELECT code FROM skus WHERE code IN (SELECT sku FROM scope)"
        " ORDER BY code FOR UPDATE OF skus"
    ).bindparams(bindparam("keys", expanding=True))


@cache
def backordered_totals_ranked(dialect: str) -> TextClause:
    """:func:`backordered_totals` from the ranking index alone (it carries ``backordered``)."""
    return text(
        f"SELECT sku, sum(backordered) FROM order_lines{_rank_index(dialect)}"
        f" WHERE sku IN :keys AND {WAITING} GROUP BY sku"
    ).bindparams(bindparam("keys", expanding=True))


@cache
def supply_of_sku() -> Select:  # type: ignore[type-arg]
    """Outstanding units and expected date of ``sku`` on open POs: per PO, its first line of the
    SKU (what ``PurchaseOrder.line_for`` answers), when that line has units outstanding."""
    pl, p = t.po_lines.c, t.purchase_orders.c
    first = t.po_lines.alias("first")
    first_id = select(func.min(first.c.id)).where(first.c.po_id == pl.po_id, first.c.sku == pl.sku).scalar_subquery()
    return (
        select(pl.quantity - pl.received, pl.expected_on)
        .join(t.purchase_orders, p.id == pl.po_id)
        .where(
            pl.sku == bindparam("sku"),
            pl.quantity > pl.received,
            p.status.in_([s.value for s in OPEN_PO_STATUSES]),
            pl.id == first_id,
        )
    )


@cache
def upsert_stock_levels(dialect: str) -> Any:
    """``repositories.upsert`` of stock levels (on hand, allocated), built once per dialect."""
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(t.stock_levels)
    return ins.on_conflict_do_update(
        index_elements=["sku", "location"], set_={"on_hand": ins.excluded.on_hand, "allocated": ins.excluded.allocated}
    )


@cache
def add_to_holdings(dialect: str) -> Any:
    """Add ``quantity`` to a line's holding at a location (inserted at zero when missing)."""
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(t.line_holdings)
    return ins.on_conflict_do_update(
        index_elements=["line_id", "location"], set_={"quantity": t.line_holdings.c.quantity + ins.excluded.quantity}
    )


@cache
def orders_with_lines_of_lines() -> Select:  # type: ignore[type-arg]
    """Every line of the orders the lines ``keys`` belong to, each with its order's columns
    (``o_…`` where the names clash), by order and line number."""
    c, o, x = t.order_lines.c, t.orders.c, t.order_lines.alias("x").c
    return (
        select(
            t.order_lines,
            o.channel.label("o_channel"),
            o.placed_at.label("o_placed_at"),
            o.priority.label("o_priority"),
            o.ship_complete.label("o_ship_complete"),
            o.customer_email,
            o.customer_phone,
            o.customer_name,
            o.reference,
        )
        .join(t.orders, o.id == c.order_id)
        .where(c.order_id.in_(select(x.order_id).where(x.id.in_(_keys()))))
        .order_by(c.order_id, c.line_no)
    )


@cache
def positions(dialect: str) -> TextClause:
    """On hand, allocated, incoming (open POs, drafts included) and backordered of each SKU of
    ``keys`` that exists, in one statement."""
    statuses = ", ".join(f"'{s.value}'" for s in OPEN_PO_STATUSES)
    return text(
        "SELECT k.code,"
        " (SELECT sum(s.on_hand) FROM stock_levels AS s WHERE s.sku = k.code),"
        " (SELECT sum(s.allocated) FROM stock_levels AS s WHERE s.sku = k.code),"
        " (SELECT sum(pl.quantity - pl.received) FROM po_lines AS pl JOIN purchase_orders AS p ON p.id = pl.po_id"
        f"  WHERE pl.sku = k.code AND p.status IN ({statuses})),"
        f" (SELECT sum(o.backordered) FROM order_lines AS o{_rank_index(dialect)}"
        "  WHERE o.sku = k.code AND o.status = 'open' AND o.backordered > 0)"
        " FROM skus AS k WHERE k.code IN :keys"
    ).bindparams(bindparam("keys", expanding=True))


@cache
def location_codes() -> Select:  # type: ignore[type-arg]
    return select(t.locations.c.code).order_by(t.locations.c.position, t.locations.c.code)


def pos_with_lines() -> Select:  # type: ignore[type-arg]
    """Purchase orders joined with their lines (none: one row with no line); add a WHERE, and an
    ORDER BY that keeps each PO's rows together (its lines then come by id)."""
    return _pos_with_lines()


@cache
def _pos_with_lines() -> Select:  # type: ignore[type-arg]
    p, pl = t.purchase_orders.c, t.po_lines.c
    return select(
        p.id,
        p.number,
        p.supplier,
        p.status,
        p.created_at,
        p.sent_at,
        pl.id.label("line_id"),
        pl.sku,
        pl.quantity,
        pl.unit_cost,
        pl.received,
        pl.expected_on,
    ).select_from(t.purchase_orders.outerjoin(t.po_lines, pl.po_id == p.id))


@cache
def open_pos_of_sku() -> Select:  # type: ignore[type-arg]
    """Open POs with units outstanding for ``sku``, with all their lines, by PO id."""
    p, pl, x = t.purchase_orders.c, t.po_lines.c, t.po_lines.alias("x").c
    outstanding = select(x.po_id).where(x.sku == bindparam("sku"), x.quantity > x.received)
    return (
        _pos_with_lines()
        .where(p.id.in_(outstanding), p.status.in_([s.value for s in OPEN_PO_STATUSES]))
        .order_by(p.id, pl.id)
    )


# PostgreSQL: many rows in one statement (arrays unnested), where psycopg's executemany would
# send one query per row. Raw driver SQL (``exec_driver_sql``); names as in the tables.

PG_SAVE_LINES = (
    "UPDATE order_lines AS o SET allocated = v.allocated, shipped = v.shipped, backordered = v.backordered,"
    " status = v.status, eta = v.eta"
    " FROM unnest(%(id)s::bigint[], %(allocated)s::int[], %(shipped)s::int[], %(backordered)s::int[],"
    " %(status)s::text[], %(eta)s::date[]) AS v(id, allocated, shipped, backordered, status, eta)"
    " WHERE o.id = v.id"
)

PG_SAVE_ETAS = (
    "UPDATE order_lines AS o SET eta = v.eta FROM unnest(%(id)s::bigint[], %(eta)s::date[]) AS v(id, eta)"
    " WHERE o.id = v.id"
)

PG_SAVE_LEVELS = (
    "INSERT INTO stock_levels (sku, location, on_hand, allocated)"
    " SELECT * FROM unnest(%(sku)s::text[], %(location)s::text[], %(on_hand)s::bigint[], %(allocated)s::bigint[])"
    " ON CONFLICT (sku, location) DO UPDATE SET on_hand = excluded.on_hand, allocated = excluded.allocated"
)

_PG_INSERT_LEDGER = (
    "INSERT INTO allocation_ledger (order_id, line_no, sku, location, quantity, kind, source, source_ref, at)"
    " SELECT * FROM unnest(%(order_id)s::text[], %(line_no)s::int[], %(sku)s::text[], %(location)s::text[],"
    " %(quantity)s::int[], %(kind)s::text[], %(source)s::text[], %(source_ref)s::text[], %(at)s::timestamptz[])"
)
_PG_UPSERT_HOLDINGS = (
    "INSERT INTO line_holdings (line_id, location, sku, quantity)"
    " SELECT * FROM unnest(%(h_line_id)s::bigint[], %(h_location)s::text[], %(h_sku)s::text[], %(h_quantity)s::int[])"
    " ON CONFLICT (line_id, location) DO UPDATE SET quantity = line_holdings.quantity + excluded.quantity"
)

PG_LEDGER_AND_HOLDINGS = f"WITH ledger AS ({_PG_INSERT_LEDGER}) {_PG_UPSERT_HOLDINGS}"


# --- issue 2 per-receipt round trips ----------------------------------------------------------
# PostgreSQL, raw driver SQL: what a change of stock reads about its (locked) ship-complete scope,
# in one statement, and an allocation's lines, stock levels, ledger and holdings written in one.


PG_LOCK_SCOPE = (
    "WITH RECURSIVE scope(sku) AS ("
    " SELECT code FROM skus WHERE code = ANY(%(keys)s::text[])"
    " UNION"
    " SELECT l2.sku FROM scope"
    " JOIN order_lines AS l1 ON l1.sku = scope.sku"
    " AND l1.status = 'open' AND l1.backordered > 0 AND l1.ship_complete"
    " JOIN order_lines AS l2 ON l2.order_id = l1.order_id AND l2.status = 'open' AND l2.backordered > 0"
    ") SELECT code FROM skus WHERE code IN (SELECT sku FROM scope) ORDER BY code FOR UPDATE OF skus"
)
""":func:`lock_ship_complete_scope` as raw driver SQL (``keys``: a list of codes)."""


def _pg_read_skus(with_positions: bool = False) -> str:
    statuses = ", ".join(f"'{s.value}'" for s in OPEN_PO_STATUSES)
    sent = ", ".join(f"'{s.value}'" for s in OPEN_PO_STATUSES if s is not PoStatus.DRAFT)
    positions = (  # as ``positions`` reads them (on hand and allocated come with the levels)
        " (SELECT sum(pl.quantity - pl.received) FROM po_lines AS pl JOIN purchase_orders AS p ON p.id = pl.po_id"
        f"  WHERE pl.sku = k.code AND p.status IN ({statuses})) AS incoming,"
        " (SELECT sum(o.backordered) FROM order_lines AS o"
        "  WHERE o.sku = k.code AND o.status = 'open' AND o.backordered > 0) AS backordered,"
        if with_positions
        else ""
    )
    return (
        "SELECT k.code, k.name, k.brand, k.product_line, k.colour, k.pigments, k.size, k.hazmat,"
        " k.safety_stock, k.reorder_point, k.order_up_to, k.preferred_supplier, k.unit_price,"
        " i.lead_time_days AS item_days, s.lead_time_days AS supplier_days,"
        " (SELECT json_agg(json_build_array(l.location, l.on_hand, l.allocated))"
        "  FROM stock_levels AS l WHERE l.sku = k.code) AS levels,"
        " EXISTS (SELECT 1 FROM po_lines AS pl JOIN purchase_orders AS p ON p.id = pl.po_id"
        "  WHERE pl.sku = k.code AND pl.quantity > pl.received AND pl.expected_on IS NOT NULL"
        f"  AND p.status IN ({statuses})) AS dated,{positions}"
        " EXISTS (SELECT 1 FROM po_lines AS pl JOIN purchase_orders AS p ON p.id = pl.po_id"
        "  WHERE pl.sku = k.code AND pl.quantity > pl.received"
        f"  AND p.status IN ({sent})) AS sent"
        " FROM skus AS k"
        " LEFT JOIN supplier_items AS i ON i.sku = k.code AND i.supplier = k.preferred_supplier"
        " LEFT JOIN suppliers AS s ON s.code = k.preferred_supplier"
        " WHERE k.code = ANY(%(keys)s::text[])"
    )


PG_READ_SKUS = _pg_read_skus()
"""Per SKU of ``keys``: its row, its preferred supplier's lead times (item, supplier), its stock
levels as a JSON array of [location, on_hand, allocated], and whether it has dated open supply
(``skus_with_open_supply(dated_only=True)``), and whether it has units outstanding on a
sent or acknowledged PO."""

PG_READ_SKUS_WITH_POSITIONS = _pg_read_skus(with_positions=True)
"""``PG_READ_SKUS`` and, as ``positions`` reads them, each SKU's ``incoming`` and ``backordered``."""

PG_SAVE_GRANTS = (
    "WITH lines AS ("
    " UPDATE order_lines AS o SET allocated = v.allocated, shipped = v.shipped, backordered = v.backordered,"
    " status = v.status, eta = v.eta"
    " FROM unnest(%(l_id)s::bigint[], %(l_allocated)s::int[], %(l_shipped)s::int[], %(l_backordered)s::int[],"
    " %(l_status)s::text[], %(l_eta)s::date[]) AS v(id, allocated, shipped, backordered, status, eta)"
    " WHERE o.id = v.id"
    "), levels AS ("
    " INSERT INTO stock_levels (sku, location, on_hand, allocated)"
    " SELECT * FROM unnest(%(s_sku)s::text[], %(s_location)s::text[], %(s_on_hand)s::bigint[],"
    " %(s_allocated)s::bigint[])"
    " ON CONFLICT (sku, location) DO UPDATE SET on_hand = excluded.on_hand, allocated = excluded.allocated"
    f"), ledger AS ({_PG_INSERT_LEDGER}) {_PG_UPSERT_HOLDINGS}"
)
"""``save_lines`` + ``save_levels`` + ``record_allocations`` (PostgreSQL forms) as one statement.
The data-modifying CTEs touch four different tables, so none sees another's rows twice; the
holdings' foreign key to ``order_lines`` is checked at the statement's end."""


@cache
def upsert_channel_view(dialect: str) -> Any:
    """Insert or replace an order's channel view (``order_id``, ``units``, ``updated_at``)."""
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(t.order_channel_views)
    return ins.on_conflict_do_update(
        index_elements=["order_id"], set_={"units": ins.excluded.units, "updated_at": ins.excluded.updated_at}
    )


@cache
def insert_order_if_new() -> Any:
    """SQLite: insert an order row unless its id is stored (``rowcount`` 0 then)."""
    return sqlite.insert(t.orders).on_conflict_do_nothing(index_elements=["id"])


_PG_ADD_ORDER_CTES = (
    "WITH o AS ("
    " INSERT INTO orders (id, channel, placed_at, priority, ship_complete, customer_email, customer_phone,"
    " customer_name, reference, created_at)"
    " VALUES (%(id)s, %(channel)s, %(placed_at)s, %(priority)s, %(ship_complete)s, %(customer_email)s,"
    " %(customer_phone)s, %(customer_name)s, %(reference)s, %(created_at)s)"
    " ON CONFLICT (id) DO NOTHING RETURNING id, channel, placed_at, priority, ship_complete"
    "), l AS ("
    " INSERT INTO order_lines (order_id, line_no, sku, quantity, allocated, shipped, backordered, status, eta,"
    " channel, priority, placed_at, ship_complete)"
    " SELECT o.id, v.line_no, v.sku, v.quantity, v.allocated, v.shipped, v.backordered, v.status, v.eta,"
    " o.channel, o.priority, o.placed_at, o.ship_complete"
    " FROM o CROSS JOIN unnest(%(line_no)s::int[], %(sku)s::text[], %(quantity)s::int[], %(allocated)s::int[],"
    " %(shipped)s::int[], %(backordered)s::int[], %(status)s::text[], %(eta)s::date[])"
    " AS v(line_no, sku, quantity, allocated, shipped, backordered, status, eta)"
    " RETURNING id, line_no"
    ")"
)
_PG_ADD_ORDER_RESULT = " SELECT o.id, l.id, l.line_no FROM o LEFT JOIN l ON true"
PG_ADD_ORDER = _PG_ADD_ORDER_CTES + _PG_ADD_ORDER_RESULT
"""An order and its lines, unless an order with that id is stored (another transaction's
included: the insert waits for it). No row back: the order was there (and no line was
inserted); else one row per line (line id, line number), or one of NULLs for an order without
lines."""

PG_ADD_ORDER_WITH_VIEW = (
    _PG_ADD_ORDER_CTES + ", v AS ("
    " INSERT INTO order_channel_views (order_id, units, updated_at)"
    " SELECT o.id, %(units)s::json, %(created_at)s FROM o"
    " ON CONFLICT (order_id) DO UPDATE SET units = excluded.units, updated_at = excluded.updated_at"
    ")" + _PG_ADD_ORDER_RESULT
)
"""``PG_ADD_ORDER`` and the channel's view of the order (``units``: JSON), in the same statement:
nothing of either when the order was there."""


@cache
def lock_sku_rows() -> Select:  # type: ignore[type-arg]
    """PostgreSQL: the SKU rows ``keys``, locked in code order (as ``SqlStock.lock_skus``)."""
    return select(t.skus).where(t.skus.c.code.in_(_keys())).order_by(t.skus.c.code).with_for_update()


PG_ADD_OUTBOX = (
    "INSERT INTO outbox (action, target, payload, dedupe_key, status, attempts, next_attempt_at, created_at,"
    " updated_at)"
    " SELECT v.action, v.target, v.payload::json, v.dedupe_key, 'pending', 0, %(now)s, %(now)s, %(now)s"
    " FROM unnest(%(action)s::text[], %(target)s::text[], %(payload)s::text[], %(dedupe_key)s::text[])"
    " WITH ORDINALITY AS v(action, target, payload, dedupe_key, n) ORDER BY v.n"
)
"""PostgreSQL: outbox rows (JSON payload text encoded once) in one statement, ids in the given
order, as ``SqlOutbox``'s COPY writes them."""
