"""Issue 3 follow-ups on SQLite and PostgreSQL: a WooCommerce order that becomes ``completed`` ships
once; a Shopify partial refund (``orders/updated`` with ``refunds``) cuts the refunded units once;
what `backorder connect` registered is recorded and shown; reconciliation pulls stock levels of
stock-source channels through the inbox, and an older level never overwrites a newer one."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import select
from tests.platforms import app_calling, hmac_base64, receive_webhook

from backorder.bootstrap import Application
from backorder.connectors.errors import ConnectorError
from backorder.domain import commands as c
from backorder.store import tables as t

if TYPE_CHECKING:
    from conftest import Db, SettableClock

SHOP_SECRET = "shop-secret"
WOO_SECRET = "woo-secret"


def config() -> dict[str, Any]:
    return {
        "worker": {"bop_interval_minutes": 0},
        "server": {"public_url": "https://backorder.example.test"},
        "channels": {
            "shop": {
                "platform": "shopify",
                "shop_domain": "shop.example.test",
                "access_token": "shpat_x",
                "webhook_secret": SHOP_SECRET,
                "location_map": {"11": "main"},
                "stock_source": True,
                "reconcile_minutes": 5,
                "rate_per_second": 0,
            },
            "woo": {
                "platform": "woocommerce",
                "store_url": "https://woo.example.test",
                "consumer_key": "ck",
                "consumer_secret": "cs",
                "webhook_secret": WOO_SECRET,
                "stock_source": True,
                "stock_location": "main",
                "reconcile_minutes": 5,
                "rate_per_second": 0,
            },
            "popup": {"platform": "shopify", "webhook_secret": SHOP_SECRET},
            "mage": {
                "platform": "magento",
                "base_url": "https://mage.example.test",
                "access_token": "mg-token",
                "webhook_secret": "whsec_" + base64.b64encode(b"magento-secret").decode(),
                "reconcile_minutes": 5,
            },
            "pos": {"platform": "pos", "api_key": "pos-key"},
        },
    }


class Platforms:
    """MockTransport answers for the Shopify Admin GraphQL and WooCommerce REST calls here."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.woo_webhook_status = 201
        self.levels: list[dict[str, Any]] = []
        self.products: list[dict[str, Any]] = []
        self.variations: dict[int, list[dict[str, Any]]] = {}
        self.magento_orders: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if request.url.host == "shop.example.test":
            payload = json.loads(request.content)
            query, variables = payload["query"], payload.get("variables") or {}
            if "mutation Subscribe" in query:
                topic = variables["topic"]
                errors = (
                    [
                        {
                            "field": ["webhookSubscription", "callbackUrl"],
                            "message": "Address for this topic has already been taken",
                        }
                    ]
                    if topic == "ORDERS_CREATE"
                    else []
                )
                sub = None if errors else {"id": f"gid://shopify/WebhookSubscription/{len(self.requests)}"}
                return httpx.Response(
                    200,
                    json={"data": {"webhookSubscriptionCreate": {"webhookSubscription": sub, "userErrors": errors}}},
                )
            if "query LocationLevels" in query:
                return httpx.Response(
                    200,
                    json={
                        "data": {
                            "location": {
                                "id": variables["id"],
                                "inventoryLevels": {
                                    "pageInfo": {"hasNextPage": False, "endCursor": None},
                                    "nodes": self.levels,
                                },
                            }
                        }
                    },
                )
        if request.url.host == "woo.example.test":
            path = request.url.path.removeprefix("/wp-json/wc/v3")
            if path == "/webhooks" and request.method == "GET":  # none of ours there yet
                if self.woo_webhook_status >= 400:
                    return httpx.Response(self.woo_webhook_status, json={"code": "woocommerce_rest_cannot_view"})
                return httpx.Response(200, json=[])
            if path == "/webhooks":
                if self.woo_webhook_status >= 400:
                    return httpx.Response(self.woo_webhook_status, json={"code": "woocommerce_rest_cannot_create"})
                return httpx.Response(201, json={"id": 140 + len(self.requests), **json.loads(request.content)})
            if path == "/products":
                return httpx.Response(200, json=self.products if request.url.params.get("page") == "1" else [])
            if path.endswith("/variations"):
                parent = int(path.split("/")[2])
                return httpx.Response(
                    200, json=self.variations.get(parent, []) if request.url.params.get("page") == "1" else []
                )
        if request.url.host == "mage.example.test" and request.url.path == "/rest/default/V1/orders":
            return httpx.Response(
                200, json={"items": self.magento_orders, "search_criteria": {}, "total_count": len(self.magento_orders)}
            )
        return httpx.Response(404, json={"errors": "not answered here"})


