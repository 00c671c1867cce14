"""The backorder loop end to end through the real message bus, SQL store, outbox and sandbox
connector, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import importlib.resources
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import func, select

from backorder.bootstrap import Application
from backorder.domain import commands
from backorder.domain.commands import NewLine
from backorder.domain.errors import DuplicateOrder, UnknownSku
from backorder.importer import import_file
from backorder.notify.preferences import set_preference
from backorder.services.messagebus import MessageBus
from backorder.services.ports import OutboxMessage
from backorder.services.rules import RuleSet
from backorder.store import tables as t
from backorder.store.sandbox import sandbox_messages
from backorder.store.unit_of_work import uow_factory

if TYPE_CHECKING:
    from conftest import Db, SettableClock

PLACED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
"""Orders' placed_at is the channel's time, independent of the test clock."""
ROYAL_EMAIL = "orders@royal.example"
WN_EMAIL = "po@wn.example"


# --- helpers --------------------------------------------------------------------------------


@pytest.fixture
def shop(app: Application) -> Application:
    """Two suppliers, four SKUs, one location; no stock yet, no reorder points."""
    app.bus.handle(
        commands.ImportBatch(
            (
                commands.UpsertSupplier("ROYAL", "Royal Talens", ROYAL_EMAIL, 10),
                commands.UpsertSupplier("WN", "Winsor & Newton", WN_EMAIL, 21),
                commands.UpsertSku("INK", "Indigo ink", supplier="ROYAL", supplier_sku="R-INK"),
                commands.UpsertSku("PAPER", "Cotton paper", supplier="ROYAL", supplier_sku="R-PAP"),
                commands.UpsertSku("BRUSH", "Round brush", supplier="ROYAL", supplier_sku="R-BR"),
                commands.UpsertSku("OCHRE", "Yellow ochre", supplier="WN", supplier_sku="W-OCH"),
                commands.SetStockLevel("INK", "main", 0),
            )
        )
    )
    return app


def place(
    app: Application,
    order_id: str,
    *lines: tuple[str, int],
    priority: int = 0,
    minutes: float = 0,
    ship_complete: bool = False,
    email: str | None = "default",
    phone: str | None = None,
) -> None:
    app.bus.handle(
        commands.PlaceOrder(
            order_id,
            "web",
            PLACED + timedelta(minutes=minutes),
            tuple(NewLine(no, sku, qty) for no, (sku, qty) in enumerate(lines, start=1)),
            priority=priority,
            ship_complete=ship_complete,
            customer_email=f"{order_id.lower()}@customer.example" if email == "default" else email,
            customer_phone=phone,
        )
    )


def set_stock(app: Application, sku: str, on_hand: int, location: str = "main") -> None:
    app.bus.handle(commands.SetStockLevel(sku, location, on_hand))


def receive(app: Application, sku: str, quantity: int, location: str = "main") -> int:
    app.bus.handle(commands.ReceiveStock(sku, location, quantity, app.clock.now()))
    with app.engine.connect() as conn:
        return int(conn.execute(select(func.max(t.receipts.c.id))).scalar_one())


def allocated(db: Db, order_id: str, line_no: int = 1) -> tuple[int, int]:
    line = db.line(order_id, line_no)
    return line["allocated"], line["backordered"]


def outbox_events(db: Db, action: str | None = None) -> list[tuple[str, str, str | None]]:
    """(action, event, order id) of every outbox row, oldest first."""
    rows = db.rows(t.outbox, *([t.outbox.c.action == action] if action else []), order_by=t.outbox.c.id)
    return [(r["action"], r["payload"].get("event"), r["payload"].get("order_id")) for r in rows]


def demo_file(name: str) -> Any:
    return importlib.resources.files("backorder") / "demo_data" / name


def import_demo(app: Application, *kinds: str) -> None:
    for kind in kinds:
        with importlib.resources.as_file(demo_file(f"{kind}.csv")) as path:
            import_file(app.bus, Path(path), kind)


def csv_rows(name: str) -> list[dict[str, str]]:
    with demo_file(name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# --- the bundled demo catalog ---------------------------------------------------------------


def test_the_bundled_demo_catalog_runs_the_whole_loop_from_import_to_purchase_orders_sent(
    app: Application, db: Db, clock: SettableClock
) -> None:
    import_demo(app, "suppliers", "skus", "stock")
    suppliers = {r["supplier"]: r for r in csv_rows("suppliers.csv")}
    skus = {r["sku"]: r for r in csv_rows("skus.csv")}
    stock = {(r["sku"], r["location"]): int(r["on_hand"]) for r in csv_rows("stock.csv")}

    assert db.count(t.suppliers) == len(suppliers)
    assert db.count(t.skus) == len(skus)
    levels = {(r["sku"], r["location"]): (r["on_hand"], r["allocated"]) for r in db.rows(t.stock_levels)}
    assert levels == {key: (on_hand, 0) for key, on_hand in stock.items()}
    oversold = {key: on_hand for key, on_hand in stock.items() if on_hand < 0}
    assert oversold, "the demo stock has oversold SKUs"
    assert all(levels[key][0] == on_hand for key, on_hand in oversold.items())  # never clamped

    # replenishment: one draft per supplier, however many SKUs of that supplier breached
    drafts = db.rows(t.purchase_orders, t.purchase_orders.c.status == "draft")
    per_supplier = Counter(po["supplier"] for po in drafts)
    assert len(per_supplier) > 1
    assert set(per_supplier.values()) == {1}

    # a made-to-order SKU with no stock: the order waits, and its SKU joins its supplier's draft
    sku = next(
        code
        for code, r in skus.items()
        if r["reorder_point"] == "0" and r["supplier"] and sum(q for (s, _), q in stock.items() if s == code) <= 0
    )
    supplier = skus[sku]["supplier"]
    place(app, "DEMO-1", (sku, 2))
    assert allocated(db, "DEMO-1") == (0, 2)
    drafts = db.rows(t.purchase_orders, t.purchase_orders.c.status == "draft")
    assert Counter(po["supplier"] for po in drafts)[supplier] == 1
    (draft,) = [po for po in drafts if po["supplier"] == supplier]
    assert sku in {line["sku"] for line in db.rows(t.po_lines, t.po_lines.c.po_id == draft["id"])}

    clock.advance(days=3)
    app.bus.handle(commands.SendDuePurchaseOrders(force=True))
    pos = db.rows(t.purchase_orders)
    assert {po["status"] for po in pos} == {"sent"}
    sent_on = clock.today()
    for po_line in db.rows(t.po_lines):
        item = skus[po_line["sku"]]
        lead = int(item["lead_time_days"] or suppliers[item["supplier"]]["lead_time_days"])
        assert po_line["expected_on"] == sent_on + timedelta(days=lead)
    (expected_on,) = [
        r["expected_on"] for r in db.rows(t.po_lines, t.po_lines.c.sku == sku, t.po_lines.c.po_id == draft["id"])
    ]
    assert db.line("DEMO-1")["eta"] == expected_on

    app.dispatcher.drain()
    po_messages = sandbox_messages(app.engine, kind="purchase_order")
    assert sorted((m["recipient"], m["subject"]) for m in po_messages) == sorted(
        (suppliers[po["supplier"]]["email"], f"Purchase order {po['number']}") for po in pos
    )
    to_customer = [
        (m["template"], m["subject"])
        for m in sandbox_messages(app.engine, kind="email")
        if m["recipient"] == "demo-1@customer.example"
    ]
    assert ("backorder_created", "Order DEMO-1: 1 item on backorder") in to_customer
    assert ("eta_changed", "Order DEMO-1: new expected date") in to_customer

    receipt = receive(app, sku, 2, "warehouse")
    assert allocated(db, "DEMO-1") == (2, 0)
    (line,) = app.read.explain("DEMO-1")["lines"]
    assert [h["source_ref"] for h in line["history"]] == [f"R{receipt}"]
    assert line["history"][0]["receipt"]["po_number"] is None


# --- allocation -----------------------------------------------------------------------------


def test_receipts_allocate_by_priority_then_placed_at_then_order_id_then_line_number(shop: Application, db: Db) -> None:
    place(shop, "O-low-early", ("INK", 1), minutes=0)
    place(shop, "O-high-late", ("INK", 2), minutes=180, priority=5)
    place(shop, "O-tie-b", ("INK", 1), minutes=60)
    place(shop, "O-tie-a", ("INK", 1), minutes=60)
    place(shop, "O-two-lines", ("INK", 1), ("INK", 1), minutes=120)
    everyone = ["O-high-late", "O-low-early", "O-tie-a", "O-tie-b", "O-two-lines"]
    assert all(allocated(db, o)[0] == 0 for o in everyone)

    first = receive(shop, "INK", 2)
    assert allocated(db, "O-high-late") == (2, 0)
    assert all(allocated(db, o) == (0, 1) for o in everyone[1:])

    receive(shop, "INK", 2)
    assert allocated(db, "O-low-early") == (1, 0)
    assert allocated(db, "O-tie-a") == (1, 0)
    assert allocated(db, "O-tie-b") == (0, 1)

    third = receive(shop, "INK", 2)
    assert allocated(db, "O-tie-b") == (1, 0)
    assert allocated(db, "O-two-lines", 1) == (1, 0)
    assert allocated(db, "O-two-lines", 2) == (0, 1)
    assert db.level("INK", "main")["allocated"] == 6
    assert db.level("INK", "main")["on_hand"] == 6

    explained = shop.read.explain("O-tie-b")
    assert explained is not None
    (line,) = explained["lines"]
    assert [(h["kind"], h["quantity"], h["source_ref"]) for h in line["history"]] == [("allocate", 1, f"R{third}")]
    assert line["history"][0]["receipt"]["quantity"] == 2
    ahead = [(a["order_id"], a["line_no"]) for a in line["ranked_ahead"]]
    assert ahead == [("O-high-late", 1), ("O-low-early", 1), ("O-tie-a", 1)]
    assert "O-two-lines" not in {a["order_id"] for a in line["ranked_ahead"]}

    top = shop.read.explain("O-high-late")
    assert top is not None
    assert top["lines"][0]["ranked_ahead"] == []
    assert top["lines"][0]["history"][0]["source_ref"] == f"R{first}"


def test_explain_credits_a_receipt_only_with_the_units_it_brought(shop: Application, db: Db) -> None:
    """A ship-complete order completed by a receipt of one SKU takes its other SKU from stock
    that was already there: the ledger says so, not that the receipt brought it."""
    set_stock(shop, "PAPER", 1)
    place(shop, "SC", ("INK", 2), ("PAPER", 1), ship_complete=True)
    ink = receive(shop, "INK", 2)
    assert (allocated(db, "SC", 1), allocated(db, "SC", 2)) == ((2, 0), (1, 0))

    explained = shop.read.explain("SC")
    assert explained is not None
    by_line = {line["line_no"]: line["history"] for line in explained["lines"]}
    assert [(h["source"], h["source_ref"], h["quantity"]) for h in by_line[1]] == [("receipt", f"R{ink}", 2)]
    assert [(h["source"], h["source_ref"], h["quantity"], h["receipt"]) for h in by_line[2]] == [
        ("stock", None, 1, None)
    ]


def test_explain_lists_who_went_first_only_for_a_line_that_waited(shop: Application) -> None:
    set_stock(shop, "INK", 1)
    place(shop, "FIRST", ("INK", 1), minutes=60)  # served on arrival
    place(shop, "URGENT", ("INK", 1), minutes=120, priority=5)  # ranks ahead now, waits
    receive(shop, "INK", 1)

    first = shop.read.explain("FIRST")
    assert first is not None and first["lines"][0]["ranked_ahead"] == []


def test_a_ship_complete_order_takes_all_of_its_lines_or_nothing(shop: Application, db: Db) -> None:
    set_stock(shop, "INK", 3)
    place(shop, "SC", ("INK", 2), ("PAPER", 1), ship_complete=True)
    assert allocated(db, "SC", 1) == (0, 2)  # INK is there, PAPER is not: nothing is taken
    assert allocated(db, "SC", 2) == (0, 1)

    place(shop, "LATER", ("INK", 2), minutes=5)
    assert allocated(db, "LATER") == (2, 0)  # the stock the ship-complete order left stays available

    receive(shop, "PAPER", 1)
    assert allocated(db, "SC", 2) == (0, 1)  # still only 1 INK left of the 2 it needs
    assert db.level("PAPER", "main")["allocated"] == 0

    receive(shop, "INK", 1)
    assert allocated(db, "SC", 1) == (2, 0)
    assert allocated(db, "SC", 2) == (1, 0)
    assert db.level("INK", "main")["allocated"] == 4
    assert db.level("PAPER", "main")["allocated"] == 1
    ready = [
        r["payload"]
        for r in db.rows(t.outbox, t.outbox.c.action == "notify_customer")
        if r["payload"]["event"] == "BackorderAllocated" and r["payload"]["order_id"] == "SC"
    ]
    assert [p["ready_to_ship"] for p in ready] == [True]


def test_cancelling_an_order_hands_its_units_to_the_next_waiting_order(shop: Application, db: Db) -> None:
    set_stock(shop, "INK", 1)
    place(shop, "FIRST", ("INK", 1))
    place(shop, "SECOND", ("INK", 1), minutes=1)
    place(shop, "THIRD", ("INK", 1), minutes=2)
    assert allocated(db, "FIRST") == (1, 0)
    assert allocated(db, "SECOND") == (0, 1)

    shop.bus.handle(commands.CancelOrder("FIRST", reason="customer changed their mind"))
    assert db.line("FIRST")["status"] == "cancelled"
    assert allocated(db, "SECOND") == (1, 0)
    assert allocated(db, "THIRD") == (0, 1)
    assert db.level("INK", "main")["allocated"] == 1
    ledger = db.rows(t.allocation_ledger, order_by=t.allocation_ledger.c.id)
    assert [(r["order_id"], r["kind"], r["quantity"], r["source"]) for r in ledger] == [
        ("FIRST", "allocate", 1, "arrival"),
        ("FIRST", "release", -1, "cancel"),
        ("SECOND", "allocate", 1, "release"),
    ]
    assert ("notify_customer", "BackorderCancelled", "FIRST") in outbox_events(db)
    assert ("notify_customer", "BackorderAllocated", "SECOND") in outbox_events(db)


def test_shipping_takes_units_off_hand_and_out_of_allocation(shop: Application, db: Db) -> None:
    set_stock(shop, "INK", 5)
    place(shop, "S-1", ("INK", 3))
    shop.bus.handle(commands.ShipLine("S-1", 1, 2, "main"))
    line = db.line("S-1")
    assert (line["allocated"], line["shipped"], line["backordered"], line["status"]) == (3, 2, 0, "open")
    assert (db.level("INK", "main")["on_hand"], db.level("INK", "main")["allocated"]) == (3, 1)

    shop.bus.handle(commands.ShipLine("S-1", 1, 1, "main"))
    assert db.line("S-1")["status"] == "shipped"
    assert (db.level("INK", "main")["on_hand"], db.level("INK", "main")["allocated"]) == (2, 0)
    assert shop.read.sellable("INK") == 2


def test_a_negative_on_hand_is_kept_as_reported_and_nothing_is_promised_from_it(shop: Application, db: Db) -> None:
    set_stock(shop, "INK", -3)
    assert db.level("INK", "main")["on_hand"] == -3
    place(shop, "NEG", ("INK", 1))
    assert allocated(db, "NEG") == (0, 1)
    assert db.level("INK", "main")["on_hand"] == -3
    assert shop.read.sellable("INK") == 0

    receive(shop, "INK", 2)  # still below zero: nothing to hand out
    assert db.level("INK", "main")["on_hand"] == -1
    assert allocated(db, "NEG") == (0, 1)
    receive(shop, "INK", 2)
    assert allocated(db, "NEG") == (1, 0)


def test_a_stock_report_older_than_the_last_applied_one_is_ignored(
    shop: Application, db: Db, clock: SettableClock
) -> None:
    counted = clock.now()  # the shop fixture counted INK (0) just now

    def report(on_hand: int, minutes: float) -> None:
        at = counted + timedelta(minutes=minutes)
        shop.bus.handle(commands.SetStockLevel("INK", "main", on_hand, observed_at=at, source="shopify"))

    report(8, minutes=-5)  # observed before the count: stale
    assert db.level("INK", "main")["on_hand"] == 0
    report(5, minutes=10)
    assert db.level("INK", "main")["on_hand"] == 5
    report(9, minutes=5)  # arrives late, says something older
    assert db.level("INK", "main")["on_hand"] == 5
    report(7, minutes=10)  # the same instant again is not newer
    assert db.level("INK", "main")["on_hand"] == 5
    report(4, minutes=11)
    assert db.level("INK", "main")["on_hand"] == 4
    assert db.level("INK", "main")["observed_at"] == counted + timedelta(minutes=11)


# --- purchasing ------------------------------------------------------------------------------


def test_backorders_are_consolidated_into_one_draft_per_supplier_and_sending_sets_the_etas(
    shop: Application, db: Db, clock: SettableClock
) -> None:
    today = clock.today()
    place(shop, "P-1", ("INK", 2), ("OCHRE", 1))
    place(shop, "P-2", ("PAPER", 3), minutes=1)
    place(shop, "P-3", ("INK", 1), minutes=2)
    assert db.line("P-1", 1)["eta"] == today + timedelta(days=10)  # a draft counts as sent today
    assert db.line("P-1", 2)["eta"] == today + timedelta(days=21)

    drafts = db.rows(t.purchase_orders, order_by=t.purchase_orders.c.id)
    assert [(po["supplier"], po["status"]) for po in drafts] == [("ROYAL", "draft"), ("WN", "draft")]
    lines = defaultdict(dict)
    for line in db.rows(t.po_lines):
        lines[line["po_id"]][line["sku"]] = line["quantity"]
    assert lines[drafts[0]["id"]] == {"INK": 3, "PAPER": 3}
    assert lines[drafts[1]["id"]] == {"OCHRE": 1}

    clock.advance(days=2)
    shop.bus.handle(commands.SendDuePurchaseOrders(force=True))
    sent = {po["supplier"]: po for po in db.rows(t.purchase_orders)}
    assert {po["status"] for po in sent.values()} == {"sent"}
    assert sent["ROYAL"]["sent_at"] == clock.now()
    expected = {(r["po_id"], r["sku"]): r["expected_on"] for r in db.rows(t.po_lines)}
    assert expected[(sent["ROYAL"]["id"], "INK")] == today + timedelta(days=12)
    assert expected[(sent["WN"]["id"], "OCHRE")] == today + timedelta(days=23)
    assert db.line("P-1", 1)["eta"] == expected[(sent["ROYAL"]["id"], "INK")]
    assert db.line("P-1", 2)["eta"] == expected[(sent["WN"]["id"], "OCHRE")]
    assert db.line("P-2")["eta"] == expected[(sent["ROYAL"]["id"], "PAPER")]
    assert db.line("P-3")["eta"] == expected[(sent["ROYAL"]["id"], "INK")]

    shop.dispatcher.drain()
    po_mail = sorted((m["recipient"], m["subject"]) for m in sandbox_messages(shop.engine, kind="purchase_order"))
    assert po_mail == sorted(
        [
            (ROYAL_EMAIL, f"Purchase order {sent['ROYAL']['number']}"),
            (WN_EMAIL, f"Purchase order {sent['WN']['number']}"),
        ]
    )
    royal = next(m for m in sandbox_messages(shop.engine, kind="purchase_order") if m["recipient"] == ROYAL_EMAIL)
    assert "R-INK" in royal["body"] and "R-PAP" in royal["body"]

    # the PO's receipt books against it and allocates the waiting lines in rank order
    shop.bus.handle(commands.ReceiveStock("INK", "main", 3, clock.now(), sent["ROYAL"]["number"]))
    assert allocated(db, "P-1", 1) == (2, 0)
    assert allocated(db, "P-3") == (1, 0)
    (ink,) = db.rows(t.po_lines, t.po_lines.c.po_id == sent["ROYAL"]["id"], t.po_lines.c.sku == "INK")
    assert ink["received"] == 3


# --- the outbox and messages -----------------------------------------------------------------


def test_a_backorder_commits_its_outbox_rows_with_it_and_drain_delivers_them_to_the_sandbox(
    shop: Application, db: Db, clock: SettableClock
) -> None:
    place(shop, "M-1", ("OCHRE", 2))
    place(shop, "M-2", ("OCHRE", 1), email=None, phone="+15550001111", minutes=1)
    place(shop, "M-3", ("OCHRE", 1), email=None, phone="+15550002222", minutes=2)
    assert outbox_events(db, "notify_customer") == [
        ("notify_customer", "BackorderCreated", "M-1"),
        ("notify_customer", "BackorderCreated", "M-2"),
        ("notify_customer", "BackorderCreated", "M-3"),
    ]
    set_preference(shop.engine, "M-2", "sms", sms_consent=True, now=clock.now())  # M-3 never consented
    assert ("notify_staff", "BackorderCreated", "M-1") in outbox_events(db, "notify_staff")
    assert {r["status"] for r in db.rows(t.outbox)} == {"pending"}

    stats = shop.dispatcher.drain()
    assert stats.dead == 0 and stats.retried == 0
    assert {r["status"] for r in db.rows(t.outbox)} <= {"sent", "skipped"}
    emails = [(m["recipient"], m["subject"], m["template"]) for m in sandbox_messages(shop.engine, kind="email")]
    assert emails == [("m-1@customer.example", "Order M-1: 1 item on backorder", "backorder_created")]
    sms = sandbox_messages(shop.engine, kind="sms")  # only where SMS consent is recorded
    assert [(m["recipient"], m["template"]) for m in sms] == [("+15550001111", "backorder_created")]
    assert "M-2" in sms[0]["body"]
    staff = {(m["recipient"], m["subject"]) for m in sandbox_messages(shop.engine, kind="staff")}
    assert ("notify.staff", "New backorder: order M-1 (web)") in staff
    assert ("notify.staff", "New backorder: order M-2 (web)") in staff
    # every sandbox record points back at the outbox row that produced it
    outbox_ids = {r["id"] for r in db.rows(t.outbox)}
    assert all(m["outbox_id"] in outbox_ids for m in sandbox_messages(shop.engine))

    assert shop.dispatcher.drain().claimed == 0  # nothing is sent twice
    assert len(sandbox_messages(shop.engine, kind="email")) == 1


def test_a_command_whose_outbox_rows_cannot_be_written_leaves_no_order_behind(
    shop: Application, db: Db, clock: SettableClock
) -> None:
    class UnwritableRules(RuleSet):
        def actions(self, happened: Sequence[Any]) -> list[OutboxMessage]:
            return [OutboxMessage("notify_staff", "staff", {"event": "BackorderCreated", "oops": object()})]

    before = db.snapshot()
    bus = MessageBus(uow_factory(shop.engine, clock), shop.bus.context, UnwritableRules())
    with pytest.raises(Exception, match="JSON serializable"):
        bus.handle(
            commands.PlaceOrder("GHOST", "web", PLACED, (NewLine(1, "INK", 1),), customer_email="g@customer.example")
        )
    assert db.snapshot() == before


def test_a_failing_command_leaves_no_order_no_stock_change_and_no_outbox_row(shop: Application, db: Db) -> None:
    set_stock(shop, "INK", 4)
    before = db.snapshot()
    with pytest.raises(UnknownSku, match="NOPE"):
        place(shop, "BAD", ("INK", 1), ("NOPE", 1))
    assert db.snapshot() == before
    assert db.count(t.orders, t.orders.c.id == "BAD") == 0
    assert db.count(t.order_lines, t.order_lines.c.order_id == "BAD") == 0

    place(shop, "OK", ("INK", 1))
    before = db.snapshot()
    with pytest.raises(DuplicateOrder):
        place(shop, "OK", ("INK", 2))
    assert db.snapshot() == before


def test_sent_purchase_orders_are_dated_by_the_supplier_lead_time(
    shop: Application, db: Db, clock: SettableClock
) -> None:
    today = clock.today()
    shop.bus.handle(commands.UpsertSku("SLOW", "Slow varnish", supplier="ROYAL", lead_time_days=40))
    place(shop, "L-1", ("SLOW", 1), ("BRUSH", 1))
    shop.bus.handle(commands.SendDuePurchaseOrders(force=True))
    expected = {r["sku"]: r["expected_on"] for r in db.rows(t.po_lines)}
    assert expected == {"SLOW": today + timedelta(days=40), "BRUSH": today + timedelta(days=10)}
    assert db.line("L-1", 1)["eta"] == today + timedelta(days=40)
