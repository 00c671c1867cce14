"""The full backorder run's own steps, against the contract they stand in for: the general walk
run from memory over what the vectorised queues leave, and the ETAs computed for all SKUs at
once. Handlers with fakes (the SQL store is compared with the per-SKU path in
tests/integration/test_bulk_run.py)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.fakes import START, make_bus, seed_catalog

from backorder.domain import commands, events
from backorder.domain.commands import NewLine
from backorder.domain.eta import Supply, assign_etas
from backorder.domain.model import PoStatus, PurchaseOrder, PurchaseOrderLine, Sku, StockLevel, Supplier
from backorder.services.handlers import _supply_etas
from backorder.services.policy import EnginePolicy

POLICY = EnginePolicy(channel_locations={"pos": ("store",)})
SKUS = ("RED", "BLUE", "OCHRE", "UMBER")
FAST = Supplier("FAST", "Fast", lead_time_days=5)
SLOW = Supplier("SLOW", "Slow", lead_time_days=30)


@settings(max_examples=300, deadline=None)
@given(
    needs=st.lists(st.integers(1, 6), max_size=12),
    lots=st.lists(st.tuples(st.integers(0, 20), st.integers(0, 9)), max_size=5),
)
def test_etas_from_cumulative_supply_are_the_walk_over_the_lots(needs: list[int], lots: list[tuple[int, int]]) -> None:
    waiting = [(key, need) for key, need in enumerate(needs)]
    supply = [Supply(date(2026, 3, 1) + timedelta(days=days), units) for days, units in lots]
    fallback = date(2026, 6, 1)
    assert _supply_etas(waiting, supply, fallback) == assign_etas(waiting, supply, fallback)


Order = tuple[str, str, int, int, bool, tuple[tuple[str, int], ...]]
Plan = tuple[list[Order], dict[tuple[str, str], int], dict[str, int]]


@st.composite
def worlds(draw: st.DrawFn) -> Plan:
    """Orders (some ship-complete, some from a channel limited to one location), stock at two
    locations, and SKUs with units confirmed on a purchase order for a near date."""
    orders: list[Order] = []
    for i in range(draw(st.integers(1, 10))):
        skus = draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=3, unique=True))
        lines = tuple((sku, draw(st.integers(1, 4))) for sku in skus)
        channel = draw(st.sampled_from(["web", "web", "pos"]))
        orders.append((f"O{i}", channel, draw(st.integers(0, 2)), draw(st.integers(0, 30)), draw(st.booleans()), lines))
    stock = {(sku, loc): draw(st.integers(0, 6)) for sku in SKUS for loc in ("main", "store")}
    confirmed = draw(st.dictionaries(st.sampled_from(SKUS), st.integers(1, 8), max_size=2))
    return orders, stock, confirmed


def _run(plan: Plan, full: bool) -> tuple[dict[tuple[str, int], tuple[int, int, Any]], Counter[events.Event]]:
    orders, stock, confirmed = plan
    bus, uow, _ = make_bus(policy=POLICY)
    seed_catalog(
        uow,
        skus=[Sku(code, code, preferred_supplier="FAST" if i % 2 else "SLOW") for i, code in enumerate(SKUS)],
        suppliers=[FAST, SLOW],
        locations=["main", "store"],
    )
    for order_id, channel, priority, minutes, whole, lines in orders:
        bus.handle(
            commands.PlaceOrder(
                order_id,
                channel,
                START + timedelta(minutes=minutes),
                tuple(NewLine(no, sku, qty) for no, (sku, qty) in enumerate(lines, start=1)),
                priority=priority,
                ship_complete=whole,
            )
        )
    soon = START.date() + timedelta(days=2)
    with uow:
        for sku, units in confirmed.items():
            line = PurchaseOrderLine(sku, units, Decimal(0), expected_on=soon)
            uow.purchasing.add(PurchaseOrder(f"PO-{sku}", "FAST", START, PoStatus.ACKNOWLEDGED, START, [line]))
        uow.commit()
    bus.handle(commands.RecomputeEtas(SKUS))  # every ETA as the POs say: a run moves only what it changes
    with uow:  # stock that arrived without an allocation pass (a restore, a stock load)
        uow.stock.save_levels(StockLevel(sku, loc, units) for (sku, loc), units in stock.items())
        uow.commit()
    happened = bus.handle(commands.RunBackorderProcessing() if full else commands.RunBackorderProcessing(SKUS))
    lines = {
        (o.id, line.line_no): (line.allocated, line.backordered, line.eta)
        for o in uow.state.orders.values()
        for line in o.lines
    }
    return lines, Counter(happened)


@settings(max_examples=150, deadline=None)
@given(worlds())
def test_a_full_run_ends_where_the_per_sku_path_ends(plan: Plan) -> None:
    full_lines, full_events = _run(plan, full=True)
    per_sku_lines, per_sku_events = _run(plan, full=False)
    assert full_lines == per_sku_lines
    assert full_events == per_sku_events
    allocated = [e.order_id for e in full_events if isinstance(e, events.BackorderAllocated)]
    assert len(allocated) == len(set(allocated))  # one announcement per order
