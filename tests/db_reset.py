"""Emptying the core's tables between examples of a property test on one real database (much
cheaper than a fresh schema per example)."""

from __future__ import annotations

from sqlalchemy import Engine, delete

from backorder.store import tables as t

CORE_TABLES = frozenset(
    {
        "line_holdings",
        "allocation_ledger",
        "order_lines",
        "orders",
        "receipts",
        "po_lines",
        "purchase_orders",
        "stock_levels",
        "supplier_items",
        "skus",
        "suppliers",
        "locations",
        "counters",
        "outbox",
        "delivery_attempts",
    }
)
"""What orders, stock, purchasing and the outbox write; children are emptied before parents."""


def empty_core_tables(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(t.metadata.sorted_tables):
            if table.name in CORE_TABLES:
                conn.execute(delete(table))
