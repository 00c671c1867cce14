"""End to end: the real `backorder serve` process on a loopback port, a temporary config and
SQLite database, fake Shopify and WooCommerce API servers on loopback, and signed webhooks for
two channels of different platforms. It sees the backorders recorded, the sellable quantities
pushed to both platforms, the Shopify tag and fulfillment hold, and the WooCommerce note and meta."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from backorder.bootstrap import bootstrap, read_config
from backorder.domain import commands as c
from backorder.store import tables as t
from tests.e2e.fake_platforms import Recorded, fake_server

SHOP_SECRET = "e2e-shopify-secret"
WOO_SECRET = "e2e-woo-secret"
BACKORDER = Path(sys.executable).parent / "backorder"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # bounded: a polling loop with a deadline, not a sleep for timing
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def platforms() -> Iterator[tuple[str, Recorded, str, Recorded]]:
    with fake_server("shopify") as (shop_url, shop), fake_server("woocommerce") as (woo_url, woo):
        yield shop_url, shop, woo_url, woo


@pytest.fixture
def server(tmp_path: Path, platforms: tuple[str, Recorded, str, Recorded]) -> Iterator[dict[str, Any]]:
    shop_url, _, woo_url, _ = platforms
    port = free_port()
    db = tmp_path / "e2e.db"
    config = tmp_path / "backorder.toml"
    config.write_text(
        f"""
database_url = "sqlite:///{db}"
locations = ["main"]

[server]
host = "127.0.0.1"
port = {port}
public_url = "http://127.0.0.1:{port}"

[worker]
poll_interval_seconds = 0.05
bop_interval_minutes = 0

[channels.web]
platform = "shopify"
base_url = "{shop_url}"
access_token = "${{E2E_SHOPIFY_TOKEN}}"
webhook_secret = "${{E2E_SHOPIFY_SECRET}}"
location_map = {{ "11" = "main" }}
push_window_seconds = 0.2
reconcile_minutes = 0
allowed_hosts = ["127.0.0.1"]

