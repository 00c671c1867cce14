"""Channel ingress on SQLite and PostgreSQL: every accepted webhook is in the inbox before its 200;
duplicates, reordering and bad signatures are harmless; oversized bodies are refused unread;
malformed payloads stay in the inbox as failed and can be processed again; stock pushes coalesce;
reconciliation catches a dropped webhook; redaction removes personal data."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import warnings
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import select
from tests.platforms import app_calling

from backorder.bootstrap import Application
from backorder.connectors.signatures import sign_standard_webhook
from backorder.domain import commands as c
from backorder.store import tables as t
from backorder.store.sandbox import sandbox_messages
from backorder.web.app import create_app

with warnings.catch_warnings():  # Starlette prefers httpx2 for its test client; httpx works the same here
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from conftest import SettableClock

SHOP_SECRET = "shop-secret"
WOO_SECRET = "woo-secret"
POS_SECRET = "whsec_" + base64.b64encode(b"pos-terminal-secret").decode()


def config(**server: Any) -> dict[str, Any]:
    return {
        "server": {"max_body_bytes": 4096, **server},
        "worker": {"bop_interval_minutes": 0},
        "channels": {
            "web": {
                "platform": "shopify",
                "webhook_secret": SHOP_SECRET,
                "location_map": {"11": "main"},
                "stock_source": True,
                "push_window_seconds": 30,
            },
            "shop": {
                "platform": "shopify",
                "shop_domain": "shop.example.test",
                "access_token": "shpat_x",
                "webhook_secret": SHOP_SECRET,
                "location_map": {"11": "main"},
                "push_window_seconds": 30,
                "batch_size": 2,
                "rate_per_second": 0,
            },
            "woo": {
                "platform": "woocommerce",
                "store_url": "https://woo.example.test",
                "consumer_key": "ck",
                "consumer_secret": "cs",
                "webhook_secret": WOO_SECRET,
                "push_window_seconds": 30,
            },
            "pos": {"platform": "pos", "webhook_secret": POS_SECRET, "api_key": "pos-key-1"},
        },
    }


class FakePlatforms:
    """httpx MockTransport answers for the Shopify and WooCommerce APIs; records every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.orders: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if request.url.host == "shop.example.test":
            query = json.loads(request.content)["query"]
            if "ItemsBySku" in query:
                nodes = [
                    {
                        "id": "gid://shopify/ProductVariant/1",
                        "sku": s,
                        "inventoryItem": {"id": f"gid://shopify/InventoryItem/{i}"},
                    }
                    for i, s in enumerate(["INK", "PEN", "PAD"], 1)
                ]
                return httpx.Response(200, json={"data": {"productVariants": {"nodes": nodes}}})
            if "CurrentLevels" in query:
                return httpx.Response(200, json={"data": {"nodes": []}})
            if "SetAvailable" in query:
                return httpx.Response(
                    200,
                    json={
                        "data": {"inventorySetQuantities": {"inventoryAdjustmentGroup": {"id": "g"}, "userErrors": []}}
                    },
                )
            if "RecentOrders" in query:
                return httpx.Response(
                    200,
                    json={
                        "data": {
                            "orders": {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": self.orders}
                        }
                    },
                )
        if request.url.host == "woo.example.test":
            if request.method == "GET":
                return httpx.Response(200, json=[])
            return httpx.Response(200, json={"update": []})
        return httpx.Response(404)

    def pushes(self) -> list[dict[str, Any]]:
        found = []
        for r in self.requests:
            if r.url.host == "shop.example.test" and "SetAvailable" in json.loads(r.content)["query"]:
                found.append(json.loads(r.content)["variables"]["input"])
        return found


@pytest.fixture
def platforms() -> FakePlatforms:
    return FakePlatforms()


@pytest.fixture
def make_app(database_url: str, clock: SettableClock, platforms: FakePlatforms) -> Iterator[Callable[..., Application]]:
    made: list[Application] = []

    def make(**server: Any) -> Application:
        application = app_calling(config(**server), platforms, database_url, clock)
        made.append(application)
        application.bus.handle(c.UpsertSku("INK", "Ink"))
        application.bus.handle(c.UpsertSku("PEN", "Pen"))
        application.bus.handle(c.AdjustStock("INK", "main", 2))
        return application

    yield make
    for application in made:
        application.close()


@pytest.fixture
def app(make_app: Callable[..., Application]) -> Application:
    return make_app()


@pytest.fixture
def client(app: Application) -> Iterator[TestClient]:
    with TestClient(create_app(app)) as test_client:
        yield test_client


def shopify_headers(body: bytes, topic: str, event: str, secret: str = SHOP_SECRET) -> dict[str, str]:
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {
        "X-Shopify-Hmac-Sha256": digest,
        "X-Shopify-Topic": topic,
        "X-Shopify-Event-Id": event,
        "Content-Type": "application/json",
    }


def order_body(number: int, quantity: int = 3, updated: str = "2026-03-02T08:00:00Z", **extra: Any) -> bytes:
    return json.dumps(
        {
            "id": number,
            "admin_graphql_api_id": f"gid://shopify/Order/{number}",
            "created_at": "2026-03-02T08:00:00Z",
            "updated_at": updated,
            "email": "ada@example.com",
            "phone": "+441234567890",
            "customer": {"first_name": "Ada", "last_name": "Lovelace"},
            "line_items": [{"id": 1, "sku": "INK", "quantity": quantity}],
            **extra,
        }
    ).encode()


def inbox(app: Application) -> list[dict[str, Any]]:
    with app.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t.inbox).order_by(t.inbox.c.id))]


