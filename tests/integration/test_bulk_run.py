"""The full backorder run (``RunBackorderProcessing()``: vectorised queues, the general walk in
memory for queues with ship-complete orders or location-limited channels, one bulk write, ETAs
refreshed set-wise) gives what the per-SKU path gives — allocations, holdings, ledger, ETAs and
events — on SQLite and PostgreSQL.

One database holds two copies of the same world, "A-…" and "B-…": B's queues are processed by
the per-SKU path first, then A's by a full run, and A must end where B ended.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from backorder.bootstrap import Application
from backorder.domain import commands, events
from backorder.domain.commands import NewLine
from backorder.services.handlers import HandlerContext
from backorder.services.messagebus import MessageBus
from backorder.services.policy import EnginePolicy
from backorder.services.rules import RuleSet
from backorder.store import tables as t
from backorder.store.unit_of_work import uow_factory

if TYPE_CHECKING:
    from conftest import Db, SettableClock

PLACED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = EnginePolicy(channel_locations={"pos": ("store",)})  # the shop's till sells from its shelf only


def _bus(app: Application, clock: SettableClock) -> MessageBus:
    return MessageBus(uow_factory(app.engine, clock), HandlerContext(clock, POLICY), RuleSet())


def _world(app: Application, bus: MessageBus, seed: int, skus: int, orders: int) -> list[str]:
    """Two identical worlds; returns the SKU numbers' codes without prefix."""
    rng = random.Random(seed)
    codes = [f"P{i:02d}" for i in range(skus)]
    setup: list[commands.Command] = [
        commands.UpsertSupplier("FAST", "Fast supplier", "fast@example.com", 5),
        commands.UpsertSupplier("SLOW", "Slow supplier", "slow@example.com", 30),
    ]
    up_to = [rng.randint(3, 9) for _ in codes]  # backorders breach the reorder point: drafts follow
    for world in "AB":
        for i, code in enumerate(codes):
            setup.append(
                commands.UpsertSku(
                    f"{world}-{code}", code, supplier="FAST" if i % 2 else "SLOW", reorder_point=1, order_up_to=up_to[i]
                )
            )
    setup += [
        commands.SetStockLevel(f"{w}-{code}", loc, 0) for w in "AB" for code in codes for loc in ("main", "store")
    ]
    bus.handle(commands.ImportBatch(tuple(setup)))
    plans = []
    for n in range(orders):
        lines = rng.sample(codes, rng.randint(1, 3))
        plans.append(
            (
                f"O{n:03d}",
                rng.choice(["web", "web", "pos", "b2b"]),
                timedelta(minutes=rng.randint(0, 600)),
                tuple((code, rng.randint(1, 4)) for code in lines),
                rng.choice([0, 0, 0, 1, 2]),
                rng.random() < 0.25,
            )
        )
    first, rest = plans[: orders * 2 // 3], plans[orders * 2 // 3 :]
    _place(bus, first, 0)
    _confirm_purchase_orders(app, bus)
    # Orders that jump the queues push lines out of what the confirmed POs cover.
    _place(bus, rest, 3)
    return codes


def _place(bus: MessageBus, plans: list[Any], bump: int) -> None:
    for world in "AB":
        for order_id, channel, offset, lines, priority, ship_complete in plans:
            bus.handle(
                commands.PlaceOrder(
                    f"{world}-{order_id}",
                    channel,
                    PLACED + offset,
                    tuple(NewLine(no, f"{world}-{code}", qty) for no, (code, qty) in enumerate(lines, start=1)),
                    priority=priority + bump,
                    ship_complete=ship_complete,
                    customer_email=f"{order_id.lower()}@example.com",
                )
            )


def _confirm_purchase_orders(app: Application, bus: MessageBus) -> None:
    """Send every draft and confirm it for a date before today + lead time (ETAs move to it)."""
    with app.engine.connect() as conn:
        numbers = [r[0] for r in conn.execute(select(t.purchase_orders.c.number).order_by(t.purchase_orders.c.number))]
    assert numbers, "the reorder points raised no draft"
    today = bus.context.clock.now().date()
    for i, number in enumerate(numbers):
        bus.handle(commands.SendPurchaseOrder(number))
        bus.handle(commands.AcknowledgePurchaseOrder(number, today + timedelta(days=2 + i)))


def _stock(app: Application, world: str, codes: list[str], seed: int) -> None:
    """Stock that appears without an allocation pass (a restore, a stock load), at two locations."""
    rng = random.Random(seed + 1)
    with app.engine.begin() as conn:
        for code in codes:
            for location in ("main", "store"):
                units = rng.choice([0, 0, 1, 2, 3, 5, 8])
                level = t.stock_levels.c
                conn.execute(
                    t.stock_levels.update()
                    .where(level.sku == f"{world}-{code}", level.location == location)
                    .values(on_hand=level.on_hand + units)
                )


def _state(db: Db, world: str) -> dict[str, Any]:
    """Everything of one world that a run changes, with the world's prefix taken off."""

    def bare(value: str) -> str:
        assert value.startswith(f"{world}-"), value
        return value[2:]

    c = t.order_lines.c
    lines = {
        (bare(r["order_id"]), r["line_no"]): (r["allocated"], r["backordered"], r["eta"])
        for r in db.rows(t.order_lines, c.order_id.like(f"{world}-%"))
    }
    ids = {r["id"]: (bare(r["order_id"]), r["line_no"]) for r in db.rows(t.order_lines, c.order_id.like(f"{world}-%"))}
    holdings = {
        (*ids[r["line_id"]], r["location"]): r["quantity"] for r in db.rows(t.line_holdings) if r["line_id"] in ids
    }
    levels = {
        (bare(r["sku"]), r["location"]): (r["on_hand"], r["allocated"])
        for r in db.rows(t.stock_levels, t.stock_levels.c.sku.like(f"{world}-%"))
    }
    ledger = Counter(
        (bare(r["order_id"]), r["line_no"], bare(r["sku"]), r["location"], r["quantity"], r["kind"])
        for r in db.rows(t.allocation_ledger, t.allocation_ledger.c.order_id.like(f"{world}-%"))
        if r["source"] == "bop"
    )
    return {"lines": lines, "holdings": holdings, "levels": levels, "ledger": ledger}


def _strip(event: events.Event) -> Any:
    """An event with its world's prefix taken off every order id and SKU."""
    if isinstance(event, events.BackorderAllocated):
        lines = tuple((x.line_no, x.sku[2:], x.quantity, x.still_backordered) for x in event.lines)
        return ("allocated", event.order_id[2:], event.channel, lines, event.ready_to_ship)
    if isinstance(event, events.BackorderEtaChanged):
        changes = tuple((x.line_no, x.sku[2:], x.previous, x.current) for x in event.changes)
        return ("eta", event.order_id[2:], event.channel, changes)
    if isinstance(event, events.StockLevelChanged):
        return ("stock", event.sku[2:])
    return (event.name, event)


@pytest.mark.parametrize("seed", [3, 11])
def test_a_full_run_ends_where_the_per_sku_path_ends(app: Application, db: Db, clock: SettableClock, seed: int) -> None:
    bus = _bus(app, clock)
    codes = _world(app, bus, seed, skus=9, orders=36)
    assert _state(db, "A") == _state(db, "B")  # the two worlds start alike

    _stock(app, "B", codes, seed)
    per_sku = bus.handle(commands.RunBackorderProcessing(tuple(f"B-{code}" for code in codes)))
    _stock(app, "A", codes, seed)
    full = bus.handle(commands.RunBackorderProcessing())

    after_a, after_b = _state(db, "A"), _state(db, "B")
    assert after_a["ledger"], "the run allocated nothing: the world is too small to test anything"
    assert after_a == after_b
    assert Counter(map(_strip, full)) == Counter(map(_strip, per_sku))
    moved = [e for e in full if isinstance(e, events.BackorderEtaChanged)]
    assert moved, "no ETA moved: the confirmed POs should cover lines that moved up the queue"


def test_a_full_run_announces_one_allocation_per_order_across_both_paths(
    app: Application, db: Db, clock: SettableClock
) -> None:
    bus = _bus(app, clock)
    bus.handle(
        commands.ImportBatch(
            (
                commands.UpsertSupplier("FAST", "Fast supplier", "fast@example.com", 5),
                commands.UpsertSku("RED", "Red"),
                commands.UpsertSku("BLUE", "Blue"),
                commands.SetStockLevel("RED", "main", 0),
                commands.SetStockLevel("BLUE", "main", 0),
            )
        )
    )
    # RED's queue is vectorised; BLUE's holds a ship-complete order, so it is walked.
    bus.handle(commands.PlaceOrder("MIX", "web", PLACED, (NewLine(1, "RED", 2), NewLine(2, "BLUE", 1))))
    bus.handle(
        commands.PlaceOrder("WHOLE", "web", PLACED + timedelta(minutes=1), (NewLine(1, "BLUE", 1),), ship_complete=True)
    )
    with app.engine.begin() as conn:
        conn.execute(t.stock_levels.update().values(on_hand=2))

    happened = bus.handle(commands.RunBackorderProcessing())

    allocated = [e for e in happened if isinstance(e, events.BackorderAllocated)]
    assert [(e.order_id, e.ready_to_ship) for e in allocated] == [("MIX", True), ("WHOLE", True)]
    assert [(x.line_no, x.sku, x.quantity) for x in allocated[0].lines] == [(1, "RED", 2), (2, "BLUE", 1)]
    assert db.line("MIX", 1)["eta"] is None and db.line("MIX", 2)["eta"] is None  # nothing left to wait for
    c = t.outbox.c
    messages = [r["payload"] for r in db.rows(t.outbox, c.action == "notify_customer")]
    assert Counter(p["order_id"] for p in messages if p["event"] == "BackorderAllocated") == {"MIX": 1, "WHOLE": 1}


def test_a_full_run_on_a_later_day_moves_the_etas_of_the_queues_it_touched(
    app: Application, db: Db, clock: SettableClock
) -> None:
    bus = _bus(app, clock)
    bus.handle(
        commands.ImportBatch(
            (
                commands.UpsertSupplier("SLOW", "Slow supplier", "slow@example.com", 30),
                commands.UpsertSku("INK", "Ink", supplier="SLOW"),
                commands.UpsertSku("PEN", "Pen", supplier="SLOW"),
                commands.SetStockLevel("INK", "main", 0),
            )
        )
    )
    for i in range(3):
        lines = (NewLine(1, "INK", 2), NewLine(2, "PEN", 1)) if i == 2 else (NewLine(1, "INK", 2),)
        bus.handle(commands.PlaceOrder(f"O{i}", "web", PLACED + timedelta(minutes=i), lines))
    bus.handle(commands.PlaceOrder("QUIET", "web", PLACED, (NewLine(1, "PEN", 1),)))
    first = clock.now().date() + timedelta(days=30)
    assert db.line("O1")["eta"] == first
    clock.advance(days=2)
    with app.engine.begin() as conn:
        conn.execute(t.stock_levels.update().where(t.stock_levels.c.sku == "INK").values(on_hand=2))

    happened = bus.handle(commands.RunBackorderProcessing())

    now = clock.now().date() + timedelta(days=30)
    assert db.line("O0")["allocated"] == 2 and db.line("O0")["eta"] is None
    assert [db.line(f"O{i}")["eta"] for i in (1, 2)] == [now, now]
    # PEN had no stock: its queue was not touched, its ETAs stay until something touches it
    assert db.line("O2", 2)["eta"] == first and db.line("QUIET")["eta"] == first
    moved = {e.order_id: e.changes for e in happened if isinstance(e, events.BackorderEtaChanged)}
    assert moved == {
        "O1": (events.EtaChange(1, "INK", first, now),),
        "O2": (events.EtaChange(1, "INK", first, now),),
    }
