"""The demo's sales platforms: what a Shopify storefront and a WooCommerce shop send us (signed
webhook bodies in each platform's own shape), and an in-process stand-in for their APIs that
receives our stock pushes, tags and notes (no network: an ``httpx.MockTransport``).

The bodies follow the published samples the contract tests use: Shopify's ``orders/create``
example (shopify.dev, vendored under tests/fixtures/vendor/shopify) and WooCommerce's REST v3
order resource (woocommerce-rest-api-docs ``_orders.md``), signed as each platform signs them
(``X-Shopify-Hmac-Sha256`` / ``X-WC-Webhook-Signature``: base64 HMAC-SHA256 of the raw body)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

SHOPIFY_SECRET = "demo-shopify-app-secret"
WOO_SECRET = "demo-woocommerce-webhook-secret"
SHOP_DOMAIN = "backorder-demo.myshopify.com"
WOO_STORE = "https://wholesale.backorder-demo.test"
SHOPIFY_LOCATION = "7001"
WOO_WEBHOOK_ID = "31"


def _sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _shopify_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _gmt(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass
class Line:
    sku: str
    quantity: int
    name: str = ""


@dataclass
class Customer:
    first: str
    last: str
    email: str | None
    phone: str | None


@dataclass
class Catalog:
    """Deterministic platform ids for our SKUs (both platforms carry the same catalogue)."""

    skus: Sequence[str]
    index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {sku: i for i, sku in enumerate(self.skus)}

    def shopify_item(self, sku: str) -> str:
        return str(44_000_000_000 + self.index[sku])

    def shopify_variant(self, sku: str) -> str:
        return str(41_000_000_000 + self.index[sku])

    def woo_product(self, sku: str) -> int:
        return 5_000 + self.index[sku]

    def sku_of_shopify_item(self, item: str) -> str | None:
        number = int(item) - 44_000_000_000
        return self.skus[number] if 0 <= number < len(self.skus) else None


# --- webhook bodies ------------------------------------------------------------------------------


def shopify_order(number: int, placed: datetime, lines: Sequence[Line], customer: Customer) -> dict[str, Any]:
    """An ``orders/create`` body shaped like shopify.dev's example (the fields we and most
    apps read; ids as the platform sends them, the exact value in ``admin_graphql_api_id``)."""
    order_id = 6_100_000_000 + number
    stamp = _shopify_time(placed)
    items = []
    for position, line in enumerate(lines, start=1):
        item_id = order_id * 10 + position
        items.append(
            {
                "id": item_id,
                "admin_graphql_api_id": f"gid://shopify/LineItem/{item_id}",
                "current_quantity": line.quantity,
                "fulfillable_quantity": line.quantity,
                "fulfillment_service": "manual",
                "fulfillment_status": None,
                "gift_card": False,
                "name": line.name or line.sku,
                "price": "9.99",
                "product_exists": True,
                "quantity": line.quantity,
                "requires_shipping": True,
                "sku": line.sku,
                "taxable": True,
                "title": line.name or line.sku,
                "variant_id": None,
                "tax_lines": [],
                "duties": [],
                "discount_allocations": [],
            }
        )
    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "name": f"#{number}",
        "order_number": number,
        "number": number - 1000,
        "created_at": stamp,
        "processed_at": stamp,
        "updated_at": stamp,
        "cancelled_at": None,
        "cancel_reason": None,
        "closed_at": None,
        "confirmed": True,
        "currency": "GBP",
        "financial_status": "paid",
        "fulfillment_status": None,
        "email": customer.email or "",
        "contact_email": customer.email,
        "phone": customer.phone,
        "source_name": "web",
        "tags": "",
        "test": False,
        "billing_address": {"first_name": customer.first, "last_name": customer.last, "phone": customer.phone},
        "customer": {
            "id": 7_000_000 + number,
            "email": customer.email,
            "first_name": customer.first,
            "last_name": customer.last,
            "phone": customer.phone,
        },
        "line_items": items,
        "fulfillments": [],
        "refunds": [],
    }


def shopify_fulfillment(order: Mapping[str, Any], at: datetime, location: str = SHOPIFY_LOCATION) -> dict[str, Any]:
    """A ``fulfillments/create`` body (the REST fulfillment resource) shipping every line."""
    fulfillment_id = int(order["id"]) + 900_000_000_000
    return {
        "id": fulfillment_id,
        "admin_graphql_api_id": f"gid://shopify/Fulfillment/{fulfillment_id}",
        "order_id": order["id"],
        "status": "success",
        "created_at": _shopify_time(at),
        "updated_at": _shopify_time(at),
        "location_id": int(location),
        "tracking_company": "Royal Mail",
        "tracking_number": f"RM{fulfillment_id % 10**9:09d}GB",
        "line_items": [
            {k: item[k] for k in ("id", "admin_graphql_api_id", "sku", "quantity", "name")}
            for item in order["line_items"]
        ],
    }


def shopify_headers(topic: str, body: bytes, event: str, at: datetime) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": _sign(SHOPIFY_SECRET, body),
        "X-Shopify-Shop-Domain": SHOP_DOMAIN,
        "X-Shopify-API-Version": "2025-01",
        "X-Shopify-Webhook-Id": f"wh-{event}",
        "X-Shopify-Event-Id": event,
        "X-Shopify-Triggered-At": at.astimezone(UTC).isoformat(),
    }


def woo_order(
    number: int, placed: datetime, lines: Sequence[Line], customer: Customer, catalog: Catalog
) -> dict[str, Any]:
    """An ``order.created`` body: the REST v3 order resource (``_orders.md`` response example)."""
    order_id = 20_000 + number
    return {
        "id": order_id,
        "parent_id": 0,
        "number": str(order_id),
        "order_key": f"wc_order_demo{order_id}",
        "created_via": "checkout",
        "status": "processing",
        "currency": "GBP",
        "date_created": _gmt(placed),
        "date_created_gmt": _gmt(placed),
        "date_modified": _gmt(placed),
        "date_modified_gmt": _gmt(placed),
        "customer_id": 0,
        "billing": {
            "first_name": customer.first,
            "last_name": customer.last,
            "company": f"{customer.last} Studio",
            "email": customer.email or "",
            "phone": customer.phone or "",
        },
        "payment_method": "bacs",
        "payment_method_title": "Direct bank transfer",
        "line_items": [
            {
                "id": order_id * 10 + position,
                "name": line.name or line.sku,
                "product_id": catalog.woo_product(line.sku),
                "variation_id": 0,
                "quantity": line.quantity,
                "sku": line.sku,
                "price": 9.99,
                "meta_data": [],
            }
            for position, line in enumerate(lines, start=1)
        ],
        "meta_data": [],
    }


def woo_headers(topic: str, body: bytes, delivery: str) -> dict[str, str]:
    resource, event = topic.split(".", 1)
    return {
        "Content-Type": "application/json",
        "X-WC-Webhook-Source": WOO_STORE + "/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": _sign(WOO_SECRET, body),
        "X-WC-Webhook-ID": WOO_WEBHOOK_ID,
        "X-WC-Webhook-Delivery-ID": delivery,
    }


# --- the platforms' APIs, in process --------------------------------------------------------------


@dataclass
class PlatformSandbox:
    """Answers the calls our Shopify and WooCommerce connectors make, keeps what they set, and
    counts them per channel (the demo summary shows the counts)."""

    catalog: Catalog
    shopify_available: dict[str, int] = field(default_factory=dict)
    woo_stock: dict[int, int] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def client(self, channel: str, base_url: str) -> httpx.Client:
        handler = self._shopify if "myshopify" in base_url else self._woo

        def answer(request: httpx.Request) -> httpx.Response:
            request.read()
            with self._lock:  # one call at a time, as the dispatcher sends on several threads
                return handler(channel, request)

        return httpx.Client(base_url=base_url, transport=httpx.MockTransport(answer))

    def _shopify(self, channel: str, request: httpx.Request) -> httpx.Response:
        payload = json.loads(request.content)
        query, variables = payload["query"], payload.get("variables") or {}
        name = re.search(r"(?:query|mutation)\s+(\w+)", query)
        operation = name.group(1) if name else "?"
        self.calls[f"{channel}:{operation}"] += 1
        if operation == "ItemsBySku":
            skus = re.findall(r'sku:"([^"]+)"', variables.get("query", ""))
            nodes = [
                {
                    "id": f"gid://shopify/ProductVariant/{self.catalog.shopify_variant(s)}",
                    "sku": s,
                    "inventoryItem": {"id": f"gid://shopify/InventoryItem/{self.catalog.shopify_item(s)}"},
                }
                for s in skus
                if s in self.catalog.index
            ]
            return httpx.Response(200, json={"data": {"productVariants": {"nodes": nodes}}})
        if operation == "CurrentLevels":
            nodes = [
                {
                    "id": gid,
                    "inventoryLevel": {
                        "quantities": [{"name": "available", "quantity": self.shopify_available.get(gid, 0)}]
                    },
                }
                for gid in variables["ids"]
            ]
            return httpx.Response(200, json={"data": {"nodes": nodes}})
        if operation == "SetAvailable":
            for q in variables["input"]["quantities"]:
                self.shopify_available[q["inventoryItemId"]] = q["quantity"]
                self.calls[f"{channel}:skus_set"] += 1
            group = {"id": f"gid://shopify/InventoryAdjustmentGroup/{self.calls[f'{channel}:SetAvailable']}"}
            return httpx.Response(
                200, json={"data": {"inventorySetQuantities": {"inventoryAdjustmentGroup": group, "userErrors": []}}}
            )
        if operation in ("TagOrder", "UntagOrder"):
            key = "tagsAdd" if operation == "TagOrder" else "tagsRemove"
            return httpx.Response(200, json={"data": {key: {"node": {"id": variables["id"]}, "userErrors": []}}})
        if operation == "OrderFulfillmentOrders":
            number = variables["id"].rsplit("/", 1)[-1]
            held = self.calls[f"{channel}:held:{number}"] > 0
            holds = [{"id": f"gid://shopify/FulfillmentHold/{number}", "handle": "backorder"}] if held else []
            fulfillment_order = {
                "id": f"gid://shopify/FulfillmentOrder/{number}",
                "status": "ON_HOLD" if held else "OPEN",
                "fulfillmentHolds": holds,
            }
            order = {"id": variables["id"], "fulfillmentOrders": {"nodes": [fulfillment_order]}}
            return httpx.Response(200, json={"data": {"order": order}})
        if operation == "HoldFulfillmentOrder":
            self.calls[f"{channel}:held:{variables['id'].rsplit('/', 1)[-1]}"] = 1
            return httpx.Response(
                200, json={"data": {"fulfillmentOrderHold": {"fulfillmentHold": {"id": "h"}, "userErrors": []}}}
            )
        if operation == "ReleaseFulfillmentOrder":
            self.calls[f"{channel}:held:{variables['id'].rsplit('/', 1)[-1]}"] = 0
            return httpx.Response(
                200,
                json={"data": {"fulfillmentOrderReleaseHold": {"fulfillmentOrder": {"id": "f"}, "userErrors": []}}},
            )
        return httpx.Response(200, json={"errors": [{"message": f"the demo sandbox does not answer {operation}"}]})

    def _woo(self, channel: str, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/wp-json/wc/v3")
        if request.method == "GET" and path == "/products":
            self.calls[f"{channel}:GET /products"] += 1
            sku = request.url.params.get("sku", "")
            found = (
                [{"id": self.catalog.woo_product(sku), "sku": sku, "parent_id": 0}] if sku in self.catalog.index else []
            )
            return httpx.Response(200, json=found)
        if request.method == "POST" and path.endswith("/batch"):
            self.calls[f"{channel}:POST /products/batch"] += 1
            body = json.loads(request.content)
            for update in body.get("update", []):
                self.woo_stock[update["id"]] = update["stock_quantity"]
                self.calls[f"{channel}:skus_set"] += 1
            return httpx.Response(
                200, json={"update": [{"id": u["id"], "stock_quantity": u["stock_quantity"]} for u in body["update"]]}
            )
        if request.method == "POST" and path.endswith("/notes"):
            self.calls[f"{channel}:POST /orders/notes"] += 1
            return httpx.Response(201, json={"id": self.calls[f"{channel}:POST /orders/notes"], "customer_note": False})
        if request.method == "PUT" and path.startswith("/orders/"):
            self.calls[f"{channel}:PUT /orders"] += 1
            return httpx.Response(200, json={"id": int(path.rsplit("/", 1)[-1]), "meta_data": []})
        return httpx.Response(404, json={"code": "rest_no_route", "message": "not in the demo sandbox"})

    def summary(self, channel: str) -> dict[str, int]:
        prefix = f"{channel}:"
        counts = {k.removeprefix(prefix): n for k, n in self.calls.items() if k.startswith(prefix)}
        return {k: n for k, n in sorted(counts.items()) if not k.startswith("held:")}