def table(app: Application, tbl: Any) -> list[dict[str, Any]]:
    with app.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(tbl))]


def post_order(client: TestClient, number: int, event: str, channel: str = "web", **kw: Any) -> httpx.Response:
    body = order_body(number, **kw)
    return client.post(
        f"/webhooks/shopify/{channel}", content=body, headers=shopify_headers(body, "orders/create", event)
    )


# --- acceptance -------------------------------------------------------------------------------


def test_an_accepted_webhook_is_in_the_inbox_when_the_200_arrives(app: Application, client: TestClient) -> None:
    response = post_order(client, 1001, "e-1")
    assert response.status_code == 200
    (row,) = inbox(app)
    assert response.json() == {"status": "accepted", "inbox_id": row["id"]}
    assert (row["platform"], row["channel"], row["event_key"], row["topic"], row["status"]) == (
        "shopify",
        "web",
        "event:e-1",
        "orders/create",
        "received",
    )
    assert row["body"] == order_body(1001)  # the raw bytes, as signed


def test_when_the_inbox_cannot_commit_the_sender_gets_no_200(
    app: Application, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk full")

    monkeypatch.setattr(app.channel_services.inbox, "record_many", broken)
    with TestClient(create_app(app), raise_server_exceptions=False) as failing:
        response = post_order(failing, 1001, "e-1")
    assert response.status_code == 503  # the platform retries; nothing was acknowledged
    assert response.headers["Retry-After"] == "30"
    assert inbox(app) == []


def test_processing_records_the_backorder_and_tags_work_for_the_channel(app: Application, client: TestClient) -> None:
    post_order(client, 1001, "e-1", quantity=3)
    assert app.channel_services.processor.drain() == 1
    (row,) = inbox(app)
    assert row["status"] == "processed"
    lines = app.read.lines("web-1001")
    assert [(ln["sku"], ln["allocated"], ln["backordered"]) for ln in lines] == [("INK", 2, 1)]


def test_a_duplicate_is_answered_200_and_changes_nothing(app: Application, client: TestClient) -> None:
    assert post_order(client, 1001, "e-1").json()["status"] == "accepted"
    app.channel_services.processor.drain()
    before = table(app, t.orders), table(app, t.order_lines), table(app, t.outbox)
    again = post_order(client, 1001, "e-1")
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    app.channel_services.processor.drain()
    assert (table(app, t.orders), table(app, t.order_lines), table(app, t.outbox)) == before
    assert len(inbox(app)) == 1


def test_the_same_order_under_a_new_event_id_is_recorded_once(app: Application, client: TestClient) -> None:
    post_order(client, 1001, "e-1")
    post_order(client, 1001, "e-2", updated="2026-03-02T08:00:01Z")
    app.channel_services.processor.drain()
    assert len(table(app, t.orders)) == 1
    assert [r["status"] for r in inbox(app)] == ["processed", "ignored"]


# --- order of arrival ---------------------------------------------------------------------------


def test_a_cancellation_that_overtook_the_creation_wins(app: Application, client: TestClient) -> None:
    cancelled = order_body(1002, updated="2026-03-02T08:05:00Z", cancelled_at="2026-03-02T08:05:00Z")
    client.post("/webhooks/shopify/web", content=cancelled, headers=shopify_headers(cancelled, "orders/updated", "e-9"))
    post_order(client, 1002, "e-1", updated="2026-03-02T08:00:00Z")
    app.channel_services.processor.drain()
    assert table(app, t.orders) == []
    assert [r["status"] for r in inbox(app)] == ["ignored", "ignored"]
    assert "not newer" in inbox(app)[1]["error"]


def test_an_older_inventory_update_never_overwrites_a_newer_one(app: Application, client: TestClient) -> None:
    app.channel_services.store.remember_items("web", [_item("INK", "501")], app.clock.now())
    for available, stamp, event in [(9, "2026-03-02T08:10:00Z", "i-2"), (4, "2026-03-02T08:00:00Z", "i-1")]:
        body = json.dumps(
            {"inventory_item_id": 501, "location_id": 11, "available": available, "updated_at": stamp}
        ).encode()
        assert (
            client.post(
                "/webhooks/shopify/web", content=body, headers=shopify_headers(body, "inventory_levels/update", event)
            ).status_code
            == 200
        )
    app.channel_services.processor.drain()
    (level,) = [r for r in table(app, t.stock_levels) if r["sku"] == "INK"]
    assert level["on_hand"] == 9


# --- exactly-once shipments ---------------------------------------------------------------------


def fulfillment_body(order: int = 1001, fulfillment: int = 7001, quantity: int = 2) -> bytes:
    return json.dumps(
        {
            "id": fulfillment,
            "admin_graphql_api_id": f"gid://shopify/Fulfillment/{fulfillment}",
            "order_id": order,
            "status": "success",
            "location_id": 11,
            "line_items": [{"id": 1, "sku": "INK", "quantity": quantity}],
        }
    ).encode()


def post_fulfillment(client: TestClient, body: bytes, event: str) -> httpx.Response:
    return client.post(
        "/webhooks/shopify/web", content=body, headers=shopify_headers(body, "fulfillments/create", event)
    )


def shipments(app: Application) -> list[dict[str, Any]]:
    return [r for r in table(app, t.allocation_ledger) if r["kind"] in ("ship", "ship_direct")]


def test_a_replayed_fulfillment_under_a_new_event_id_ships_once(
    app: Application, client: TestClient, clock: SettableClock
) -> None:
    post_order(client, 1001, "e-1", quantity=3)
    app.channel_services.processor.drain()
    assert post_fulfillment(client, fulfillment_body(), "f-1").json()["status"] == "accepted"
    app.channel_services.processor.drain()
    clock.advance(minutes=1)
    assert post_fulfillment(client, fulfillment_body(), "f-2").json()["status"] == "accepted"  # a new event id
    app.channel_services.processor.drain()
    (line,) = app.read.lines("web-1001")
    assert (line["shipped"], line["allocated"], line["backordered"]) == (2, 2, 1)
    assert [r["on_hand"] for r in table(app, t.stock_levels) if r["sku"] == "INK"] == [0]
    assert [(r["source"], r["source_ref"], r["quantity"]) for r in shipments(app)] == [
        ("shipment", "shopify:fulfillment:7001:1", 2)
    ]
    rows = [r for r in inbox(app) if r["topic"] == "fulfillments/create"]
    assert [r["status"] for r in rows] == ["processed", "ignored"]
    assert "already recorded" in rows[1]["error"]
    post_fulfillment(client, fulfillment_body(fulfillment=7002, quantity=1), "f-3")  # a second, real shipment
    app.channel_services.processor.drain()
    assert app.read.lines("web-1001")[0]["shipped"] == 3


def test_a_fulfillment_row_processed_again_after_a_crash_ships_once(
    app: Application, client: TestClient, clock: SettableClock
) -> None:
    post_order(client, 1001, "e-1", quantity=3)
    app.channel_services.processor.drain()
    post_fulfillment(client, fulfillment_body(), "f-1")
    processor = app.channel_services.processor
    (row,) = app.channel_services.inbox.claim(clock.now(), 10)
    assert processor.process(row).status == "processed"  # commands committed; the process dies before finish
    assert inbox(app)[-1]["status"] == "processing"
    clock.advance(minutes=6)  # the lease runs out: the row is claimed and processed again
    assert processor.run() == 1
    assert inbox(app)[-1]["status"] == "ignored"
    assert app.read.lines("web-1001")[0]["shipped"] == 2
    assert len(shipments(app)) == 1


def test_the_ledger_refuses_a_second_record_of_the_same_shipment(app: Application) -> None:
    from sqlalchemy.exc import IntegrityError

    row = {
        "order_id": "web-1",
        "line_no": 1,
        "sku": "INK",
        "location": "main",
        "quantity": 1,
        "kind": "ship",
        "source": "shipment",
        "source_ref": "shopify:fulfillment:1:1",
        "at": app.clock.now(),
    }
    with app.engine.begin() as conn:
        conn.execute(t.allocation_ledger.insert(), row)
    with pytest.raises(IntegrityError), app.engine.begin() as conn:
        conn.execute(t.allocation_ledger.insert(), row)
    with app.engine.begin() as conn:  # plain shipments (no platform identity) are not constrained
        conn.execute(t.allocation_ledger.insert(), [{**row, "source": "ship", "source_ref": None}] * 2)


# --- order edits -----------------------------------------------------------------------------


def _ruby_order() -> dict[str, Any]:
    from tests.vendor import VENDOR_DIR

    path = VENDOR_DIR / "shopify" / "shopify-api-ruby-fixtures" / "order.json"
    order: dict[str, Any] = json.loads(path.read_text())["order"]
    return order


def test_an_order_edit_on_shopify_cuts_and_adds_units_and_an_older_version_changes_nothing(
    make_app: Callable[..., Application],
) -> None:
    app = make_app(max_body_bytes=65536)  # the vendored order is 8 KB
    client = TestClient(create_app(app))
    for sku in ("IPOD2008GREEN", "IPOD2008RED", "IPOD2008BLACK"):
        app.bus.handle(c.UpsertSku(sku, sku))
    app.bus.handle(c.AdjustStock("IPOD2008GREEN", "main", 1))
    created = _ruby_order()  # the vendored fixture: one of each colour
    edited = copy.deepcopy(created)  # modified copy: GREEN removed by an edit, BLACK raised to 3
    edited["updated_at"] = "2008-01-10T12:00:00-05:00"
    for item in edited["line_items"]:
        item["current_quantity"] = {"IPOD2008GREEN": 0, "IPOD2008BLACK": 3}.get(item["sku"], item["quantity"])
    stale = copy.deepcopy(created)  # modified copy: an update older than the edit, delivered last
    stale["updated_at"] = "2008-01-10T11:30:00-05:00"
    for body, topic, event in [(created, "orders/create", "o-1"), (edited, "orders/updated", "o-2")]:
        raw = json.dumps(body).encode()
        client.post("/webhooks/shopify/web", content=raw, headers=shopify_headers(raw, topic, event))
        app.channel_services.processor.drain()
    raw = json.dumps(stale).encode()
    client.post("/webhooks/shopify/web", content=raw, headers=shopify_headers(raw, "orders/updated", "o-3"))
    app.channel_services.processor.drain()
    lines = [(ln["line_no"], ln["sku"], ln["quantity"], ln["status"]) for ln in app.read.lines("web-450789469")]
    assert lines == [
        (1, "IPOD2008GREEN", 1, "cancelled"),
        (2, "IPOD2008RED", 1, "open"),
        (3, "IPOD2008BLACK", 1, "open"),
        (4, "IPOD2008BLACK", 2, "open"),
    ]
    assert [(r["status"], (r["error"] or "")[:40]) for r in inbox(app)] == [
        ("processed", ""),
        ("processed", ""),
        ("ignored", "order 450789469 version 2008-01-10T16:30"),
    ]
    green = [r for r in table(app, t.stock_levels) if r["sku"] == "IPOD2008GREEN"]
    assert [(r["on_hand"], r["allocated"]) for r in green] == [(1, 0)]  # the cut released the unit


def test_a_woocommerce_order_update_with_a_lower_quantity_releases_units_to_the_next_order(
    app: Application, client: TestClient
) -> None:
    def woo(number: int, quantity: int, modified: str) -> bytes:
        return json.dumps(
            {
                "id": number,
                "status": "processing",
                "date_created_gmt": f"2026-03-02T08:0{number % 10}:00",
                "date_modified_gmt": modified,
                "billing": {"email": "w@example.com"},
                "line_items": [{"id": 7, "product_id": 93, "variation_id": 0, "sku": "INK", "quantity": quantity}],
            }
        ).encode()

    def post(body: bytes, topic: str, delivery: str) -> None:
        digest = base64.b64encode(hmac.new(WOO_SECRET.encode(), body, hashlib.sha256).digest()).decode()
        headers = {
            "X-WC-Webhook-Signature": digest,
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-ID": "3",
            "X-WC-Webhook-Delivery-ID": delivery,
        }
        assert client.post("/webhooks/woocommerce/woo", content=body, headers=headers).status_code == 200
        app.channel_services.processor.drain()

    post(woo(1, 2, "2026-03-02T08:01:00"), "order.created", "d-1")  # takes both INK units
    post(woo(2, 1, "2026-03-02T08:02:00"), "order.created", "d-2")  # waits
    post(woo(1, 1, "2026-03-02T08:10:00"), "order.updated", "d-3")  # the customer wants one only
    assert [(ln["quantity"], ln["allocated"], ln["backordered"]) for ln in app.read.lines("woo-1")] == [(1, 1, 0)]
    assert [(ln["allocated"], ln["backordered"]) for ln in app.read.lines("woo-2")] == [(1, 0)]


def _item(sku: str, ref: str) -> Any:
    from backorder.store.inbox import ChannelItem

    return ChannelItem(sku, ref)


# --- rejections -------------------------------------------------------------------------------


@pytest.mark.parametrize("tamper", ["bit flip", "re-serialised JSON", "missing header", "wrong secret"])
def test_a_bad_signature_is_401_and_stores_nothing(app: Application, client: TestClient, tamper: str) -> None:
    body = order_body(1001)
    headers = shopify_headers(body, "orders/create", "e-1")
    if tamper == "bit flip":
        flipped = bytearray(body)
        flipped[len(flipped) // 2] ^= 0x01
        body = bytes(flipped)
    elif tamper == "re-serialised JSON":
        body = json.dumps(json.loads(body), indent=2).encode()
    elif tamper == "missing header":
        del headers["X-Shopify-Hmac-Sha256"]
    else:
        headers = shopify_headers(body, "orders/create", "e-1", secret="not-the-secret")
    before = table(app, t.inbox), table(app, t.orders)
    response = client.post("/webhooks/shopify/web", content=body, headers=headers)
    assert response.status_code == 401
    assert (table(app, t.inbox), table(app, t.orders)) == before
    assert app.channel_services.metrics.value("webhooks_rejected", platform="shopify", reason="InvalidSignature") == 1


def test_a_stale_standard_webhook_is_401(app: Application, client: TestClient) -> None:
    body = json.dumps({"order_id": "T1", "lines": [{"sku": "INK", "quantity": 1}]}).encode()
    stale = int((app.clock.now() - timedelta(minutes=6)).timestamp())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(stale),
        "webhook-signature": sign_standard_webhook(POS_SECRET, "msg_1", stale, body),
    }
    response = client.post("/webhooks/pos/pos", content=body, headers=headers)
    assert response.status_code == 401
    assert "old" in response.json()["error"]
    assert inbox(app) == []
    fresh = int(app.clock.now().timestamp())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(fresh),
        "webhook-signature": sign_standard_webhook(POS_SECRET, "msg_1", fresh, body),
    }
    assert client.post("/webhooks/pos/pos", content=body, headers=headers).status_code == 200
    app.channel_services.processor.drain()
    assert [ln["sku"] for ln in app.read.lines("pos-T1")] == ["INK"]


