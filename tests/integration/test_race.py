"""Concurrency on SQLite and PostgreSQL: the last unit goes to exactly one order, and stock
invariants hold when receipts and orders for one SKU race each other."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from backorder.bootstrap import Application
from backorder.domain import commands
from backorder.domain.commands import NewLine
from backorder.store import tables as t

if TYPE_CHECKING:
    from conftest import Db

PLACED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
THREADS = 50


def run_at_once(jobs: list[Callable[[], Any]], timeout: float = 120.0) -> list[BaseException]:
    """Start every job on its own thread, release them together, and return what they raised."""
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(job: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=timeout)
            job()
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(job,), daemon=True) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a worker thread never finished"
    return errors


def seed(app: Application, on_hand: int) -> None:
    app.bus.handle(
        commands.ImportBatch(
            (
                commands.UpsertSupplier("ROYAL", "Royal Talens", "orders@royal.example", 10),
                commands.UpsertSku("LAST", "The last tube", supplier="ROYAL"),
                commands.SetStockLevel("LAST", "main", on_hand),
            )
        )
    )


def order(app: Application, order_id: str, quantity: int, minutes: int) -> Callable[[], Any]:
    command = commands.PlaceOrder(
        order_id,
        "web",
        PLACED + timedelta(minutes=minutes),
        (NewLine(1, "LAST", quantity),),
        customer_email=f"{order_id.lower()}@customer.example",
    )
    return lambda: app.bus.handle(command)


def check_invariants(app: Application, db: Db) -> dict[str, int]:
    """Stock, lines, holdings and the ledger agree; returns the SKU's totals."""
    level = db.level("LAST", "main")
    lines = db.rows(t.order_lines, t.order_lines.c.sku == "LAST")
    for line in lines:
        if line["status"] == "open":
            assert line["allocated"] + line["backordered"] == line["quantity"], line
        assert 0 <= line["allocated"] <= line["quantity"]
    unshipped = sum(line["allocated"] - line["shipped"] for line in lines if line["status"] == "open")
    assert level["allocated"] == unshipped
    held = sum(h["quantity"] for h in db.rows(t.line_holdings, t.line_holdings.c.sku == "LAST"))
    assert held == unshipped
    a = t.allocation_ledger.c
    with app.engine.connect() as conn:
        ledger = dict(conn.execute(select(a.kind, func.sum(a.quantity)).where(a.sku == "LAST").group_by(a.kind)).all())
    # allocate is +, release and withdraw are −, ship (from held units) takes units out of the holding
    held_by_ledger = sum(int(ledger.get(k) or 0) for k in ("allocate", "release", "withdraw")) - int(
        ledger.get("ship") or 0
    )
    assert held_by_ledger == unshipped
    assert 0 <= level["allocated"] <= max(level["on_hand"], 0)
    waiting = sum(line["backordered"] for line in lines if line["status"] == "open")
    # nothing is left unpromised while a line waits
    assert waiting == 0 or level["on_hand"] - level["allocated"] <= 0
    return {"on_hand": level["on_hand"], "allocated": level["allocated"], "waiting": waiting}


def test_fifty_orders_for_the_last_unit_at_once_leave_exactly_one_winner(app: Application, db: Db) -> None:
    seed(app, on_hand=1)
    errors = run_at_once([order(app, f"RACE-{i:02d}", 1, minutes=i) for i in range(THREADS)])
    assert errors == []

    lines = db.rows(t.order_lines, t.order_lines.c.sku == "LAST")
    assert len(lines) == THREADS
    winners = [line for line in lines if line["allocated"] == 1]
    assert len(winners) == 1
    assert sum(1 for line in lines if line["backordered"] == 1 and line["allocated"] == 0) == THREADS - 1
    assert db.level("LAST", "main")["allocated"] == 1
    assert db.level("LAST", "main")["on_hand"] == 1
    assert check_invariants(app, db) == {"on_hand": 1, "allocated": 1, "waiting": THREADS - 1}

    # one customer hears "backordered" for each loser, none for the winner
    created = [
        r["payload"]["order_id"]
        for r in db.rows(t.outbox, t.outbox.c.action == "notify_customer")
        if r["payload"]["event"] == "BackorderCreated"
    ]
    assert sorted(created) == sorted(line["order_id"] for line in lines if line["allocated"] == 0)


