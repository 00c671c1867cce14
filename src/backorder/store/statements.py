"""The hot read statements, built once on first use (not at import) and reused: building a
SQLAlchemy statement costs more than SQLite takes to run it. Each takes its keys as one
expanding parameter ``keys``."""

from __future__ import annotations

from functools import cache

from sqlalchemy import Select, and_, bindparam, func, select

from backorder.domain.model import OPEN_PO_STATUSES
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