@pytest.fixture
def platforms() -> Platforms:
    return Platforms()


@pytest.fixture
def app(database_url: str, clock: SettableClock, platforms: Platforms) -> Iterator[Application]:
    application = app_calling(config(), platforms, database_url, clock, seed=5)
    application.bus.handle(c.UpsertSku("INK", "Ink"))
    application.bus.handle(c.UpsertSku("PEN", "Pen"))
    application.bus.handle(c.AdjustStock("INK", "main", 2))
    try:
        yield application
    finally:
        application.close()


def deliver(app: Application, platform: str, channel: str, headers: dict[str, str], data: dict[str, Any]) -> str:
    """What the ingress does (verify, identify, inbox commit), then the worker's processor;
    returns the row's status and note."""
    body = json.dumps(data).encode()
    secret = SHOP_SECRET if platform == "shopify" else WOO_SECRET
    signature = "x-shopify-hmac-sha256" if platform == "shopify" else "x-wc-webhook-signature"
    lowered = {**{k.lower(): v for k, v in headers.items()}, signature: hmac_base64(secret, body)}
    _, outcome = receive_webhook(app, platform, channel, lowered, body)
    return f"{outcome.status}: {outcome.detail}"


def woo_order(status: str, modified: str, quantity: int = 2) -> dict[str, Any]:
    return {
        "id": 727,
        "status": status,
        "date_created_gmt": "2026-03-02T08:00:00",
        "date_modified_gmt": modified,
        "billing": {"first_name": "Bea", "last_name": "Potter", "email": "bea@example.com"},
        "line_items": [{"id": 315, "product_id": 95, "variation_id": 0, "sku": "INK", "quantity": quantity}],
    }


def woo_headers(topic: str, delivery: str) -> dict[str, str]:
    return {"X-WC-Webhook-Topic": topic, "X-WC-Webhook-ID": "12", "X-WC-Webhook-Delivery-ID": delivery}


def shipments(app: Application, order_id: str) -> list[tuple[str | None, int]]:
    a = t.allocation_ledger.c
    with app.engine.connect() as conn:
        rows = conn.execute(
            select(a.source_ref, a.quantity).where(a.order_id == order_id, a.source == "shipment").order_by(a.id)
        ).all()
    return [(r.source_ref, r.quantity) for r in rows]


# --- WooCommerce: completed ships once ---------------------------------------------------------


def test_a_woocommerce_order_becoming_completed_ships_its_lines_once(
    app: Application, clock: SettableClock, db: Db
) -> None:
    assert deliver(
        app, "woocommerce", "woo", woo_headers("order.created", "d-1"), woo_order("processing", "2026-03-02T08:00:00")
    ).startswith("processed")
    assert [(ln["allocated"], ln["shipped"]) for ln in app.read.lines("woo-727")] == [(2, 0)]
    clock.advance(hours=2)
    note = deliver(
        app, "woocommerce", "woo", woo_headers("order.updated", "d-2"), woo_order("completed", "2026-03-02T10:00:00")
    )
    assert note.startswith("processed"), note
    line = app.read.lines("woo-727")[0]
    assert (line["shipped"], line["status"]) == (2, "shipped")
    assert shipments(app, "woo-727") == [("woocommerce:completed:727:315", 2)]
    # a later update of the completed order (a note added: newer date) ships nothing more
    note = deliver(
        app, "woocommerce", "woo", woo_headers("order.updated", "d-3"), woo_order("completed", "2026-03-02T11:00:00")
    )
    assert note.startswith("ignored") and "already recorded" in note, note
    assert shipments(app, "woo-727") == [("woocommerce:completed:727:315", 2)]
    assert db.level("INK", "main")["on_hand"] == 0


