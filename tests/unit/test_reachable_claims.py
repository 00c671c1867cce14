"""Reading a SKU's queue only as far as its stock reaches changes nothing.

``allocate_waiting`` reads each SKU's waiting lines in rank order only until the units wanted by
ordinary lines that can draw from every stocked location cover the available stock, plus every
ship-complete order it meets, whole; and its ETA step reads only what can move. These properties
compare it, on arbitrary stored states (consistent or not), with the reference it replaced —
every waiting line of the ship-complete closure read as domain objects, ``allocate`` over all of
them, then ``refresh_etas`` over the whole scope — grant for grant, event for event, row for row.

The same checks run on the SQL store (tests/integration/test_reachable_claims_sql.py).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.fakes import START, FakeUnitOfWork, FixedClock

from backorder.domain import events
from backorder.domain.allocation import Grant, allocate
from backorder.domain.eta import Supply, assign_etas
from backorder.domain.model import (
    LineStatus,
    Order,
    OrderLine,
    PoStatus,
    PurchaseOrder,
    PurchaseOrderLine,
    Sku,
    StockLevel,
    Supplier,
    SupplierItem,
)
from backorder.services import handlers
from backorder.services.handlers import HandlerContext, reachable_claims
from backorder.services.policy import EnginePolicy
from backorder.services.ports import UnitOfWork

SKUS = ("A", "B", "C", "D")
LOCATIONS = ("main", "back")
CHANNELS = ("web", "shop", "portal")
POLICY = EnginePolicy(channel_locations={"shop": ("back",), "portal": ("back", "main")}, default_lead_time_days=7)
SUPPLIERS = (Supplier("S1", "One", lead_time_days=10), Supplier("S2", "Two", lead_time_days=3))
CATALOG = (
    Sku("A", "A", preferred_supplier="S1"),
    Sku("B", "B", preferred_supplier="S2"),
    Sku("C", "C", preferred_supplier="S1"),
    Sku("D", "D"),  # no supplier: the policy's default lead time
)
ITEMS = (SupplierItem("S1", "A", lead_time_days=5), SupplierItem("S1", "C"), SupplierItem("S2", "B"))
TODAY = START.date()


@dataclass(frozen=True)
class World:
    """A stored state: orders (lines in any state), stock at two locations, purchase orders."""

    orders: tuple[Order, ...]
    levels: tuple[StockLevel, ...]
    purchase_orders: tuple[PurchaseOrder, ...]
    trigger: tuple[str, ...]


def _eta_choices() -> st.SearchStrategy[date | None]:
    # None, the fallbacks of every lead time in play (3, 5, 7, 10 days), and dates around them
    return st.sampled_from([None, *(TODAY + timedelta(days=d) for d in (-2, 0, 2, 3, 5, 7, 10, 12))])


@st.composite
def order_lines(draw: st.DrawFn, order_id: str) -> list[OrderLine]:
    lines = []
    for no in range(1, draw(st.integers(1, 3)) + 1):
        quantity = draw(st.integers(1, 6))
        state = draw(st.sampled_from(["waiting", "waiting", "waiting", "part", "done", "cancelled", "shipped"]))
        sku = draw(st.sampled_from(SKUS))
        if state == "waiting":
            line = OrderLine(order_id, no, sku, quantity, backordered=quantity, eta=draw(_eta_choices()))
        elif state == "part":
            allocated = draw(st.integers(0, quantity - 1))
            line = OrderLine(
                order_id, no, sku, quantity, allocated, backordered=quantity - allocated, eta=draw(_eta_choices())
            )
        elif state == "done":
            line = OrderLine(order_id, no, sku, quantity, quantity)
        elif state == "cancelled":
            line = OrderLine(order_id, no, sku, quantity, status=LineStatus.CANCELLED)
        else:
            line = OrderLine(order_id, no, sku, quantity, quantity, quantity, status=LineStatus.SHIPPED)
        lines.append(line)
    return lines


@st.composite
def worlds(draw: st.DrawFn) -> World:
    orders = []
    for i in range(draw(st.integers(0, 14))):
        order_id = f"O{draw(st.integers(0, 99)):02d}-{i}"  # ids in no particular order
        orders.append(
            Order(
                order_id,
                draw(st.sampled_from(CHANNELS)),
                START + timedelta(minutes=draw(st.integers(0, 4))),  # ties on placed_at are common
                draw(st.sampled_from([0, 0, 0, 1, 2])),
                draw(st.booleans()),
                lines=draw(order_lines(order_id)),
            )
        )
    levels = tuple(
        StockLevel(sku, loc, draw(st.integers(-2, 14)), draw(st.integers(0, 6)))
        for sku in SKUS
        for loc in LOCATIONS
        if draw(st.booleans())
    )
    pos = []
    for i in range(draw(st.integers(0, 3))):
        status = draw(st.sampled_from([PoStatus.DRAFT, PoStatus.SENT, PoStatus.ACKNOWLEDGED, PoStatus.RECEIVED]))
        lines = []
        for sku in draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=3)):
            quantity = draw(st.integers(1, 12))
            expected = None if status is PoStatus.DRAFT else draw(_eta_choices())
            lines.append(PurchaseOrderLine(sku, quantity, Decimal("1"), draw(st.integers(0, quantity)), expected))
        pos.append(PurchaseOrder(f"PO-{i}", draw(st.sampled_from(["S1", "S2"])), START, status, lines=lines))
    trigger = tuple(draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=2, unique=True)))
    return World(tuple(orders), levels, tuple(pos), trigger)


def store(uow: UnitOfWork, world: World) -> None:
    """Write ``world`` through the ports and commit."""
    with uow:
        for location in LOCATIONS:
            uow.catalog.ensure_location(location)
        for supplier in SUPPLIERS:
            uow.catalog.upsert_supplier(supplier)
        for sku in CATALOG:
            uow.catalog.upsert_sku(sku)
        for item in ITEMS:
            uow.catalog.upsert_supplier_item(item)
        for order in world.orders:
            uow.orders.add(copy.deepcopy(order))
        uow.stock.save_levels(world.levels)
        for po in world.purchase_orders:
            uow.purchasing.add(copy.deepcopy(po))
        uow.commit()


# --- the reference: what allocate_waiting did before it read queues only as far as the stock reaches


def reference_refresh_etas(uow: UnitOfWork, skus: Iterable[str], ctx: HandlerContext) -> None:
    today = ctx.clock.today()
    codes = sorted(set(skus))
    lead_times = uow.catalog.lead_times(codes)
    changes: dict[tuple[str, str], list[events.EtaChange]] = defaultdict(list)
    updates: dict[int, date | None] = {}
    for sku in codes:
        waiting = sorted(uow.orders.waiting([sku]), key=lambda w: handlers._rank(w.claim))
        if not waiting:
            continue
        found = lead_times.get(sku)
        lead = ctx.policy.default_lead_time_days if found is None else found
        supply = [
            Supply(max(s.expected_on, today), s.quantity)
            for s in uow.purchasing.supply(sku, today + timedelta(days=lead))
        ]
        etas = assign_etas([(w.claim.line_key, w.claim.wanted) for w in waiting], supply, today + timedelta(days=lead))
        for w in waiting:
            new = etas[w.claim.line_key]
            if new != w.eta:
                updates[w.claim.line_key] = new
                changes[(w.claim.order_id, w.channel)].append(events.EtaChange(w.claim.line_no, sku, w.eta, new))
    if updates:
        uow.orders.save_etas(updates)
    for (order_id, channel), moved in sorted(changes.items()):
        uow.record(events.BackorderEtaChanged(order_id, channel, tuple(sorted(moved, key=lambda c: c.line_no))))


def reference_scope(uow: UnitOfWork, skus: Iterable[str]) -> set[str]:
    scope = set(skus)
    while partners := uow.orders.ship_complete_partner_skus(scope) - scope:
        scope |= partners
    return scope


def reference_grants(uow: UnitOfWork, skus: Iterable[str], ctx: HandlerContext) -> list[Grant]:
    scope = reference_scope(uow, skus)
    pools = handlers._pools(uow, uow.stock.levels(scope))
    claims = [handlers._with_locations(w.claim, w.channel, ctx) for w in uow.orders.waiting(scope)]
    return allocate(claims, pools)


def reference_allocate_waiting(uow: UnitOfWork, skus: Iterable[str], ctx: HandlerContext) -> None:
    scope = reference_scope(uow, skus)
    uow.stock.lock_skus(scope)
    waiting = uow.orders.waiting(scope)
    if not waiting:
        return
    levels = uow.stock.levels(scope)
    claims = [handlers._with_locations(w.claim, w.channel, ctx) for w in waiting]
    grants = allocate(claims, handlers._pools(uow, levels))
    handlers.apply_grants(uow, grants, levels, "receipt", "R1", ctx.clock.now())
    for sku in sorted({g.sku for g in grants}):
        uow.record(events.StockLevelChanged(sku))
    reference_refresh_etas(uow, scope, ctx)


# --- the checks, for any store ----------------------------------------------------------------


def outcome(uow: UnitOfWork, world: World) -> Any:
    """What a run leaves behind: events, every order, stock, ledgers."""
    ids = sorted(order.id for order in world.orders)
    return (
        list(uow.events),
        [uow.orders.get(order_id) for order_id in ids],
        sorted(uow.stock.levels(SKUS).items()),
        [[(r.line_no, r.sku, r.location, r.quantity, r.kind) for r in uow.orders.ledger(i)] for i in ids],
    )


def check_same_grants(uow_factory: Callable[[], UnitOfWork], world: World) -> None:
    ctx = HandlerContext(FixedClock(START), POLICY)
    with uow_factory() as uow:
        scope = uow.orders.ship_complete_scope(world.trigger)
        assert scope == reference_scope(uow, world.trigger)
        assert uow.stock.lock_ship_complete_scope(world.trigger) == scope
        pools = handlers._pools(uow, uow.stock.levels(scope))
        reached = reachable_claims(uow, scope, pools, ctx)
        assert allocate(reached.claims, pools) == reference_grants(uow, world.trigger, ctx)


def check_same_run(uow_factory: Callable[[], UnitOfWork], world: World) -> None:
    """The whole step — grants, lines, stock, ledger, ETAs and events — against the reference,
    each in a transaction that is rolled back."""
    ctx = HandlerContext(FixedClock(START), POLICY)
    results = []
    for run in (reference_allocate_waiting, _new_allocate_waiting):
        with uow_factory() as uow:
            run(uow, world.trigger, ctx)
            results.append(outcome(uow, world))
    assert results[1] == results[0]


def _new_allocate_waiting(uow: UnitOfWork, skus: Iterable[str], ctx: HandlerContext) -> None:
    handlers.allocate_waiting(uow, skus, ctx, "receipt", "R1")


# --- on the fakes -------------------------------------------------------------------------------


def _fake(world: World) -> Callable[[], UnitOfWork]:
    uow = FakeUnitOfWork()
    store(uow, world)
    return lambda: uow


@settings(max_examples=400, deadline=None)
@given(worlds())
def test_the_truncated_read_grants_exactly_what_reading_every_waiting_line_grants(world: World) -> None:
    check_same_grants(_fake(world), world)


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_allocating_from_the_truncated_read_changes_the_same_rows_and_records_the_same_events(world: World) -> None:
    check_same_run(_fake(world), world)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(1, 6), max_size=12),
    st.lists(st.tuples(st.integers(-3, 12), st.integers(1, 9)), max_size=4),
    st.integers(0, 10),
)
def test_supply_expected_on_the_fallback_date_changes_no_eta_when_none_comes_later(
    wanted: list[int], lots: list[tuple[int, int]], lead: int
) -> None:
    fallback = TODAY + timedelta(days=lead)
    supply = [Supply(max(TODAY + timedelta(days=d), TODAY), q) for d, q in lots]
    queue = list(enumerate(wanted))
    assert assign_etas(queue, handlers._effective_supply(supply, fallback), fallback) == assign_etas(
        queue, supply, fallback
    )


def test_a_receipt_reads_only_the_head_of_a_long_queue() -> None:
    orders = tuple(
        Order(
            f"O{i:04d}", "web", START + timedelta(minutes=i), lines=[OrderLine(f"O{i:04d}", 1, "A", 2, backordered=2)]
        )
        for i in range(200)
    )
    world = World(orders, (StockLevel("A", "main", 5),), (), ("A",))
    uow = FakeUnitOfWork()
    store(uow, world)
    ctx = HandlerContext(FixedClock(START), POLICY)
    with uow:
        reached = reachable_claims(uow, {"A"}, handlers._pools(uow, uow.stock.levels({"A"})), ctx)
    assert [c.order_id for c in reached.claims] == ["O0000", "O0001", "O0002"]
    assert "A" not in reached.whole