@pytest.mark.parametrize(("platform", "channel"), [("shopify", "nowhere"), ("woocommerce", "web"), ("magento", "web")])
def test_an_unknown_channel_or_platform_mismatch_is_404(
    app: Application, client: TestClient, platform: str, channel: str
) -> None:
    body = order_body(1001)
    response = client.post(
        f"/webhooks/{platform}/{channel}", content=body, headers=shopify_headers(body, "orders/create", "e")
    )
    assert response.status_code == 404
    assert inbox(app) == []


def test_an_oversized_body_is_413_by_its_declared_length(app: Application, client: TestClient) -> None:
    body = b"{" + b" " * 5000 + b"}"
    response = client.post("/webhooks/shopify/web", content=body, headers=shopify_headers(body, "orders/create", "big"))
    assert response.status_code == 413
    assert inbox(app) == []


def test_an_oversized_streamed_body_is_cut_off_at_the_limit(app: Application, client: TestClient) -> None:
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        for _ in range(100):  # 100 KiB offered; the ingress stops reading after the limit
            sent.append(1)
            yield b" " * 1024

    headers = {"X-Shopify-Hmac-Sha256": "x", "X-Shopify-Topic": "orders/create"}
    response = client.post("/webhooks/shopify/web", content=chunks(), headers=headers)
    assert response.status_code == 413
    assert inbox(app) == []


