"""WooCommerce partial refunds on SQLite and PostgreSQL, through the real ingress steps and the
inbox processor: an ``order.updated`` after a refund still shows the quantities ordered, so the
connector reads the order's refunds (``GET /orders/<id>/refunds``) before the pure parser takes the
refunded units off; the view difference then cuts them with ``ReduceLine`` exactly as for a Shopify
refund: backordered units first, then allocated ones (released to the next waiting order), never
below what shipped, once.

The refund shape is the one WooCommerce's REST reference lists (_order-refunds.md, "List all
refunds": ``line_items[].quantity`` negative, meta ``_refunded_item_id`` naming the order's line
item); the order lists its refunds as ``{id, reason, total}`` only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import select
from tests.platforms import app_calling, hmac_base64, receive_webhook

from backorder.bootstrap import Application
from backorder.domain import commands as c
from backorder.store import tables as t

if TYPE_CHECKING:
    from conftest import Db, SettableClock

SECRET = "woo-secret"
CORE = ("orders", "order_lines", "stock_levels", "line_holdings", "allocation_ledger", "outbox")


def core_state(db: Db) -> dict[str, Any]:
    """The tables an applied order changes: equal before and after means nothing was applied."""
    snapshot = db.snapshot()
    return {table: snapshot[table] for table in CORE}


def config() -> dict[str, Any]:
    woo = {"platform": "woocommerce", "webhook_secret": SECRET, "stock_location": "main", "reconcile_minutes": 5}
    return {
        "worker": {"bop_interval_minutes": 0},
        "channels": {
            "woo": {
                **woo,
                "store_url": "https://woo.example.test",
                "consumer_key": "ck",
                "consumer_secret": "cs",
                "rate_per_second": 0,
            },
            "hooks": woo,  # webhook-only: no API credentials
        },
    }


class Store:
    """WooCommerce's REST API as far as these tests call it (MockTransport handler)."""

    def __init__(self) -> None:
        self.refunds: list[dict[str, Any]] = []
        self.orders: list[dict[str, Any]] = []
        self.down = False
        self.requests: list[httpx.Request] = []

    def refund_calls(self) -> int:
        return sum(1 for r in self.requests if r.url.path.endswith("/refunds"))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.down:
            return httpx.Response(503, text="maintenance")
        path = request.url.path.removeprefix("/wp-json/wc/v3")
        first = request.url.params.get("page") == "1"
        if path == "/orders/727/refunds":
            return httpx.Response(200, json=self.refunds if first else [])
        if path == "/orders":
            return httpx.Response(200, json=self.orders if first else [])
        return httpx.Response(404, json={"code": "rest_no_route"})


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def app(database_url: str, clock: SettableClock, store: Store) -> Iterator[Application]:
    application = app_calling(config(), store, database_url, clock, seed=5)
    application.bus.handle(c.UpsertSku("INK", "Ink"))
    application.bus.handle(c.UpsertSku("PEN", "Pen"))
    application.bus.handle(c.AdjustStock("INK", "main", 2))
    application.bus.handle(c.AdjustStock("PEN", "main", 5))
    try:
        yield application
    finally:
        application.close()


def deliver(app: Application, topic: str, delivery: str, data: dict[str, Any], channel: str = "woo") -> tuple[int, str]:
    """What the ingress does (verify, identify, inbox commit), then the worker's processor;
    returns the row id and its status and note."""
    body = json.dumps(data).encode()
    headers = {
        "x-wc-webhook-topic": topic,
        "x-wc-webhook-id": "12",
        "x-wc-webhook-delivery-id": delivery,
        "x-wc-webhook-signature": hmac_base64(SECRET, body),
    }
    row_id, outcome = receive_webhook(app, "woocommerce", channel, headers, body)
    return row_id, f"{outcome.status}: {outcome.detail}"


