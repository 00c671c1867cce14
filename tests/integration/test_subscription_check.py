"""Webhook subscriptions kept alive, on SQLite and PostgreSQL: Shopify deletes a subscription whose
deliveries keep failing, so the worker checks every ``webhook_check_minutes`` that the topics
`backorder connect` registered are still subscribed to our URL and re-creates the missing ones.
Every GraphQL document sent is validated against the vendored Admin schema."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from tests.contract.cases.shopify import validate_request
from tests.platforms import app_calling
from typer.testing import CliRunner

from backorder.bootstrap import Application

if TYPE_CHECKING:
    from conftest import SettableClock

PUBLIC = "https://backorder.example.test"
CALLBACK = f"{PUBLIC}/webhooks/shopify/shop"
TOPICS = ["ORDERS_CREATE", "ORDERS_UPDATED", "ORDERS_CANCELLED", "FULFILLMENTS_CREATE", "INVENTORY_LEVELS_UPDATE"]


def config(check_minutes: float = 60) -> dict[str, Any]:
    return {
        "worker": {"bop_interval_minutes": 0},
        "server": {"public_url": PUBLIC},
        "channels": {
            "shop": {
                "platform": "shopify",
                "shop_domain": "shop.example.test",
                "access_token": "shpat_x",
                "webhook_secret": "s",
                "reconcile_minutes": 0,
                "webhook_check_minutes": check_minutes,
                "rate_per_second": 0,
            },
            "other": {
                "platform": "shopify",
                "shop_domain": "other.example.test",
                "access_token": "shpat_y",
                "webhook_secret": "s",
                "reconcile_minutes": 0,
                "rate_per_second": 0,
            },
        },
    }


class Shopify:
    """Admin GraphQL as far as subscriptions go: the subscriptions it holds, listed by callback
    URL (two per page, to exercise paging) and created unless the topic/URL pair exists."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, tuple[str, str]] = {}  # id → (topic, callback URL)
        self.sent: list[tuple[str, str]] = []  # (host, operation)
        self.refuse: set[str] = set()
        self.status = 200
        self._next = 1000

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        validate_request(request)
        payload = json.loads(request.content)
        query, variables = payload["query"], payload.get("variables") or {}
        operation = "list" if "query Subscriptions" in query else "create" if "mutation Subscribe" in query else "?"
        self.sent.append((request.url.host, operation))
        if self.status != 200:
            return httpx.Response(self.status, json={"errors": "[API] Invalid API key or access token"})
        if operation == "list":
            matching = sorted(k for k, (_, url) in self.subscriptions.items() if url == variables["callbackUrl"])
            start = int(variables.get("after") or 0)
            page = matching[start : start + 2]
            nodes = [
                {
                    "id": k,
                    "topic": self.subscriptions[k][0],
                    "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": self.subscriptions[k][1]},
                }
                for k in page
            ]
            more = start + 2 < len(matching)
            info = {"hasNextPage": more, "endCursor": str(start + 2) if more else None}
            return httpx.Response(200, json={"data": {"webhookSubscriptions": {"pageInfo": info, "nodes": nodes}}})
        if operation == "create":
            topic, url = variables["topic"], variables["subscription"]["callbackUrl"]
            if topic in self.refuse:
                errors = [{"field": ["webhookSubscription"], "message": "Webhook topic is not allowed for this app"}]
                return self._created(None, errors)
            if (topic, url) in self.subscriptions.values():
                return self._created(
                    None, [{"field": ["callbackUrl"], "message": "Address for this topic has already been taken"}]
                )
            self._next += 1
            gid = f"gid://shopify/WebhookSubscription/{self._next}"
            self.subscriptions[gid] = (topic, url)
            return self._created({"id": gid}, [])
        return httpx.Response(400, json={"errors": "unexpected document"})

    @staticmethod
    def _created(subscription: dict[str, Any] | None, errors: list[dict[str, Any]]) -> httpx.Response:
        return httpx.Response(
            200,
            json={"data": {"webhookSubscriptionCreate": {"webhookSubscription": subscription, "userErrors": errors}}},
        )

    def drop(self, *topics: str) -> None:
        for gid, (topic, _) in list(self.subscriptions.items()):
            if topic in topics:
                del self.subscriptions[gid]

    def operations(self) -> list[str]:
        ops = [op for host, op in self.sent if host == "shop.example.test"]
        self.sent.clear()
        return ops


