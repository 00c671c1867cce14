"""The combined reads and writes of the receipt and order paths (issue 2, round trips) against
the real SQL store, on SQLite and PostgreSQL: each answers what the single reads it replaces
answer, and an order stored twice is refused without writing anything."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from backorder.bootstrap import Application
from backorder.domain import commands, events
from backorder.domain.commands import NewLine
from backorder.domain.errors import DuplicateOrder
from backorder.domain.model import Order, OrderLine, PoStatus
from backorder.store import tables as t
from backorder.store.unit_of_work import SqlUnitOfWork

PLACED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def shop(app: Application) -> Application:
    """A ship-complete order waiting on A and B (B from another supplier), C unrelated; stock
    levels of A at two locations; B below its reorder point, its PO sent (dated)."""
    app.bus.handle(
        commands.ImportBatch(
            (
                commands.UpsertSupplier("ROYAL", "Royal Talens", "r@example.com", 10),
                commands.UpsertSupplier("WN", "Winsor & Newton", "w@example.com", 21),
                commands.UpsertSku("A", "Ink", supplier="ROYAL", lead_time_days=4),
                commands.UpsertSku("B", "Paper", supplier="WN", reorder_point=5, order_up_to=20),
                commands.UpsertSku("C", "Brush"),
                commands.SetStockLevel("A", "main", 0),
                commands.SetStockLevel("A", "back", 0),
            )
        )
    )
    app.bus.handle(
        commands.PlaceOrder("SC", "web", PLACED, (NewLine(1, "A", 3), NewLine(2, "B", 2)), ship_complete=True)
    )
    app.bus.handle(commands.PlaceOrder("P", "web", PLACED, (NewLine(1, "A", 1),)))
    with SqlUnitOfWork(app.engine, app.clock) as uow:
        drafts = {po.supplier: po.number for po in uow.purchasing.drafts()}
    app.bus.handle(commands.SendPurchaseOrder(drafts["WN"]))
    app.bus.handle(commands.RecomputeEtas(("A", "B")))
    return app


def test_a_change_scope_reads_what_the_single_reads_read(shop: Application) -> None:
    with SqlUnitOfWork(shop.engine, shop.clock) as uow:
        scope = uow.stock.lock_change_scope("A")
        assert scope is not None
        assert scope.scope == uow.orders.ship_complete_scope(["A"]) == {"A", "B"}
        assert scope.skus == uow.catalog.get_skus(["A", "B"])
        assert scope.levels == uow.stock.levels(["A", "B"])
        assert scope.lead_times == uow.catalog.lead_times(["A", "B"])
        assert scope.dated_supply == uow.purchasing.skus_with_open_supply(["A", "B"], dated_only=True) == {"B"}
        sent = {
            sku for sku in ("A", "B") if any(po.status is not PoStatus.DRAFT for po in uow.purchasing.open_for_sku(sku))
        }
        assert sent == {"B"}
        assert sent <= scope.sent_supply  # a store may leave the check to open_for_sku


def test_reading_locked_skus_leaves_out_unknown_ones(shop: Application) -> None:
    with SqlUnitOfWork(shop.engine, shop.clock) as uow:
        read = uow.stock.read_locked(["C", "A", "NOPE"])
        assert read.scope == {"A", "C"}
        assert read.levels == uow.stock.levels(["A", "C"])
        assert read.lead_times == uow.catalog.lead_times(["A", "C"])
        assert uow.stock.lock_existing_skus(["C", "NOPE"]) == uow.catalog.get_skus(["C"])


def test_a_change_scope_of_an_unknown_sku_is_none(shop: Application) -> None:
    with SqlUnitOfWork(shop.engine, shop.clock) as uow:
        assert uow.stock.lock_change_scope("NOPE") is None


def test_an_order_placed_twice_is_refused_and_gets_no_second_set_of_lines(shop: Application) -> None:
    again = commands.PlaceOrder("P", "web", PLACED, (NewLine(1, "C", 5), NewLine(2, "A", 1)))
    with pytest.raises(DuplicateOrder):
        shop.bus.handle(again)
    with shop.engine.connect() as conn:
        lines = conn.execute(select(func.count()).where(t.order_lines.c.order_id == "P")).scalar_one()
    assert lines == 1


def test_a_channel_view_saved_twice_keeps_the_last(shop: Application) -> None:
    with SqlUnitOfWork(shop.engine, shop.clock) as uow:
        uow.orders.save_channel_view("P", {"A": 1})
        uow.orders.save_channel_view("P", {"A": 2, "C": 1})
        uow.commit()
    with SqlUnitOfWork(shop.engine, shop.clock) as uow:
        assert uow.orders.channel_view("P") == {"A": 2, "C": 1}
        assert uow.orders.channel_view("SC") is None


def _stored_etas(app: Application, order_id: str) -> dict[int, object]:
    with app.engine.connect() as conn:
        rows = conn.execute(
            select(t.order_lines.c.line_no, t.order_lines.c.eta).where(t.order_lines.c.order_id == order_id)
        )
        return {r.line_no: r.eta for r in rows}


def test_a_new_waiting_line_of_a_sku_without_dated_supply_is_stored_with_its_eta(shop: Application) -> None:
    """Its ETA is the fallback whatever its rank: written with the line, no second write."""
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(" ".join(statement.split()).upper())

    event.listen(shop.engine, "before_cursor_execute", seen)
    try:
        happened = shop.bus.handle(commands.PlaceOrder("N", "web", PLACED, (NewLine(1, "A", 2),)))
    finally:
        event.remove(shop.engine, "before_cursor_execute", seen)
    (created,) = [e for e in happened if isinstance(e, events.BackorderCreated)]
    expected = shop.clock.today() + timedelta(days=4)  # A's supplier item lead time
    assert [line.eta for line in created.lines] == [expected]
    assert _stored_etas(shop, "N") == {1: expected}
    assert not [s for s in statements if s.startswith("UPDATE ORDER_LINES")]


def test_a_new_waiting_line_of_a_sku_with_dated_supply_gets_the_eta_of_the_po_that_covers_it(
    shop: Application,
) -> None:
    happened = shop.bus.handle(commands.PlaceOrder("N", "web", PLACED, (NewLine(1, "A", 1), NewLine(2, "B", 1))))
    (created,) = [e for e in happened if isinstance(e, events.BackorderCreated)]
    stored = _stored_etas(shop, "N")
    assert {line.line_no: line.eta for line in created.lines} == stored
    with shop.engine.connect() as conn:
        po_date = conn.execute(select(func.max(t.po_lines.c.expected_on)).where(t.po_lines.c.sku == "B")).scalar_one()
    assert stored[2] == po_date is not None
    assert stored[1] == shop.clock.today() + timedelta(days=4)


def test_an_order_added_with_its_channel_view_stores_both_and_a_duplicate_neither(shop: Application) -> None:
    with SqlUnitOfWork(shop.engine, shop.clock) as uow:
        uow.orders.save_channel_view("P", {"A": 1})
        uow.commit()
    with SqlUnitOfWork(shop.engine, shop.clock) as uow:
        uow.orders.add(Order("V", "web", PLACED, lines=[OrderLine("V", 1, "C", 2, backordered=2)]), {"C": 2})
        with pytest.raises(DuplicateOrder):
            uow.orders.add(Order("P", "web", PLACED, lines=[OrderLine("P", 9, "C", 1, backordered=1)]), {"C": 7})
        uow.commit()
    with SqlUnitOfWork(shop.engine, shop.clock) as uow:
        assert uow.orders.channel_view("V") == {"C": 2}
        assert uow.orders.channel_view("P") == {"A": 1}
        stored = uow.orders.get("V")
        assert stored is not None and [(x.line_no, x.sku, x.quantity) for x in stored.lines] == [(1, "C", 2)]


def test_the_threshold_check_after_an_order_sees_the_positions_a_fresh_read_gives(app: Application) -> None:
    """``place_order`` judges thresholds on the positions read with its lock plus what it just
    did (PostgreSQL) or on a read after it (SQLite): either way what it judged is what the store
    holds once the order is placed, before the proposals it made."""
    app.bus.handle(
        commands.ImportBatch(
            (
                commands.UpsertSupplier("ROYAL", "Royal Talens", "r@example.com", 10),
                commands.UpsertSku("X", "Ink", supplier="ROYAL"),
                commands.UpsertSku("Y", "Paper"),
                commands.UpsertSku("Z", "Brush", supplier="ROYAL"),
                commands.SetStockLevel("X", "main", 3),
                commands.SetStockLevel("X", "back", 2),
                commands.SetStockLevel("Z", "main", 100),
            )
        )
    )
    app.bus.handle(  # reorder points once the stock is there (no draft yet)
        commands.ImportBatch(
            (
                commands.UpsertSku("X", "Ink", supplier="ROYAL", reorder_point=5, order_up_to=20, moq=3, case_pack=2),
                commands.UpsertSku("Z", "Brush", supplier="ROYAL", reorder_point=5, order_up_to=30),
            )
        )
    )
    orders = [
        ("O1", (("X", 10),)),  # takes all five, five wait: a breach, a draft
        ("O2", (("X", 2), ("Z", 3))),  # X waits further (the draft counts as incoming); Z calm
        ("SEND", ()),
        ("O3", (("Y", 1), ("Z", 95))),  # Y waits with no supplier; Z falls under its reorder point
        ("O4", (("Z", 2), ("X", 1))),
    ]
    breached: set[tuple[str, str]] = set()
    calm: set[tuple[str, str]] = set()
    for order_id, lines in orders:
        if order_id == "SEND":
            with SqlUnitOfWork(app.engine, app.clock) as uow:
                drafts = [po.number for po in uow.purchasing.drafts()]
            for number in drafts:
                app.bus.handle(commands.SendPurchaseOrder(number))
            continue
        new_lines = tuple(NewLine(n, sku, units) for n, (sku, units) in enumerate(lines, start=1))
        happened = app.bus.handle(commands.PlaceOrder(order_id, "web", PLACED, new_lines))
        judged = {e.sku: e.projected for e in happened if isinstance(e, events.StockBelowThreshold)}
        proposed: dict[str, int] = {}
        for e in happened:
            if isinstance(e, events.PurchaseOrderProposed):
                proposed[e.sku] = proposed.get(e.sku, 0) + e.quantity
        with SqlUnitOfWork(app.engine, app.clock) as uow:
            fresh = uow.stock.positions([sku for sku, _ in lines])
            catalog = uow.catalog.get_skus(list(fresh))
        for sku, position in fresh.items():
            before_proposals = position.projected - proposed.get(sku, 0)
            if sku in judged:
                assert judged[sku] == before_proposals, (order_id, sku)
                breached.add((order_id, sku))
            else:
                assert sku not in proposed and before_proposals >= max(catalog[sku].reorder_point, 0), (order_id, sku)
                calm.add((order_id, sku))
    # the scenario reaches both sides of the check, with and without a supplier
    assert {("O1", "X"), ("O3", "Y"), ("O3", "Z")} <= breached
    assert ("O2", "Z") in calm