def order(
    modified: str, status: str = "processing", refunds: tuple[dict[str, Any], ...] = (), ink: int = 3
) -> dict[str, Any]:
    """Order 727 as WooCommerce sends it: line items keep the quantity ordered; refunds are listed
    as ``{id, reason, total}``."""
    return {
        "id": 727,
        "status": status,
        "date_created_gmt": "2026-03-02T08:00:00",
        "date_modified_gmt": modified,
        "billing": {"first_name": "Bea", "last_name": "Potter", "email": "bea@example.com"},
        "line_items": [
            {"id": 315, "name": "Ink", "product_id": 95, "variation_id": 0, "quantity": ink, "sku": "INK"},
            {"id": 316, "name": "Pen", "product_id": 96, "variation_id": 0, "quantity": 1, "sku": "PEN"},
        ],
        "refunds": [{"id": r["id"], "reason": r["reason"], "total": "-" + r["amount"]} for r in refunds],
    }


def refund(refund_id: int, item: int, units: int, product: int = 95) -> dict[str, Any]:
    """A refund as ``GET /orders/727/refunds`` returns it (_order-refunds.md response example)."""
    return {
        "id": refund_id,
        "date_created": "2026-03-02T09:00:00",
        "date_created_gmt": "2026-03-02T09:00:00",
        "amount": f"{9 * units}.00",
        "reason": "",
        "refunded_by": 1,
        "refunded_payment": False,
        "meta_data": [],
        "line_items": [
            {
                "id": refund_id + 1000,
                "name": "Ink" if product == 95 else "Pen",
                "product_id": product,
                "variation_id": 0,
                "quantity": -units,
                "tax_class": "",
                "subtotal": f"-{9 * units}.00",
                "subtotal_tax": "0.00",
                "total": f"-{9 * units}.00",
                "total_tax": "0.00",
                "taxes": [],
                "meta_data": [{"id": refund_id + 2000, "key": "_refunded_item_id", "value": str(item)}],
                "sku": "",
                "price": -9,
            }
        ],
    }


def lines(app: Application) -> list[tuple[str, int, int, int, int, str]]:
    return [
        (ln["sku"], ln["quantity"], ln["allocated"], ln["backordered"], ln["shipped"], ln["status"])
        for ln in app.read.lines("woo-727")
    ]


def cancellations(db: Db) -> list[tuple[str, list[Any]]]:
    rows = db.rows(t.outbox, t.outbox.c.action == "notify_customer", order_by=t.outbox.c.id)
    return [
        (r["payload"]["reason"], r["payload"]["lines"]) for r in rows if r["payload"]["event"] == "BackorderCancelled"
    ]


def shipments(app: Application) -> list[tuple[str | None, int]]:
    a = t.allocation_ledger.c
    with app.engine.connect() as conn:
        rows = conn.execute(
            select(a.source_ref, a.quantity).where(a.order_id == "woo-727", a.source == "shipment").order_by(a.id)
        ).all()
    return [(r.source_ref, r.quantity) for r in rows]


def placed(app: Application) -> None:
    _, note = deliver(app, "order.created", "d-1", order("2026-03-02T08:00:00"))
    assert note.startswith("processed"), note
    # 2 INK in stock for 3 ordered: 2 allocated, 1 waits
    assert lines(app) == [("INK", 3, 2, 1, 0, "open"), ("PEN", 1, 1, 0, 0, "open")]


def test_a_partial_woocommerce_refund_cuts_the_refunded_units_once(
    app: Application, clock: SettableClock, store: Store, db: Db
) -> None:
    placed(app)
    store.refunds = [refund(801, 315, 2)]
    clock.advance(hours=1)
    _, note = deliver(app, "order.updated", "d-2", order("2026-03-02T09:00:00", refunds=(store.refunds[0],)))
    assert note.startswith("processed"), note
    # 2 of 3 refunded: the waiting unit goes first, then one allocated unit is released
    assert lines(app) == [("INK", 1, 1, 0, 0, "open"), ("PEN", 1, 1, 0, 0, "open")]
    assert db.level("INK", "main")["allocated"] == 1
    assert cancellations(db) == [("changed on woocommerce", [{"line_no": 1, "sku": "INK", "quantity": 2}])]
    assert store.refund_calls() == 1
    before = core_state(db)

    # the same webhook again under a new delivery id: not newer, ignored before any call
    _, note = deliver(app, "order.updated", "d-3", order("2026-03-02T09:00:00", refunds=(store.refunds[0],)))
    assert note.startswith("ignored") and "is not newer" in note, note
    # a later update (a note added) listing the same refund: read again, the same view
    clock.advance(hours=1)
    later = order("2026-03-02T10:00:00", refunds=(store.refunds[0],))
    _, note = deliver(app, "order.updated", "d-4", later)
    assert note.startswith("ignored") and "already recorded as the channel shows it" in note, note
    # reconciliation pulls that version too: not newer
    store.orders = [later]
    assert app.channel_services.reconciler.reconcile("woo", clock.now())["new"] == 1
    assert app.channel_services.processor.drain() == 1
    assert store.refund_calls() == 2
    assert core_state(db) == before