def _application(database_url: str, clock: SettableClock, shopify: Shopify, check_minutes: float = 60) -> Application:
    return app_calling(config(check_minutes), shopify, database_url, clock)


@pytest.fixture
def shopify() -> Shopify:
    return Shopify()


@pytest.fixture
def app(database_url: str, clock: SettableClock, shopify: Shopify) -> Iterator[Application]:
    application = _application(database_url, clock, shopify)
    try:
        yield application
    finally:
        application.close()


def connect(app: Application, clock: SettableClock) -> dict[str, str | None]:
    done: list[dict[str, Any]] = []
    app.routes.channels["shop"].register_webhooks(PUBLIC, into=done)  # type: ignore[attr-defined]
    rows = app.channel_services.record_registrations("shop", "shopify", done, clock.now())
    return {r.topic: r.provider_ref for r in rows}


def stored(app: Application) -> dict[str, tuple[str | None, Any, str | None]]:
    return {
        r.topic: (r.provider_ref, r.registered_at, r.error)
        for r in app.channel_services.registrations.for_channel("shop")  # type: ignore[union-attr]
    }


def test_a_check_that_finds_every_subscription_changes_nothing(
    app: Application, clock: SettableClock, shopify: Shopify
) -> None:
    connect(app, clock)
    before = stored(app)
    shopify.operations()
    clock.advance(minutes=61)

    app.channel_services.tick(clock.now())

    assert shopify.operations() == ["list", "list", "list"]  # 5 subscriptions, 2 a page; nothing created
    assert stored(app) == before


def test_the_worker_re_creates_the_subscriptions_shopify_dropped(
    app: Application, clock: SettableClock, shopify: Shopify, caplog: pytest.LogCaptureFixture
) -> None:
    first = connect(app, clock)
    connected_at = clock.now()
    shopify.drop("ORDERS_CREATE", "INVENTORY_LEVELS_UPDATE")
    shopify.operations()
    clock.advance(minutes=61)

    with caplog.at_level(logging.WARNING, logger="backorder.channels.services"):
        app.channel_services.tick(clock.now())

    assert shopify.operations() == ["list", "list", "create", "create"]
    assert sorted(topic for topic, _ in shopify.subscriptions.values()) == sorted(TOPICS)
    rows = stored(app)
    for topic in ("orders/create", "inventory_levels/update"):
        ref, when, error = rows[topic]
        assert ref != first[topic] and ref in shopify.subscriptions and when == clock.now() and error is None
    for topic in ("orders/updated", "orders/cancelled", "fulfillments/create"):
        assert rows[topic] == (first[topic], connected_at, None)
    assert (
        "dropped or disabled our orders/create, inventory_levels/update subscription(s) on channel shop: re-created"
        in caplog.text
    )


def test_the_check_waits_webhook_check_minutes_and_skips_channels_never_connected(
    app: Application, clock: SettableClock, shopify: Shopify
) -> None:
    services = app.channel_services
    assert services.subscriptions_due(clock.now()) == []  # nothing connected yet: the app's own webhooks
    connect(app, clock)
    # a channel found unconnected is looked at again after the interval, not on every tick
    assert services.subscriptions_due(clock.now()) == []
    clock.advance(minutes=60)
    assert services.subscriptions_due(clock.now()) == ["shop"]
    services.tick(clock.now())
    clock.advance(minutes=59)
    assert services.subscriptions_due(clock.now()) == []
    clock.advance(minutes=1)
    assert services.subscriptions_due(clock.now()) == ["shop"]
    assert all(host == "shop.example.test" for host, _ in shopify.sent)  # "other" was never asked


def test_a_worker_started_after_connect_checks_at_once(
    database_url: str, clock: SettableClock, shopify: Shopify
) -> None:
    first = _application(database_url, clock, shopify)
    try:
        connect(first, clock)
    finally:
        first.close()
    worker = _application(database_url, clock, shopify)  # a new process: nothing checked yet
    try:
        shopify.drop("ORDERS_UPDATED")
        worker.channel_services.tick(clock.now())
        assert sorted(topic for topic, _ in shopify.subscriptions.values()) == sorted(TOPICS)
    finally:
        worker.close()