# --- failures stay visible ----------------------------------------------------------------------


def test_a_malformed_payload_is_kept_as_failed_with_its_reason(app: Application, client: TestClient) -> None:
    body = b'{"id": 5, "line_items": "nope", "created_at": "2026-03-02T08:00:00Z"}'
    assert (
        client.post(
            "/webhooks/shopify/web", content=body, headers=shopify_headers(body, "orders/create", "m-1")
        ).status_code
        == 200
    )
    app.channel_services.processor.drain()
    (row,) = inbox(app)
    assert row["status"] == "failed"
    assert "line_items" in row["error"]


def test_a_failed_event_can_be_processed_again_once_the_cause_is_fixed(app: Application, client: TestClient) -> None:
    body = order_body(1003).replace(b'"INK"', b'"PAD"')  # a SKU the catalog does not know yet
    client.post("/webhooks/shopify/web", content=body, headers=shopify_headers(body, "orders/create", "u-1"))
    app.channel_services.processor.drain()
    (row,) = inbox(app)
    assert row["status"] == "failed" and "PAD" in row["error"]
    app.bus.handle(c.UpsertSku("PAD", "Pad"))
    assert app.channel_services.inbox.reprocess(row["id"])
    outcome = app.channel_services.processor.process_id(row["id"])
    assert outcome is not None and outcome.status == "processed"
    assert [ln["sku"] for ln in app.read.lines("web-1003")] == ["PAD"]