def test_an_older_update_arriving_after_a_newer_one_changes_nothing(
    app: Application, clock: SettableClock, store: Store, db: Db
) -> None:
    placed(app)
    first, second = refund(801, 315, 1), refund(802, 315, 1)
    store.refunds = [second, first]  # the API lists the newest first
    clock.advance(hours=1)
    _, note = deliver(app, "order.updated", "d-3", order("2026-03-02T10:00:00", refunds=(second, first)))
    assert note.startswith("processed"), note
    assert lines(app)[0] == ("INK", 1, 1, 0, 0, "open")
    before = core_state(db)
    _, note = deliver(app, "order.updated", "d-2", order("2026-03-02T09:00:00", refunds=(first,)))
    assert note.startswith("ignored") and "is not newer" in note, note
    assert core_state(db) == before


def test_a_line_refunded_in_full_is_cancelled_and_its_stock_released(
    app: Application, clock: SettableClock, store: Store, db: Db
) -> None:
    placed(app)
    store.refunds = [refund(803, 316, 1, product=96)]
    clock.advance(hours=1)
    _, note = deliver(app, "order.updated", "d-2", order("2026-03-02T09:00:00", refunds=(store.refunds[0],)))
    assert note.startswith("processed"), note
    assert lines(app) == [("INK", 3, 2, 1, 0, "open"), ("PEN", 1, 0, 0, 0, "cancelled")]
    assert db.level("PEN", "main")["allocated"] == 0
    assert cancellations(db) == [("changed on woocommerce", [{"line_no": 2, "sku": "PEN", "quantity": 1}])]


def test_a_refund_of_money_only_changes_no_line(app: Application, clock: SettableClock, store: Store, db: Db) -> None:
    placed(app)
    goodwill = {**refund(804, 315, 1), "line_items": []}
    store.refunds = [goodwill]
    before = core_state(db)
    clock.advance(hours=1)
    _, note = deliver(app, "order.updated", "d-2", order("2026-03-02T09:00:00", refunds=(goodwill,)))
    assert note.startswith("ignored") and "already recorded as the channel shows it" in note, note
    assert core_state(db) == before


def test_a_refund_after_the_order_shipped_changes_no_line_and_no_stock(
    app: Application, clock: SettableClock, store: Store, db: Db
) -> None:
    _, note = deliver(app, "order.created", "d-1", order("2026-03-02T08:00:00", ink=2))
    assert note.startswith("processed"), note
    clock.advance(hours=1)
    _, note = deliver(app, "order.updated", "d-2", order("2026-03-02T09:00:00", "completed", ink=2))
    assert note.startswith("processed"), note
    assert lines(app) == [("INK", 2, 2, 0, 2, "shipped"), ("PEN", 1, 1, 0, 1, "shipped")]
    before = core_state(db)
    # a return: one INK refunded after it shipped
    store.refunds = [refund(805, 315, 1)]
    clock.advance(hours=1)
    _, note = deliver(
        app, "order.updated", "d-3", order("2026-03-02T10:00:00", "completed", (store.refunds[0],), ink=2)
    )
    # the completion is not shipped again, and ReduceLine never goes below what shipped
    assert note.startswith("ignored"), note
    assert "shipment woocommerce:completed:727:315 of order woo-727 is already recorded" in note
    assert core_state(db) == before
    assert db.level("INK", "main")["on_hand"] == 0