def test_webhook_check_minutes_0_turns_the_check_off(database_url: str, clock: SettableClock, shopify: Shopify) -> None:
    application = _application(database_url, clock, shopify, check_minutes=0)
    try:
        connect(application, clock)
        shopify.drop(*TOPICS)
        shopify.operations()
        clock.advance(days=2)
        application.channel_services.tick(clock.now())
        assert shopify.operations() == [] and shopify.subscriptions == {}
    finally:
        application.close()


def test_a_refused_re_creation_is_recorded_and_shown(app: Application, clock: SettableClock, shopify: Shopify) -> None:
    connect(app, clock)
    shopify.drop("FULFILLMENTS_CREATE")
    shopify.refuse.add("FULFILLMENTS_CREATE")
    clock.advance(minutes=61)

    app.channel_services.tick(clock.now())

    ref, when, error = stored(app)["fulfillments/create"]
    assert ref is None and when == clock.now() and error is not None and "not allowed for this app" in error
    shown = app.webhook_registrations("channels.shop")
    assert shown is not None and shown.startswith("4 of 5 topic(s) registered")
    assert "refused: fulfillments/create:" in shown


def test_a_platform_that_cannot_be_asked_changes_nothing_and_is_asked_again_next_interval(
    app: Application, clock: SettableClock, shopify: Shopify
) -> None:
    connect(app, clock)
    before = stored(app)
    shopify.status = 401
    clock.advance(minutes=61)

    result = app.channel_services.check_subscriptions(clock.now())

    assert list(result) == ["shop"] and "401" in result["shop"][0]["error"]
    assert stored(app) == before
    assert app.channel_services.subscriptions_due(clock.now()) == []
    clock.advance(minutes=60)
    assert app.channel_services.subscriptions_due(clock.now()) == ["shop"]


