"""Reconciliation pulls the stock of Magento (MSI source items) and SFCC (OCAPI product inventory
records) channels into the inbox, where the module's / job step's own parser applies them as
``SetStockLevel``: on SQLite and PostgreSQL, against fake platforms answering in the shapes of the
vendored Magento 2.4.8 admin schema and the documented OCAPI Data 23.2 resource."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from tests.platforms import app_calling

from backorder.bootstrap import Application
from backorder.channels.reconcile import RECORD_BATCH, Reconciler
from backorder.connectors.base import InboundRequest
from backorder.connectors.magento import client as magento_client
from backorder.connectors.sfcc import client as sfcc_client
from backorder.connectors.signatures import sign_standard_webhook
from backorder.domain import commands as c
from backorder.store.engine import build_engine
from backorder.store.inbox import ChannelStore, InboxStore
from backorder.store.migrate import upgrade

if TYPE_CHECKING:
    from conftest import Db, SettableClock

MAGENTO_SECRET = "whsec_" + base64.b64encode(b"magento-module-secret").decode()
SFCC_SECRET = "whsec_" + base64.b64encode(b"sfcc-cartridge-secret").decode()
MAGENTO_HOST = "mage.example.test"
OCAPI_HOST = "sf.example.test"
TOKEN_URL = "https://am.example.test/dwsso/oauth2/access_token"
SOURCE_ITEMS = "/rest/default/V1/inventory/source-items"
RECORDS = "/s/-/dw/data/v23_2/inventory_lists/{}/product_inventory_records"
FILTER = "searchCriteria[filterGroups][0][filters][0]"


def config() -> dict[str, Any]:
    return {
        "worker": {"bop_interval_minutes": 0},
        "server": {"public_url": "https://backorder.example.test"},
        "channels": {
            "mage": {
                "platform": "magento",
                "base_url": f"https://{MAGENTO_HOST}",
                "access_token": "mg-token",
                "webhook_secret": MAGENTO_SECRET,
                "source_locations": {"ws-london": "london", "ws-leeds": "leeds"},
                "push_source_code": "default",
                "reconcile_minutes": 5,
            },
            "mage-orders-only": {
                "platform": "magento",
                "base_url": f"https://{MAGENTO_HOST}",
                "access_token": "mg-token",
                "webhook_secret": MAGENTO_SECRET,
                "reconcile_minutes": 5,
            },
            "sf": {
                "platform": "sfcc",
                "base_url": f"https://{OCAPI_HOST}",
                "token_url": TOKEN_URL,
                "client_id": "am-client",
                "client_secret": "am-secret",
                "inventory_list_id": "inventory_web",
                "inventory_locations": {"inventory_london": "london"},
                "scapi_base_url": "https://scapi.example.test",
                "organization_id": "f_ecom_zzxy_prd",
                "site_id": "RefArch",
                "webhook_secret": SFCC_SECRET,
                "reconcile_minutes": 5,
            },
            "shop": {
                "platform": "shopify",
                "shop_domain": "shop.example.test",
                "access_token": "shpat_x",
                "webhook_secret": "shop-secret",
                "location_map": {"11": "london"},
                "reconcile_minutes": 5,
            },
        },
    }


def http_date(at: datetime) -> str:
    return format_datetime(at.astimezone(UTC), usegmt=True)


class Platforms:
    """Fake Magento REST and SFCC OCAPI / Account Manager answers, recording every request.

    Magento answers a ``currentPage`` past the end with the last page again, as its collections
    do, so only stopping at ``total_count`` ends the paging."""

    def __init__(self, now: datetime) -> None:
        self.requests: list[httpx.Request] = []
        self.source_items: dict[str, list[dict[str, Any]]] = {}
        self.magento_date = now
        self.magento_status = 200
        self.magento_body: bytes | None = None
        self.records: dict[str, list[dict[str, Any]]] = {}
        self.ocapi_status = 200

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if str(request.url).startswith(TOKEN_URL):
            return httpx.Response(200, json={"access_token": "am-token", "token_type": "Bearer", "expires_in": 1799})
        params = request.url.params
        if request.url.host == MAGENTO_HOST and request.url.path == SOURCE_ITEMS:
            if self.magento_status != 200:
                return httpx.Response(self.magento_status, json={"message": "Service Unavailable"})
            if self.magento_body is not None:
                return httpx.Response(200, content=self.magento_body, headers={"content-type": "text/html"})
            source = params[f"{FILTER}[value]"]
            items = sorted(self.source_items.get(source, []), key=lambda i: i["sku"])
            size, page = int(params["searchCriteria[pageSize]"]), int(params["searchCriteria[currentPage]"])
            last = max(1, -(-len(items) // size))
            start = (min(page, last) - 1) * size
            return httpx.Response(
                200,
                json={"items": items[start : start + size], "search_criteria": {}, "total_count": len(items)},
                headers={"Date": http_date(self.magento_date)},
            )
        if request.url.host == MAGENTO_HOST and request.url.path == "/rest/default/V1/orders":
            return httpx.Response(200, json={"items": [], "search_criteria": {}, "total_count": 0})
        if request.url.host == OCAPI_HOST:
            list_id = request.url.path.split("/")[-2]
            if self.ocapi_status != 200:
                return httpx.Response(
                    self.ocapi_status,
                    json={"_v": "23.2", "fault": {"type": "InventoryListNotFoundException", "message": "no list"}},
                )
            records = self.records.get(list_id, [])
            start, count = int(params["start"]), int(params["count"])
            page = records[start : start + count]
            body: dict[str, Any] = {"_v": "23.2", "count": len(page), "start": start, "total": len(records)}
            if page:
                body["data"] = page
            return httpx.Response(200, json=body)
        if request.url.host == "scapi.example.test":
            return httpx.Response(200, json={"limit": 200, "data": [], "offset": 0, "total": 0})
        return httpx.Response(404, json={"errors": "not answered here"})

    def magento_pages(self) -> list[tuple[str, str]]:
        return [
            (r.url.params[f"{FILTER}[value]"], r.url.params["searchCriteria[currentPage]"])
            for r in self.requests
            if r.url.path == SOURCE_ITEMS
        ]

    def ocapi_pages(self) -> list[tuple[str, str, str, str]]:
        return [
            (r.url.path.split("/")[-2], r.url.params["start"], r.url.params["count"], r.url.params["select"])
            for r in self.requests
            if r.url.host == OCAPI_HOST
        ]


@pytest.fixture
def platforms(clock: SettableClock) -> Platforms:
    return Platforms(clock.now())


@pytest.fixture
def app(database_url: str, clock: SettableClock, platforms: Platforms) -> Iterator[Application]:
    application = app_calling(config(), platforms, database_url, clock, seed=5)
    for sku in ("INK", "PEN", "PAPER"):
        application.bus.handle(c.UpsertSku(sku, sku.title()))
    try:
        yield application
    finally:
        application.close()


def source_item(sku: str, source: str, quantity: float) -> dict[str, Any]:
    """An ``inventory-api-data-source-item-interface`` as ``GET /V1/inventory/source-items`` lists it."""
    return {"sku": sku, "source_code": source, "quantity": quantity, "status": 1 if quantity > 0 else 0}


def inventory_record(product: str, amount: int, reset: str) -> dict[str, Any]:
    """An OCAPI Data ``ProductInventoryRecord`` (snake_case, as OCAPI sends it)."""
    return {
        "_type": "product_inventory_record",
        "product_id": product,
        "inventory_list_id": "inventory_london",
        "allocation": {"amount": amount, "reset_date": reset},
        "stock_level": amount,
        "ats": amount,
        "inventory_turnover": 0,
        "last_modified": reset,
    }


def module_stock_event(app: Application, items: list[dict[str, Any]], observed: datetime) -> str:
    """The Backorder_Sync module's signed ``stock.source_items`` event through verify, inbox and
    processor, as the ingress and worker run it; returns the row's outcome."""
    body = json.dumps(
        {"type": "stock.source_items", "timestamp": observed.isoformat(), "data": {"items": items}}
    ).encode()
    services = app.channel_services
    msg_id = f"mg-stock-{observed.timestamp():.0f}"
    ts = int(app.clock.now().timestamp())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign_standard_webhook(MAGENTO_SECRET, msg_id, ts, body),
    }
    receiver = services.receivers["mage"]
    request = InboundRequest("magento", "mage", "/", headers, body, app.clock.now())
    receiver.verify(request)
    identity = receiver.identify(request)
    row_id, created = services.inbox.record(
        "magento", "mage", identity.event_key, identity.topic, headers, body, app.clock.now()
    )
    assert created and row_id is not None
    outcome = services.processor.process_id(row_id)
    assert outcome is not None
    return outcome.status


