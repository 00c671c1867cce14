"""The demo's sales channels: Shopify and WooCommerce orders arrive as signed webhooks in each
platform's shape through the ingress steps (channel, signature, inbox, processor), the POS/B2B
through the order API; a wrongly signed webhook is refused and stores nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from backorder import demo_platforms as platforms
from backorder.bootstrap import Application
from backorder.demo import DirectIngress, demo_config, run_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Application, dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("demo")
    app, summary = run_demo(folder, orders=40, seed=11, days=12, config=demo_config(folder))
    try:
        yield app, summary.as_json()
    finally:
        app.close()


def test_both_platforms_orders_arrive_through_the_webhook_ingress(demo: tuple[Application, dict[str, Any]]) -> None:
    app, data = demo
    assert data["orders_by_platform"]["shopify"] > 0 and data["orders_by_platform"]["woocommerce"] > 0
    rows = app.channel_services.inbox.list(None, "web", 500)
    created = [r for r in rows if r["topic"] == "orders/create"]
    assert len(created) == data["channels"]["web"]["orders"]
    assert all(r["platform"] == "shopify" and r["status"] == "processed" for r in created)
    woo = [r for r in app.channel_services.inbox.list(None, "wholesale", 500) if r["topic"] == "order.created"]
    assert len(woo) == data["channels"]["wholesale"]["orders"]
    assert all(r["event_key"].startswith("delivery:31:") for r in woo)  # keyed by the delivery header
    assert data["channels"]["b2b"]["inbox"] == {"processed": data["channels"]["b2b"]["orders"]}


def test_the_platform_bodies_parse_as_the_published_samples_do(demo: tuple[Application, dict[str, Any]]) -> None:
    app, _ = demo
    row = app.channel_services.inbox.list(None, "web", 500)[-1]
    stored = app.channel_services.inbox.get(row["id"])
    assert stored is not None
    body = json.loads(stored.body)
    assert body["admin_graphql_api_id"] == f"gid://shopify/Order/{body['id']}"
    assert {"current_quantity", "sku", "admin_graphql_api_id"} <= set(body["line_items"][0])


def test_a_wrongly_signed_webhook_is_refused_and_stores_nothing(demo: tuple[Application, dict[str, Any]]) -> None:
    app, _ = demo
    ingress = DirectIngress(app)
    customer = platforms.Customer("Eve", "Forger", "eve@example.com", None)
    body = json.dumps(
        platforms.shopify_order(9999, datetime(2026, 1, 1, tzinfo=UTC), [platforms.Line("X", 1)], customer)
    ).encode()
    headers = platforms.shopify_headers("orders/create", body, "forged-1", datetime(2026, 1, 1, tzinfo=UTC))
    before = len(app.channel_services.inbox.list(None, "web", 1000))
    assert ingress.webhook("shopify", "web", headers, body + b" ") == 401
    assert ingress.webhook("woocommerce", "web", headers, body) == 404  # platform mismatch
    assert len(app.channel_services.inbox.list(None, "web", 1000)) == before


def test_the_demo_database_is_where_the_summary_says(demo: tuple[Application, dict[str, Any]]) -> None:
    _, data = demo
    assert Path(data["database_url"].removeprefix("sqlite:///")).is_file()