def test_a_completed_woocommerce_order_staff_already_shipped_is_ignored_and_changes_nothing(
    app: Application, clock: SettableClock, db: Db
) -> None:
    deliver(
        app, "woocommerce", "woo", woo_headers("order.created", "d-1"), woo_order("processing", "2026-03-02T08:00:00")
    )
    app.bus.handle(c.ShipLine("woo-727", 1, 2, "main"))  # staff shipped it from the dashboard
    before = db.snapshot()
    clock.advance(hours=1)
    note = deliver(
        app, "woocommerce", "woo", woo_headers("order.updated", "d-2"), woo_order("completed", "2026-03-02T10:00:00")
    )
    assert note.startswith("ignored") and "nothing of INK left to ship" in note, note
    after = db.snapshot()
    core = ("orders", "order_lines", "stock_levels", "line_holdings", "allocation_ledger", "outbox")
    assert {k: after[k] for k in core} == {k: before[k] for k in core}


def test_a_completed_woocommerce_order_we_never_saw_is_placed_and_shipped(app: Application) -> None:
    note = deliver(
        app, "woocommerce", "woo", woo_headers("order.updated", "d-9"), woo_order("completed", "2026-03-02T09:00:00")
    )
    assert note.startswith("processed"), note
    assert [(ln["quantity"], ln["shipped"]) for ln in app.read.lines("woo-727")] == [(2, 2)]


# --- Shopify: partial refunds cut the refunded units once ---------------------------------------


def shopify_order(updated: str, current: int | None, refunds: list[dict[str, Any]]) -> dict[str, Any]:
    item: dict[str, Any] = {"id": 466157049, "sku": "INK", "quantity": 3}
    if current is not None:
        item["current_quantity"] = current
    return {
        "id": 450789469,
        "created_at": "2026-03-02T08:00:00Z",
        "updated_at": updated,
        "email": "bob@example.com",
        "line_items": [item],
        "refunds": refunds,
    }


REFUND = {  # the shape of shopify-api-ruby test/fixtures/refund.json (Shopify's REST Refund resource)
    "id": 509562969,
    "order_id": 450789469,
    "created_at": "2026-03-02T09:00:00Z",
    "restock": True,
    "refund_line_items": [
        {"id": 709875399, "quantity": 2, "line_item_id": 466157049, "line_item": {"id": 466157049, "sku": "INK"}}
    ],
}


def shop_headers(topic: str, event: str) -> dict[str, str]:
    return {"X-Shopify-Topic": topic, "X-Shopify-Event-Id": event}


@pytest.mark.parametrize("with_current_quantity", [True, False], ids=["current_quantity", "refunds_only"])
def test_a_shopify_partial_refund_cuts_the_refunded_units_once(app: Application, with_current_quantity: bool) -> None:
    assert deliver(
        app, "shopify", "shop", shop_headers("orders/create", "e-1"), shopify_order("2026-03-02T08:00:00Z", 3, [])
    ).startswith("processed")
    assert [(ln["quantity"], ln["allocated"], ln["backordered"]) for ln in app.read.lines("shop-450789469")] == [
        (3, 2, 1)
    ]
    refunded = shopify_order("2026-03-02T09:00:00Z", 1 if with_current_quantity else None, [REFUND])
    note = deliver(app, "shopify", "shop", shop_headers("orders/updated", "e-2"), refunded)
    assert note.startswith("processed"), note
    # 2 of 3 refunded: the backordered unit goes first, then one allocated unit is released
    assert [(ln["quantity"], ln["allocated"], ln["backordered"]) for ln in app.read.lines("shop-450789469")] == [
        (1, 1, 0)
    ]
    # the same refund again, in a later update (a new event) and in refunds/create: nothing more
    later = shopify_order("2026-03-02T10:00:00Z", 1 if with_current_quantity else None, [REFUND])
    assert deliver(app, "shopify", "shop", shop_headers("orders/updated", "e-3"), later).startswith("ignored")
    assert deliver(app, "shopify", "shop", shop_headers("refunds/create", "e-4"), REFUND).startswith("ignored")
    assert [ln["quantity"] for ln in app.read.lines("shop-450789469")] == [1]