# --- Magento -----------------------------------------------------------------------------------


def test_magento_source_items_of_every_mapped_source_are_pulled_page_by_page_into_stock_levels(
    app: Application, clock: SettableClock, platforms: Platforms, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(magento_client, "STOCK_PAGE_SIZE", 2)
    platforms.source_items = {
        "ws-london": [
            source_item("PEN", "ws-london", 3.0),
            source_item("INK", "ws-london", 7.0),
            source_item("PAPER", "ws-london", 0),
        ],
        "ws-leeds": [source_item("INK", "ws-leeds", 4.0)],
        "default": [source_item("INK", "default", 99.0)],  # the push source: never read
    }
    services = app.channel_services

    assert services.reconciler.reconcile_stock("mage", clock.now()) == {"pulled": 4, "new": 4}

    # one query sequence per mapped source, sorted by SKU, stopping at total_count
    assert platforms.magento_pages() == [("ws-leeds", "1"), ("ws-london", "1"), ("ws-london", "2")]
    for request in platforms.requests:
        assert request.method == "GET" and request.headers["authorization"] == "Bearer mg-token"
        assert request.url.params[f"{FILTER}[field]"] == "source_code"
        assert request.url.params[f"{FILTER}[conditionType]"] == "eq"
        assert request.url.params["searchCriteria[sortOrders][0][field]"] == "sku"
        assert request.url.params["searchCriteria[sortOrders][0][direction]"] == "ASC"
        assert request.url.params["searchCriteria[pageSize]"] == "2"
    assert services.processor.drain() == 4
    assert db.level("INK", "london")["on_hand"] == 7
    assert db.level("PEN", "london")["on_hand"] == 3
    assert db.level("PAPER", "london")["on_hand"] == 0
    assert db.level("INK", "leeds")["on_hand"] == 4
    rows = services.inbox.list(None, "mage", 10)
    assert {(r["topic"], r["status"]) for r in rows} == {("stock.source_items", "processed")}


def test_an_unchanged_magento_level_adds_no_row_and_a_changed_one_is_applied(
    app: Application, clock: SettableClock, platforms: Platforms, db: Db
) -> None:
    services = app.channel_services
    platforms.source_items = {"ws-london": [source_item("INK", "ws-london", 7.0)]}
    services.reconciler.reconcile_stock("mage", clock.now())
    services.processor.drain()

    platforms.magento_date = clock.advance(minutes=5)
    assert services.reconciler.reconcile_stock("mage", clock.now()) == {"pulled": 1, "new": 0}

    platforms.source_items = {"ws-london": [source_item("INK", "ws-london", 5.0)]}
    platforms.magento_date = clock.advance(minutes=5)
    assert services.reconciler.reconcile_stock("mage", clock.now()) == {"pulled": 1, "new": 1}
    services.processor.drain()
    assert db.level("INK", "london")["on_hand"] == 5


def test_a_module_event_newer_than_the_pulled_page_wins_and_an_older_one_changes_nothing(
    app: Application, clock: SettableClock, platforms: Platforms, db: Db
) -> None:
    services = app.channel_services
    pulled_at = clock.now()
    # the module reported 2 after Magento answered the pull with 7 (the pull row is processed later)
    platforms.source_items = {"ws-london": [source_item("INK", "ws-london", 7.0)]}
    services.reconciler.reconcile_stock("mage", clock.now())
    assert module_stock_event(app, [source_item("INK", "ws-london", 2.0)], pulled_at + timedelta(seconds=1)) == (
        "processed"
    )
    services.processor.drain()
    assert db.level("INK", "london")["on_hand"] == 2

    # a pull answered later (Magento's Date) applies; an older module event arriving after it does not
    platforms.source_items = {"ws-london": [source_item("INK", "ws-london", 6.0)]}
    platforms.magento_date = clock.advance(minutes=5)
    services.reconciler.reconcile_stock("mage", clock.now())
    services.processor.drain()
    assert db.level("INK", "london")["on_hand"] == 6
    module_stock_event(app, [source_item("INK", "ws-london", 1.0)], pulled_at + timedelta(minutes=2))
    assert db.level("INK", "london")["on_hand"] == 6


def test_a_magento_level_back_at_an_already_pulled_quantity_is_recorded_again_after_stock_refresh_hours(
    app: Application, clock: SettableClock, platforms: Platforms, db: Db
) -> None:
    """Source items have no modification time: 7 → 3 (event received) → 7 (event lost) looks
    unchanged to the next pull; the refresh period bounds how long that lasts."""
    services = app.channel_services
    platforms.source_items = {"ws-london": [source_item("INK", "ws-london", 7.0)]}
    services.reconciler.reconcile_stock("mage", clock.now())
    services.processor.drain()
    module_stock_event(app, [source_item("INK", "ws-london", 3.0)], clock.advance(minutes=1))

    platforms.magento_date = clock.advance(minutes=10)
    assert services.reconciler.reconcile_stock("mage", clock.now())["new"] == 0
    assert db.level("INK", "london")["on_hand"] == 3

    platforms.magento_date = clock.advance(hours=24)
    assert services.reconciler.reconcile_stock("mage", clock.now())["new"] == 1
    services.processor.drain()
    assert db.level("INK", "london")["on_hand"] == 7


def test_a_failed_magento_stock_pull_reports_the_error_and_the_orders_are_still_pulled(
    app: Application, clock: SettableClock, platforms: Platforms
) -> None:
    platforms.magento_status = 503
    result = app.channel_services.reconciler.reconcile_channel("mage", clock.now())
    assert result["stock"] == {"error": "magento is unavailable (HTTP 503)"}
    assert (result["pulled"], result["new"]) == (0, 0)  # the order pull ran
    assert [r.url.path for r in platforms.requests] == [SOURCE_ITEMS, "/rest/default/V1/orders"]
    assert app.channel_services.inbox.list(None, "mage", 10) == []


def test_a_magento_answer_that_is_not_a_source_item_search_result_is_an_error(
    app: Application, clock: SettableClock, platforms: Platforms
) -> None:
    platforms.magento_body = b"<html>Please sign in</html>"
    result = app.channel_services.reconciler.reconcile_stock("mage", clock.now())
    assert result == {"error": "Magento's source items of ws-leeds are not JSON"}
    assert app.channel_services.inbox.list(None, "mage", 10) == []


# --- SFCC --------------------------------------------------------------------------------------


def test_sfcc_inventory_records_of_every_mapped_list_are_pulled_with_start_and_count(
    app: Application, clock: SettableClock, platforms: Platforms, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sfcc_client, "STOCK_PAGE_COUNT", 2)
    unallocated = {"_type": "product_inventory_record", "product_id": "PAPER", "inventory_list_id": "inventory_london"}
    platforms.records = {
        "inventory_london": [
            inventory_record("INK", 14, "2026-03-02T06:00:00.000Z"),
            inventory_record("PEN", 5, "2026-03-01T18:30:00.000Z"),
            unallocated,  # no allocation yet: nothing to read as on-hand
        ],
        "inventory_web": [inventory_record("INK", 99, "2026-03-02T06:00:00.000Z")],  # the push list
    }
    services = app.channel_services

    assert services.reconciler.reconcile_stock("sf", clock.now()) == {"pulled": 2, "new": 2}

    assert platforms.ocapi_pages() == [("inventory_london", "0", "2", "(**)"), ("inventory_london", "2", "2", "(**)")]
    tokens = [r for r in platforms.requests if str(r.url).startswith(TOKEN_URL)]
    assert len(tokens) == 1
    for request in platforms.requests:
        if request.url.host == OCAPI_HOST:
            assert request.method == "GET" and request.headers["authorization"] == "Bearer am-token"
    assert services.processor.drain() == 2
    assert db.level("INK", "london")["on_hand"] == 14
    assert db.level("PEN", "london")["on_hand"] == 5
    rows = services.inbox.list(None, "sf", 10)
    assert {(r["topic"], r["status"]) for r in rows} == {("inventory.records", "processed")}


def test_an_unchanged_sfcc_allocation_adds_no_row_and_an_older_reset_changes_nothing(
    app: Application, clock: SettableClock, platforms: Platforms, db: Db
) -> None:
    services = app.channel_services
    platforms.records = {"inventory_london": [inventory_record("INK", 14, "2026-03-02T06:00:00.000Z")]}
    services.reconciler.reconcile_stock("sf", clock.now())
    services.processor.drain()
    assert services.reconciler.reconcile_stock("sf", clock.now()) == {"pulled": 1, "new": 0}

    # a newer allocation is applied; a level read from an older allocation changes nothing
    platforms.records = {"inventory_london": [inventory_record("INK", 20, "2026-03-02T08:00:00.000Z")]}
    assert services.reconciler.reconcile_stock("sf", clock.now())["new"] == 1
    services.processor.drain()
    assert db.level("INK", "london")["on_hand"] == 20
    platforms.records = {"inventory_london": [inventory_record("INK", 3, "2026-03-02T07:00:00.000Z")]}
    assert services.reconciler.reconcile_stock("sf", clock.now())["new"] == 1
    services.processor.drain()
    assert db.level("INK", "london")["on_hand"] == 20


def test_a_missing_sfcc_inventory_list_is_an_error_and_records_nothing(
    app: Application, clock: SettableClock, platforms: Platforms
) -> None:
    platforms.ocapi_status = 404
    result = app.channel_services.reconciler.reconcile_stock("sf", clock.now())
    assert result["error"].startswith("sfcc rejected the request (HTTP 404)")
    assert "InventoryListNotFoundException" in result["error"]
    assert app.channel_services.inbox.list(None, "sf", 10) == []


# --- which channels are stock sources ---------------------------------------------------------


def test_a_channel_is_a_stock_source_when_it_maps_a_magento_source_or_an_sfcc_inventory_list(
    app: Application, clock: SettableClock, platforms: Platforms
) -> None:
    reconciler = app.channel_services.reconciler
    assert reconciler.due(clock.now()) == ["mage", "mage-orders-only", "sf", "shop"]
    # not the Magento channel without source_locations, nor Shopify without stock_source = true
    assert reconciler.stock_due(clock.now()) == ["mage", "sf"]
    platforms.source_items = {"ws-london": [source_item("INK", "ws-london", 7.0)]}
    platforms.records = {"inventory_london": [inventory_record("INK", 14, "2026-03-02T06:00:00.000Z")]}
    results = reconciler.run_due(clock.now())
    assert results["mage"]["stock"] == {"pulled": 1, "new": 1}
    assert results["sf"]["stock"] == {"pulled": 1, "new": 1}
    assert "stock" not in results["mage-orders-only"] and "stock" not in results["shop"]


def test_a_large_pull_is_committed_in_batches_and_a_second_pull_adds_nothing(
    database_url: str, clock: SettableClock
) -> None:
    class Catalogue:  # a stock source whose pull finds 2½ batches of levels
        settings = SimpleNamespace(kind="magento", stock_source=False)

        def reads_stock(self) -> bool:
            return True

        def current_stock(self) -> list[tuple[str, bytes]]:
            return [(f"reconcile-stock:main:SKU{i}:5:0", b'{"items": []}') for i in range(RECORD_BATCH * 5 // 2)]

    engine = build_engine(database_url)
    upgrade(engine)
    inbox = InboxStore(engine)
    calls: list[int] = []
    record_many = inbox.record_many

    def counted(items: Any) -> Any:
        calls.append(len(items))
        return record_many(items)

    inbox.record_many = counted  # type: ignore[method-assign]
    try:
        reconciler = Reconciler(inbox, ChannelStore(engine), {"mage": Catalogue()})
        total = RECORD_BATCH * 5 // 2
        assert reconciler.reconcile_stock("mage", clock.now()) == {"pulled": total, "new": total}
        assert calls == [RECORD_BATCH, RECORD_BATCH, RECORD_BATCH // 2]  # one transaction per batch
        assert reconciler.reconcile_stock("mage", clock.now()) == {"pulled": total, "new": 0}
        with engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT count(*) FROM inbox WHERE channel = 'mage'").scalar_one()
        assert stored == total
    finally:
        inbox.close()
        engine.dispose()


def test_pull_orders_false_pulls_stock_only_once_per_interval(
    database_url: str, clock: SettableClock, platforms: Platforms
) -> None:
    raw = config()
    raw["channels"] = {"mage": {**raw["channels"]["mage"], "pull_orders": False}}
    application = app_calling(raw, platforms, database_url, clock)
    try:
        platforms.source_items = {"ws-london": [source_item("INK", "ws-london", 7.0)], "ws-leeds": []}
        reconciler = application.channel_services.reconciler

        assert reconciler.run_due(clock.now()) == {
            "mage": {"orders": "not pulled (pull_orders = false)", "stock": {"pulled": 1, "new": 1}}
        }
        assert not [r for r in platforms.requests if r.url.path.endswith("/V1/orders")]
        assert reconciler.due(clock.now()) == []  # the round counts: not pulled again at once
        clock.advance(minutes=5)
        assert reconciler.due(clock.now()) == ["mage"]
    finally:
        application.close()