# --- privacy ------------------------------------------------------------------------------------


def test_customers_redact_removes_personal_data_from_that_customers_orders(
    app: Application, client: TestClient
) -> None:
    post_order(client, 1001, "e-1")
    other = order_body(1004).replace(b"ada@example.com", b"bob@example.com")
    client.post("/webhooks/shopify/web", content=other, headers=shopify_headers(other, "orders/create", "e-4"))
    redact = json.dumps(
        {"shop_id": 1, "customer": {"id": 7, "email": "ada@example.com"}, "orders_to_redact": [1001]}
    ).encode()
    client.post("/webhooks/shopify/web", content=redact, headers=shopify_headers(redact, "customers/redact", "r-1"))
    app.channel_services.processor.drain()
    people = {r["id"]: (r["customer_email"], r["customer_phone"], r["customer_name"]) for r in table(app, t.orders)}
    assert people["web-1001"] == (None, None, None)
    assert people["web-1004"] == ("bob@example.com", "+441234567890", "Ada Lovelace")


def test_customers_redact_also_removes_the_raw_webhooks_and_messages_that_hold_their_data(
    app: Application, client: TestClient
) -> None:
    post_order(client, 1001, "e-1")  # Ada's order
    bob = order_body(1004, email="bob@example.com", phone="+447700900999")
    client.post("/webhooks/shopify/web", content=bob, headers=shopify_headers(bob, "orders/create", "e-4"))
    app.channel_services.processor.drain()
    app.dispatcher.drain()
    assert {m["recipient"] for m in sandbox_messages(app.engine, kind="email")} == {
        "ada@example.com",
        "bob@example.com",
    }
    redact = json.dumps(
        {
            "shop_id": 1,
            "customer": {"id": 7, "email": "Ada@Example.com", "phone": "+441234567890"},
            "orders_to_redact": [1001],
        }
    ).encode()
    client.post("/webhooks/shopify/web", content=redact, headers=shopify_headers(redact, "customers/redact", "r-1"))
    app.channel_services.processor.drain()
    bodies = {r["event_key"].removeprefix("event:"): bytes(r["body"]) for r in inbox(app)}
    assert bodies["e-1"] == bodies["r-1"] == b'{"redacted":true}'  # her order's webhook, and the request itself
    assert b"bob@example.com" in bodies["e-4"]  # another customer's is untouched
    everything = b" ".join(bodies.values()).lower() + json.dumps(table(app, t.orders), default=str).encode().lower()
    assert b"ada@example.com" not in everything and b"+441234567890" not in everything
    assert {m["recipient"] for m in sandbox_messages(app.engine, kind="email")} == {"bob@example.com"}
    assert {r["status"] for r in inbox(app)} <= {"processed", "ignored"}