[channels.woo]
platform = "woocommerce"
base_url = "{woo_url}"
consumer_key = "ck_e2e"
consumer_secret = "${{E2E_WOO_SECRET}}"
webhook_secret = "{WOO_SECRET}"
push_window_seconds = 0.2
reconcile_minutes = 0
allowed_hosts = ["127.0.0.1"]
""",
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "E2E_SHOPIFY_TOKEN": "shpat_e2e",
        "E2E_SHOPIFY_SECRET": SHOP_SECRET,
        "E2E_WOO_SECRET": "cs_e2e",
        "BACKORDER_CONFIG": str(config),
    }
    env.pop("BACKORDER_DATABASE_URL", None)
    seed = bootstrap(read_config(config, environ=env), sandbox_folder=False, rng=random.Random(1))
    try:
        seed.bus.handle(c.UpsertSku("INK", "Sepia ink 30 ml"))
        seed.bus.handle(c.UpsertSku("PEN", "Dip pen"))
        seed.bus.handle(c.AdjustStock("INK", "main", 2))
    finally:
        seed.close()
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [str(BACKORDER), "--config", str(config), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"server exited: {(tmp_path / 'server.log').read_text()[-2000:]}")
            try:
                return httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("the server to answer /healthz", healthy)
        yield {"base": base, "db": db, "process": process, "log": tmp_path / "server.log"}
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()


def signed(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def lines(db: Path) -> dict[str, tuple[int, int]]:
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(t.order_lines.c.order_id, t.order_lines.c.allocated, t.order_lines.c.backordered)
            ).all()
        return {r.order_id: (r.allocated, r.backordered) for r in rows}
    finally:
        engine.dispose()


def graphql_ops(recorded: Recorded, name: str) -> list[dict[str, Any]]:
    return [r["body"]["variables"] for r in recorded.snapshot() if r["body"] and f" {name}(" in r["body"]["query"]]


def test_two_channels_of_different_platforms_run_side_by_side(
    server: dict[str, Any], platforms: tuple[str, Recorded, str, Recorded]
) -> None:
    _, shop, _, woo = platforms
    base = server["base"]
    shop_order = json.dumps(
        {
            "id": 7001,
            "admin_graphql_api_id": "gid://shopify/Order/7001",
            "created_at": "2026-11-27T09:00:00Z",
            "updated_at": "2026-11-27T09:00:00Z",
            "email": "ada@example.com",
            "customer": {"first_name": "Ada", "last_name": "Lovelace"},
            "line_items": [{"id": 1, "sku": "INK", "quantity": 3}],
        }
    ).encode()
    response = httpx.post(
        f"{base}/webhooks/shopify/web",
        content=shop_order,
        headers={
            "X-Shopify-Hmac-Sha256": signed(SHOP_SECRET, shop_order),
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Event-Id": "evt-7001",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 200, response.text
    woo_order = json.dumps(
        {
            "id": 8001,
            "status": "processing",
            "date_created_gmt": "2026-11-27T09:01:00",
            "date_modified_gmt": "2026-11-27T09:01:00",
            "billing": {"first_name": "Bea", "last_name": "Potter", "email": "bea@example.com"},
            "line_items": [{"id": 1, "product_id": 96, "variation_id": 0, "sku": "PEN", "quantity": 2}],
        }
    ).encode()
    response = httpx.post(
        f"{base}/webhooks/woocommerce/woo",
        content=woo_order,
        headers={
            "X-WC-Webhook-Signature": signed(WOO_SECRET, woo_order),
            "X-WC-Webhook-Topic": "order.created",
            "X-WC-Webhook-Delivery-ID": "d-8001",
            "X-WC-Webhook-ID": "12",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 200, response.text
    bad = httpx.post(
        f"{base}/webhooks/woocommerce/woo",
        content=woo_order,
        headers={"X-WC-Webhook-Signature": signed("wrong", woo_order), "X-WC-Webhook-Topic": "order.created"},
    )
    assert bad.status_code == 401

    # backorders recorded for both channels
    found = wait_for("both orders processed", lambda: (lambda got: got if len(got) == 2 else None)(lines(server["db"])))
    assert found == {"web-7001": (2, 1), "woo-8001": (0, 2)}

    # the sellable quantity of what changed pushed to both platforms (INK: 2 on hand, 2 allocated → 0;
    # PEN had nothing to give, so its sellable quantity did not change and is not pushed)
    def shop_pushes() -> dict[str, int] | None:
        quantities = {
            q["inventoryItemId"]: q["quantity"]
            for v in graphql_ops(shop, "inventorySetQuantities")
            for q in v["input"]["quantities"]
        }
        return quantities if quantities.get("gid://shopify/InventoryItem/901") == 0 else None  # the latest push

    def woo_pushes() -> dict[int, int] | None:
        got = {
            u["id"]: u["stock_quantity"]
            for r in woo.snapshot()
            if r["path"] == "/wp-json/wc/v3/products/batch"
            for u in r["body"]["update"]
        }
        return got if got.get(95) == 0 else None  # the latest push

    assert wait_for("stock pushed to Shopify", shop_pushes) == {"gid://shopify/InventoryItem/901": 0}
    assert wait_for("stock pushed to WooCommerce", woo_pushes) == {95: 0}
    assert all(
        u["backorders"] == "notify" for r in woo.snapshot() if r["path"].endswith("/batch") for u in r["body"]["update"]
    )
    set_calls = [r for r in shop.snapshot() if r["body"] and "mutation SetAvailable" in r["body"]["query"]]
    assert all(r["headers"]["x-shopify-access-token"] == "shpat_e2e" for r in set_calls)

    # the Shopify order tagged and its fulfillment order held; the WooCommerce order noted
    tagged = wait_for("Shopify tag", lambda: graphql_ops(shop, "tagsAdd"))
    assert tagged[0] == {"id": "gid://shopify/Order/7001", "tags": ["backordered"]}
    held = wait_for("fulfillment hold", lambda: graphql_ops(shop, "fulfillmentOrderHold"))
    assert (
        held[0]["id"] == "gid://shopify/FulfillmentOrder/77" and held[0]["hold"]["reason"] == "INVENTORY_OUT_OF_STOCK"
    )
    notes = wait_for("Woo note", lambda: [r for r in woo.snapshot() if r["path"] == "/wp-json/wc/v3/orders/8001/notes"])
    assert "PEN" in notes[0]["body"]["note"]
    meta = wait_for(
        "Woo meta",
        lambda: [r for r in woo.snapshot() if r["method"] == "PUT" and r["path"] == "/wp-json/wc/v3/orders/8001"],
    )
    assert meta[0]["body"]["meta_data"] == [{"key": "_backorder_status", "value": "backordered"}]
    assert all(r["headers"]["authorization"].startswith("Basic ") for r in woo.snapshot())