# --- webhook registrations ----------------------------------------------------------------------


def test_connect_records_what_each_platform_registered_and_the_dashboard_reads_it(
    app: Application, clock: SettableClock
) -> None:
    services = app.channel_services
    assert app.webhook_registrations("channels.shop") == "not registered by `backorder connect shopify shop` yet"
    assert app.webhook_registrations("channels.pos").startswith("none needed")
    assert app.webhook_registrations("email") is None

    done: list[dict[str, Any]] = []
    app.routes.channels["shop"].register_webhooks("https://backorder.example.test", into=done)  # type: ignore[attr-defined]
    rows = services.record_registrations("shop", "shopify", done, clock.now())
    assert [r.topic for r in rows] == [
        "orders/create",
        "orders/updated",
        "orders/cancelled",
        "fulfillments/create",
        "inventory_levels/update",
    ]
    assert all(r.ok and r.address == "https://backorder.example.test/webhooks/shopify/shop" for r in rows)
    assert rows[0].provider_ref is None  # "already taken": it existed before
    assert rows[1].provider_ref and rows[1].provider_ref.startswith("gid://shopify/WebhookSubscription/")
    shown = app.webhook_registrations("channels.shop")
    assert shown.startswith("5 of 5 topic(s) registered to https://backorder.example.test/webhooks/shopify/shop")

    # connecting again replaces the rows, one per topic
    clock.advance(minutes=5)
    again: list[dict[str, Any]] = []
    app.routes.channels["shop"].register_webhooks("https://backorder.example.test", into=again)  # type: ignore[attr-defined]
    services.record_registrations("shop", "shopify", again, clock.now())
    stored = services.registrations.for_channel("shop")
    assert len(stored) == 5 and {r.registered_at for r in stored} == {clock.now()}


def test_a_refused_registration_is_recorded_with_the_platforms_reason(
    app: Application, clock: SettableClock, platforms: Platforms
) -> None:
    platforms.woo_webhook_status = 401
    done: list[dict[str, Any]] = []
    with pytest.raises(ConnectorError) as caught:
        app.routes.channels["woo"].register_webhooks("https://backorder.example.test", into=done)  # type: ignore[attr-defined]
    rows = app.channel_services.record_registrations("woo", "woocommerce", done, clock.now(), caught.value.detail)
    assert [r.topic for r in rows] == ["order.created", "order.updated", "order.deleted", "product.updated"]
    assert all(not r.ok and "401" in (r.error or "") for r in rows)
    shown = app.webhook_registrations("channels.woo")
    assert shown.startswith("0 of 4 topic(s) registered") and "refused: order.created:" in shown


# --- reconciliation of stock levels --------------------------------------------------------------


def level(item: str, available: int, updated: str) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/InventoryLevel/{item}?inventory_item_id={item}",
        "updatedAt": updated,
        "item": {"id": f"gid://shopify/InventoryItem/{item}", "sku": "INK"},
        "quantities": [{"name": "available", "quantity": available}],
    }


def test_reconciliation_pulls_shopify_stock_levels_and_an_older_one_changes_nothing(
    app: Application, clock: SettableClock, platforms: Platforms, db: Db
) -> None:
    services = app.channel_services
    platforms.levels = [level("901", 7, "2026-03-02T08:30:00Z")]
    result = services.reconciler.reconcile_stock("shop", clock.now())
    assert result == {"pulled": 1, "new": 1}
    assert services.processor.drain() == 1
    assert db.level("INK", "main")["on_hand"] == 7
    assert services.store.sku_for_item("shop", "901") == "INK"  # the pull also maps the item
    # the same level again: no new inbox row
    assert services.reconciler.reconcile_stock("shop", clock.now()) == {"pulled": 1, "new": 0}
    # a newer report (webhook) then an older pulled level: the newer stands
    app.bus.handle(c.SetStockLevel("INK", "main", 4, observed_at=clock.now() + timedelta(hours=1), source="shopify"))
    platforms.levels = [level("901", 9, "2026-03-02T09:30:00Z")]
    services.reconciler.reconcile_stock("shop", clock.now())
    services.processor.drain()
    assert db.level("INK", "main")["on_hand"] == 4