def test_a_data_request_is_answered_with_everything_held_about_the_customer(
    app: Application, client: TestClient
) -> None:
    from backorder.store.privacy import customer_data

    post_order(client, 1001, "e-1")
    bob = order_body(1004, email="bob@example.com", phone="+447700900999")
    client.post("/webhooks/shopify/web", content=bob, headers=shopify_headers(bob, "orders/create", "e-4"))
    app.channel_services.processor.drain()
    app.dispatcher.drain()
    with app.engine.connect() as conn:
        held = customer_data(conn, " ADA@example.com ")
    assert [o["id"] for o in held["orders"]] == ["web-1001"]
    assert held["orders"][0]["customer_phone"] == "+441234567890"
    assert [line["sku"] for line in held["orders"][0]["lines"]] == ["INK"]
    assert {m["recipient"] for m in held["messages"]} == {"ada@example.com"}
    assert [w["topic"] for w in held["webhooks"]] == ["orders/create"]
    assert "ada@example.com" in held["webhooks"][0]["body"] and "bob@" not in json.dumps(held, default=str)
    with app.engine.connect() as conn:
        assert customer_data(conn, "ada@example.com", channel="shop")["orders"] == []


def test_shop_redact_removes_personal_data_from_every_order_of_the_channel(
    app: Application, client: TestClient
) -> None:
    post_order(client, 1001, "e-1")
    post_order(client, 1005, "e-5", channel="shop")
    body = json.dumps({"shop_id": 1, "shop_domain": "x.myshopify.com"}).encode()
    client.post("/webhooks/shopify/web", content=body, headers=shopify_headers(body, "shop/redact", "s-1"))
    app.channel_services.processor.drain()
    emails = {r["id"]: r["customer_email"] for r in table(app, t.orders)}
    assert emails == {"web-1001": None, "shop-1005": "ada@example.com"}
    bodies = {(r["channel"], bytes(r["body"])) for r in inbox(app)}
    assert {body for channel, body in bodies if channel == "web"} == {b'{"redacted":true}'}
    assert all(b"ada@example.com" in body for channel, body in bodies if channel == "shop")