def test_units_refunded_before_the_completion_are_not_shipped(
    app: Application, clock: SettableClock, store: Store, db: Db
) -> None:
    placed(app)
    store.refunds = [refund(806, 315, 1)]
    clock.advance(hours=1)
    _, note = deliver(app, "order.updated", "d-2", order("2026-03-02T09:00:00", refunds=(store.refunds[0],)))
    assert note.startswith("processed"), note
    assert lines(app)[0] == ("INK", 2, 2, 0, 0, "open")
    clock.advance(hours=1)
    _, note = deliver(app, "order.updated", "d-3", order("2026-03-02T10:00:00", "completed", (store.refunds[0],)))
    assert note.startswith("processed"), note
    assert lines(app) == [("INK", 2, 2, 0, 2, "shipped"), ("PEN", 1, 1, 0, 1, "shipped")]
    assert shipments(app) == [("woocommerce:completed:727:315", 2), ("woocommerce:completed:727:316", 1)]
    assert db.level("INK", "main")["on_hand"] == 0


def test_refunds_woocommerce_cannot_answer_fail_the_row_and_a_reprocess_applies_them(
    app: Application, clock: SettableClock, store: Store, db: Db
) -> None:
    placed(app)
    store.refunds = [refund(801, 315, 2)]
    store.down = True
    before = core_state(db)
    clock.advance(hours=1)
    row_id, note = deliver(app, "order.updated", "d-2", order("2026-03-02T09:00:00", refunds=(store.refunds[0],)))
    assert note.startswith("failed: MalformedPayload: the refunds of order 727 could not be read"), note
    assert "ProviderUnavailable" in note
    assert core_state(db) == before
    store.down = False
    services = app.channel_services
    assert services.inbox.reprocess(row_id)
    outcome = services.processor.process_id(row_id)
    assert outcome is not None and outcome.status == "processed", outcome
    assert lines(app)[0] == ("INK", 1, 1, 0, 0, "open")


def test_a_full_refund_still_cancels_the_open_lines_without_reading_refunds(
    app: Application, clock: SettableClock, store: Store, db: Db
) -> None:
    placed(app)
    store.refunds = [refund(807, 315, 3), refund(808, 316, 1, product=96)]
    clock.advance(hours=1)
    _, note = deliver(app, "order.updated", "d-2", order("2026-03-02T09:00:00", "refunded", tuple(store.refunds)))
    assert note.startswith("processed"), note
    assert [ln[-1] for ln in lines(app)] == ["cancelled", "cancelled"]
    assert store.refund_calls() == 0
    assert (db.level("INK", "main")["allocated"], db.level("PEN", "main")["allocated"]) == (0, 0)


def test_every_unit_refunded_while_the_order_stays_open_cancels_it(
    app: Application, clock: SettableClock, store: Store
) -> None:
    placed(app)  # e.g. the shipping charge was not refunded, so WooCommerce keeps it "processing"
    store.refunds = [refund(809, 315, 3), refund(810, 316, 1, product=96)]
    clock.advance(hours=1)
    _, note = deliver(app, "order.updated", "d-2", order("2026-03-02T09:00:00", refunds=tuple(store.refunds)))
    assert note.startswith("processed"), note
    assert [ln[-1] for ln in lines(app)] == ["cancelled", "cancelled"]


def test_a_webhook_only_channel_cannot_read_refunds_and_says_so(app: Application, clock: SettableClock) -> None:
    _, note = deliver(app, "order.created", "h-1", order("2026-03-02T08:00:00"), channel="hooks")
    assert note.startswith("processed"), note
    clock.advance(hours=1)
    _, note = deliver(
        app, "order.updated", "h-2", order("2026-03-02T09:00:00", refunds=(refund(801, 315, 2),)), channel="hooks"
    )
    assert note.startswith("failed: MalformedPayload: the refunds of order 727 could not be read"), note
    assert "consumer_key" in note
    assert [ln["quantity"] for ln in app.read.lines("hooks-727")] == [3, 1]


def test_after_a_failed_read_the_next_reconciliation_pull_applies_the_refund(
    app: Application, clock: SettableClock, store: Store
) -> None:
    placed(app)
    store.refunds = [refund(801, 315, 2)]
    updated = order("2026-03-02T09:00:00", refunds=(store.refunds[0],))
    store.down = True
    clock.advance(hours=1)
    _, note = deliver(app, "order.updated", "d-2", updated)
    assert note.startswith("failed"), note
    store.down = False
    store.orders = [updated]
    services = app.channel_services
    assert services.reconciler.reconcile("woo", clock.now())["new"] == 1
    assert services.processor.drain() == 1
    assert lines(app)[0] == ("INK", 1, 1, 0, 0, "open")