def test_reconciliation_pulls_woocommerce_stock_quantities_of_products_and_variations(
    app: Application, clock: SettableClock, platforms: Platforms, db: Db
) -> None:
    services = app.channel_services
    platforms.products = [
        {
            "id": 95,
            "sku": "INK",
            "type": "simple",
            "manage_stock": True,
            "stock_quantity": 5,
            "parent_id": 0,
            "date_modified_gmt": "2026-03-02T08:10:00",
        },
        {
            "id": 22,
            "sku": "",
            "type": "variable",
            "manage_stock": False,
            "stock_quantity": None,
            "parent_id": 0,
            "date_modified_gmt": "2026-03-02T08:10:00",
        },
    ]
    platforms.variations = {
        22: [
            {
                "id": 23,
                "sku": "PEN",
                "manage_stock": True,
                "stock_quantity": 4,
                "parent_id": 22,
                "date_modified_gmt": "2026-03-02T08:20:00",
            }
        ]
    }
    assert services.reconciler.reconcile_stock("woo", clock.now()) == {"pulled": 2, "new": 2}
    services.processor.drain()
    assert db.level("INK", "main")["on_hand"] == 5
    assert db.level("PEN", "main")["on_hand"] == 4


def test_channels_that_are_not_a_stock_source_are_not_pulled(app: Application, clock: SettableClock) -> None:
    due = app.channel_services.reconciler.stock_due(clock.now())
    assert due == ["shop", "woo"]  # the stock-source channels with credentials; not popup (webhook-only)


def magento_order(state: str, updated: str) -> dict[str, Any]:
    return {
        "entity_id": 42,
        "increment_id": "000000042",
        "state": state,
        "created_at": "2026-03-02 08:00:00",
        "updated_at": updated,
        "customer_email": "ada@example.com",
        "customer_firstname": "Ada",
        "customer_lastname": "Lovelace",
        "billing_address": {"telephone": "+441632960001"},
        "items": [{"item_id": 77, "sku": "INK", "qty_ordered": 3.0, "parent_item_id": None}],
    }


def test_reconciliation_catches_a_magento_order_the_module_never_sent(
    app: Application, clock: SettableClock, platforms: Platforms
) -> None:
    services = app.channel_services
    assert "mage" in services.reconciler.due(clock.now())
    platforms.magento_orders = [magento_order("processing", "2026-03-02 08:30:00")]
    result = services.reconciler.reconcile_channel("mage", clock.now())
    assert (result["pulled"], result["new"]) == (1, 1)
    services.processor.drain()
    assert [(ln["sku"], ln["allocated"], ln["backordered"]) for ln in app.read.lines("mage-000000042")] == [
        ("INK", 2, 1)
    ]
    # pulled again (the watermark overlaps): nothing new; then it is cancelled in Magento
    assert services.reconciler.reconcile_channel("mage", clock.now())["new"] == 0
    platforms.magento_orders = [magento_order("canceled", "2026-03-02 09:00:00")]
    services.reconciler.reconcile_channel("mage", clock.now())
    services.processor.drain()
    assert {ln["status"] for ln in app.read.lines("mage-000000042")} == {"cancelled"}
    rows = [r for r in services.inbox.list(None, "mage", 10)]
    assert sorted(r["topic"] for r in rows) == ["order.cancelled", "order.placed"]
    assert all(r["status"] == "processed" for r in rows)


def test_the_dashboard_connectors_page_shows_the_registrations(app: Application, clock: SettableClock) -> None:
    from tests.integration.test_dashboard_support import add_user, client, sign_in

    done: list[dict[str, Any]] = []
    app.routes.channels["shop"].register_webhooks("https://backorder.example.test", into=done)  # type: ignore[attr-defined]
    app.channel_services.record_registrations("shop", "shopify", done, clock.now())
    add_user(app, "olga", "viewer")
    with client(app, base_url="https://testserver") as http:
        sign_in(http, "olga")
        page = http.get("/dashboard/connectors").text
    assert "5 of 5 topic(s) registered to https://backorder.example.test/webhooks/shopify/shop" in page
    assert "not registered by `backorder connect shopify popup` yet" in page
    assert "none needed: orders come through POST /api/v1/orders" in page