def test_receipts_racing_orders_on_one_sku_keep_every_unit_accounted_for(app: Application, db: Db) -> None:
    seed(app, on_hand=2)
    orders = [order(app, f"MIX-{i:02d}", 1 + i % 3, minutes=i) for i in range(24)]
    receipts = [
        (lambda q=q: app.bus.handle(commands.ReceiveStock("LAST", "main", q, app.clock.now())))
        for q in [1, 2, 3, 1, 2, 3, 1, 2]
    ]
    jobs: list[Callable[[], Any]] = []
    for i, job in enumerate(orders):
        jobs.append(job)
        if i % 3 == 0 and receipts:
            jobs.append(receipts.pop())
    jobs.extend(receipts)
    assert run_at_once(jobs) == []

    demand = sum(1 + i % 3 for i in range(24))
    supply = 2 + sum([1, 2, 3, 1, 2, 3, 1, 2])
    totals = check_invariants(app, db)
    assert totals["on_hand"] == supply
    assert totals["allocated"] == min(demand, supply)
    assert totals["waiting"] == demand - min(demand, supply)
    assert db.count(t.receipts) == 8


def test_a_full_backorder_run_racing_new_orders_never_promises_more_than_is_on_hand(app: Application, db: Db) -> None:
    seed(app, on_hand=0)
    for i in range(20):
        order(app, f"WAIT-{i:02d}", 1, minutes=i)()
    # Ten units appear without an allocation pass (a stock load, a restore, a missed event):
    # exactly what the periodic full run is there to hand out.
    with app.engine.begin() as conn:
        conn.execute(t.stock_levels.update().where(t.stock_levels.c.sku == "LAST").values(on_hand=10))

    jobs: list[Callable[[], Any]] = [lambda: app.bus.handle(commands.RunBackorderProcessing())]
    jobs += [order(app, f"NEW-{i:02d}", 1, minutes=60 + i) for i in range(20)]
    assert run_at_once(jobs) == []

    totals = check_invariants(app, db)
    assert totals == {"on_hand": 10, "allocated": 10, "waiting": 30}


def test_partial_shipments_of_one_line_at_once_are_all_counted(app: Application, db: Db) -> None:
    seed(app, on_hand=20)
    order(app, "BULK", 20, minutes=0)()
    assert db.line("BULK")["allocated"] == 20
    ship_one = commands.ShipLine("BULK", 1, 1, "main")
    assert run_at_once([lambda: app.bus.handle(ship_one) for _ in range(20)]) == []

    line = db.line("BULK")
    assert (line["shipped"], line["status"]) == (20, "shipped")
    assert (db.level("LAST", "main")["on_hand"], db.level("LAST", "main")["allocated"]) == (0, 0)
    check_invariants(app, db)


def test_cancelling_one_order_twice_at_once_cancels_it_once(app: Application, db: Db) -> None:
    seed(app, on_hand=5)
    for i in range(5):
        order(app, f"KEEP-{i}", 1, minutes=i)()
        order(app, f"NEXT-{i}", 1, minutes=10 + i)()  # waiting behind the five
    cancels = [commands.CancelOrder(f"KEEP-{i}", reason="duplicate order") for i in range(5)]
    jobs = [lambda cmd=cmd: app.bus.handle(cmd) for cmd in cancels for _ in range(2)]
    assert run_at_once(jobs) == []

    assert all(db.line(f"KEEP-{i}")["status"] == "cancelled" for i in range(5))
    assert all(db.line(f"NEXT-{i}")["allocated"] == 1 for i in range(5))
    cancelled = [
        r["payload"]["order_id"]
        for r in db.rows(t.outbox, t.outbox.c.action == "notify_customer")
        if r["payload"]["event"] == "BackorderCancelled"
    ]
    assert sorted(cancelled) == [f"KEEP-{i}" for i in range(5)]  # one message per cancelled order
    assert check_invariants(app, db) == {"on_hand": 5, "allocated": 5, "waiting": 0}