def test_connect_check_prints_each_topic_and_re_creates_the_missing_one(
    app: Application, clock: SettableClock, shopify: Shopify, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backorder import cli

    connect(app, clock)
    shopify.drop("ORDERS_CANCELLED")

    class Borrowed:  # the CLI's `application()` hands out this test's app and leaves it open
        def __enter__(self) -> Application:
            return app

        def __exit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(cli, "application", lambda **kwargs: Borrowed())
    monkeypatch.setattr(cli.out, "width", 200)  # one line per topic, whatever the terminal
    result = CliRunner().invoke(cli.cli, ["connect", "shopify", "shop", "--check"])

    assert result.exit_code == 0, result.output
    assert f"orders/cancelled → {CALLBACK}: re-created" in result.output
    assert f"orders/create → {CALLBACK}: present" in result.output
    assert sorted(topic for topic, _ in shopify.subscriptions.values()) == sorted(TOPICS)

    shopify.refuse.add("ORDERS_CREATE")
    shopify.drop("ORDERS_CREATE")
    result = CliRunner().invoke(cli.cli, ["connect", "shopify", "shop", "--check"])
    assert result.exit_code == 2  # the CLI's exit code for an error that tells what to do
    assert (
        "orders/create" in result.output and "FAILED:" in result.output and "not allowed for this app" in result.output
    )


# --- WooCommerce: disabled after 5 failed deliveries, re-enabled through the REST API ------------

WOO_URL = f"{PUBLIC}/webhooks/woocommerce/woo"


class Woo:
    """``/wp-json/wc/v3/webhooks`` as far as we use it: list (paged), create, update status."""

    def __init__(self) -> None:
        self.webhooks: dict[int, dict[str, Any]] = {}
        self.sent: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        from tests.contract.cases.woocommerce import validate_request as validate_woo

        request.read()
        validate_woo(request)
        path = request.url.path.removeprefix("/wp-json/wc/v3")
        self.sent.append(f"{request.method} {path}")
        if request.method == "GET" and path == "/webhooks":
            per_page, page = int(request.url.params["per_page"]), int(request.url.params["page"])
            rows = [self.webhooks[k] for k in sorted(self.webhooks)]
            return httpx.Response(200, json=rows[(page - 1) * per_page : page * per_page])
        if request.method == "POST" and path == "/webhooks":
            body = json.loads(request.content)
            hook_id = 140 + len(self.webhooks) + 1
            self.webhooks[hook_id] = {
                "id": hook_id,
                "status": body["status"],
                "topic": body["topic"],
                "delivery_url": body["delivery_url"],
            }
            return httpx.Response(201, json=self.webhooks[hook_id])
        if request.method == "PUT" and path.startswith("/webhooks/"):
            hook = self.webhooks[int(path.rsplit("/", 1)[1])]
            hook.update(json.loads(request.content))
            return httpx.Response(200, json=hook)
        return httpx.Response(404, json={"code": "rest_no_route"})

    def operations(self) -> list[str]:
        sent, self.sent = self.sent, []
        return sent


@pytest.fixture
def woo_app(database_url: str, clock: SettableClock) -> Iterator[tuple[Application, Woo]]:
    woo = Woo()
    raw = config()
    raw["channels"] = {
        "woo": {
            "platform": "woocommerce",
            "store_url": "https://woo.example.test",
            "consumer_key": "ck",
            "consumer_secret": "cs",
            "webhook_secret": "woo-secret",
            "reconcile_minutes": 0,
            "rate_per_second": 0,
        }
    }
    application = app_calling(raw, woo, database_url, clock)
    try:
        yield application, woo
    finally:
        application.close()


def woo_connect(app: Application, clock: SettableClock) -> None:
    done: list[dict[str, Any]] = []
    app.routes.channels["woo"].register_webhooks(PUBLIC, into=done)  # type: ignore[attr-defined]
    app.channel_services.record_registrations("woo", "woocommerce", done, clock.now())


def test_connecting_woocommerce_twice_makes_each_webhook_once(
    woo_app: tuple[Application, Woo], clock: SettableClock
) -> None:
    app, woo = woo_app
    woo_connect(app, clock)
    woo_connect(app, clock)
    assert sorted(h["topic"] for h in woo.webhooks.values()) == [
        "order.created",
        "order.deleted",
        "order.updated",
        "product.updated",
    ]
    assert all(h["delivery_url"] == WOO_URL and h["status"] == "active" for h in woo.webhooks.values())


def test_the_worker_re_enables_a_webhook_woocommerce_disabled_and_re_creates_a_deleted_one(
    woo_app: tuple[Application, Woo], clock: SettableClock, caplog: pytest.LogCaptureFixture
) -> None:
    app, woo = woo_app
    woo_connect(app, clock)
    by_topic = {h["topic"]: h["id"] for h in woo.webhooks.values()}
    woo.webhooks[by_topic["order.created"]]["status"] = "disabled"  # 5 failed deliveries
    del woo.webhooks[by_topic["product.updated"]]  # an admin deleted it
    woo.webhooks[999] = {"id": 999, "status": "disabled", "topic": "order.updated", "delivery_url": "https://elsewhere"}
    woo.operations()
    clock.advance(minutes=61)

    with caplog.at_level(logging.WARNING, logger="backorder.channels.services"):
        app.channel_services.tick(clock.now())

    assert woo.operations() == ["GET /webhooks", f"PUT /webhooks/{by_topic['order.created']}", "POST /webhooks"]
    assert woo.webhooks[by_topic["order.created"]]["status"] == "active"
    assert woo.webhooks[999]["status"] == "disabled"  # not ours: another URL
    rows = {r.topic: r for r in app.channel_services.registrations.for_channel("woo")}  # type: ignore[union-attr]
    assert rows["order.created"].provider_ref == str(by_topic["order.created"])
    assert rows["order.created"].registered_at == clock.now() and rows["order.created"].ok
    new_id = next(k for k, h in woo.webhooks.items() if h["topic"] == "product.updated")
    assert rows["product.updated"].provider_ref == str(new_id) and rows["product.updated"].registered_at == clock.now()
    assert "order.created subscription(s) on channel woo: re-enabled" in caplog.text
    assert "product.updated subscription(s) on channel woo: re-created" in caplog.text


def test_a_webhook_an_admin_paused_is_left_paused_and_reported(
    woo_app: tuple[Application, Woo], clock: SettableClock
) -> None:
    app, woo = woo_app
    woo_connect(app, clock)
    paused = next(h for h in woo.webhooks.values() if h["topic"] == "order.deleted")
    paused["status"] = "paused"
    clock.advance(minutes=61)

    entries = app.channel_services.check_subscriptions(clock.now())["woo"]

    assert paused["status"] == "paused"
    (failed,) = [e for e in entries if e["state"] == "failed"]
    assert failed["topic"] == "order.deleted" and "paused by an admin" in failed["error"]
    shown = app.webhook_registrations("channels.woo")
    assert shown is not None and shown.startswith("3 of 4 topic(s) registered") and "order.deleted:" in shown