# --- webhook-only channels, stock sync ----------------------------------------------------------


def test_a_webhook_only_channel_receives_and_its_outbound_work_waits(
    app: Application, client: TestClient, clock: SettableClock, platforms: FakePlatforms
) -> None:
    assert app.channel_services.webhook_only() == {"web": ["access_token", "shop_domain"]}
    settings = app.channel_services.settings
    settings["bare"] = settings["web"].model_copy(update={"webhook_secret": None})  # refuses every webhook
    assert "bare" not in app.channel_services.webhook_only()
    del settings["bare"]
    post_order(client, 1001, "e-1")
    app.channel_services.processor.drain()
    app.dispatcher.drain()
    clock.advance(seconds=31)
    app.channel_services.sync.flush(clock.now())
    app.dispatcher.drain()
    waiting = [r for r in table(app, t.outbox) if r["action"] == "push_stock_batch" and r["target"] == "channel:web"]
    assert waiting and all(r["status"] == "pending" for r in waiting)
    assert all(r["next_attempt_at"] > clock.now() for r in waiting)


def test_many_stock_changes_to_a_sku_within_the_window_are_one_push(
    app: Application, clock: SettableClock, platforms: FakePlatforms
) -> None:
    for _ in range(5):
        app.bus.handle(c.AdjustStock("INK", "main", 1))
        app.dispatcher.drain()
        clock.advance(seconds=2)
    app.bus.handle(c.AdjustStock("PEN", "main", 4))
    app.dispatcher.drain()
    assert app.channel_services.sync.flush(clock.now()) == 0  # still inside the 30 s window
    clock.advance(seconds=31)
    assert app.channel_services.sync.flush(clock.now()) == 3  # shop (1 batch of 2 SKUs) + woo + web
    app.dispatcher.drain()
    (push,) = platforms.pushes()
    assert sorted(q["quantity"] for q in push["quantities"]) == [4, 7]
    assert push["name"] == "available" and push["referenceDocumentUri"].startswith("backorder://outbox/")


def test_pushes_are_batched_to_the_channels_batch_size(
    app: Application, clock: SettableClock, platforms: FakePlatforms
) -> None:
    app.bus.handle(c.UpsertSku("PAD", "Pad"))
    for sku in ("INK", "PEN", "PAD"):
        app.bus.handle(c.AdjustStock(sku, "main", 1))
    app.dispatcher.drain()
    clock.advance(seconds=31)
    app.channel_services.sync.flush(clock.now())
    app.dispatcher.drain()
    assert sorted(len(p["quantities"]) for p in platforms.pushes()) == [1, 2]  # batch_size = 2


# --- reconciliation -----------------------------------------------------------------------------


def test_reconciliation_catches_an_order_whose_webhook_was_dropped(
    app: Application, clock: SettableClock, platforms: FakePlatforms
) -> None:
    platforms.orders = [
        {
            "id": "gid://shopify/Order/2001",
            "name": "#2001",
            "createdAt": "2026-03-02T08:58:00Z",
            "updatedAt": "2026-03-02T08:59:00Z",
            "cancelledAt": None,
            "email": "eve@example.com",
            "phone": None,
            "customer": {"firstName": "Eve", "lastName": "X"},
            "lineItems": {"nodes": [{"id": "li", "sku": "PEN", "quantity": 1}]},
        }
    ]
    assert app.channel_services.reconciler.due(clock.now()) == ["shop", "woo"]
    app.channel_services.tick(clock.now())
    app.channel_services.processor.drain()
    assert [ln["sku"] for ln in app.read.lines("shop-2001")] == ["PEN"]
    assert app.channel_services.reconciler.due(clock.now()) == []
    clock.advance(minutes=5)
    app.channel_services.tick(clock.now())  # the same order again: same key, nothing new
    assert len([r for r in inbox(app) if r["channel"] == "shop"]) == 1


# --- POS / B2B order API ------------------------------------------------------------------------


def test_the_order_api_records_a_pos_order_once_per_idempotency_key(app: Application, client: TestClient) -> None:
    order = {"order_id": "T-77", "lines": [{"sku": "INK", "quantity": 5}], "customer": {"email": "pos@example.com"}}
    headers = {"Authorization": "Bearer pos-key-1", "Idempotency-Key": "k-1"}
    first = client.post("/api/v1/orders", json=order, headers=headers)
    assert first.status_code == 201, first.text
    assert first.json()["order_id"] == "pos-T-77"
    again = client.post("/api/v1/orders", json=order, headers=headers)
    assert again.status_code == 200
    assert [(ln["allocated"], ln["backordered"]) for ln in app.read.lines("pos-T-77")] == [(2, 3)]
    respaced = json.dumps(dict(reversed(order.items())), indent=2).encode() + b"\n"  # the same order, re-serialised
    again = client.post("/api/v1/orders", content=respaced, headers={**headers, "Content-Type": "application/json"})
    assert again.status_code == 200, again.text
    other = client.post("/api/v1/orders", json={**order, "order_id": "T-78"}, headers=headers)
    assert other.status_code == 409
    assert client.post("/api/v1/orders", json=order, headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_a_redaction_matches_whole_values_and_leaves_look_alike_customers_alone(
    app: Application, client: TestClient
) -> None:
    """bob@shop.co is not jimbob@shop.com; order 15 is not a line item with id 15; a phone is its digits."""
    from backorder.store.privacy import customer_data

    bob = order_body(15, email="bob@shop.co", phone="+44 7700 900111")
    jim = order_body(1016, email="jimbob@shop.com", phone="+447700900111999")
    jim_items = json.loads(jim)
    jim_items["line_items"][0]["id"] = 15  # a line item whose id is Bob's order number
    jim = json.dumps(jim_items).encode()
    for body, event in ((bob, "b-15"), (jim, "j-16")):
        client.post("/webhooks/shopify/web", content=body, headers=shopify_headers(body, "orders/create", event))
    app.channel_services.processor.drain()
    with app.engine.connect() as conn:
        assert [w["topic"] for w in customer_data(conn, "bob@shop.co")["webhooks"]] == ["orders/create"]
    redact = json.dumps({"customer": {"email": "bob@shop.co", "phone": "+447700900111"}, "orders_to_redact": [15]})
    body = redact.encode()
    client.post("/webhooks/shopify/web", content=body, headers=shopify_headers(body, "customers/redact", "r-15"))
    app.channel_services.processor.drain()
    bodies = {r["event_key"].removeprefix("event:"): bytes(r["body"]) for r in inbox(app)}
    assert bodies["b-15"] == bodies["r-15"] == b'{"redacted":true}'
    assert b"jimbob@shop.com" in bodies["j-16"]  # untouched
    assert {r["status"] for r in inbox(app) if r["event_key"] == "event:j-16"} == {"processed"}
