"""WooCommerce: no OpenAPI is published, so requests are checked against what the REST API v3
reference says (https://woocommerce.github.io/woocommerce-rest-api-docs/ — source
woocommerce/woocommerce-rest-api-docs, source/includes/wp-api-v3/_products.md, _product-variations.md,
_orders.md, _order-notes.md, _order-refunds.md, _webhooks.md): the endpoint and method exist, query parameters are
documented ones, body fields are documented properties with the documented types and enums, and
batch requests stay within the documented 100 objects.

Webhook bodies are the resource as the REST API returns it (_webhooks.md: "the payload is
JSON-encoded and for API resources ... identical to the API response"); the samples below follow
the order and product response examples of that reference. Signatures use the algorithm of
``WC_Webhook::generate_signature`` (base64 HMAC-SHA256 of the body with the secret).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime
from typing import Any

import httpx

from backorder.connectors.base import DeliveryReceipt, OrderTag, StockUpdate
from backorder.connectors.woocommerce.mapping import ItemRef, MemoryDirectory
from backorder.domain.commands import CancelOrder, Command, NewLine, PlaceOrder, SetStockLevel, ShipSku
from tests.contract.framework import ContractCase, InboundSample, OutboundCall

SPEC = "https://woocommerce.github.io/woocommerce-rest-api-docs/ (REST API v3 reference)"
SECRET = "woo-webhook-secret"
CHANNEL = "contract.woocommerce"
BASE = "/wp-json/wc/v3"

ORDER = {
    "id": 727,
    "parent_id": 0,
    "number": "727",
    "status": "processing",
    "currency": "USD",
    "date_created": "2017-03-22T16:28:02",
    "date_created_gmt": "2017-03-22T19:28:02",
    "date_modified": "2017-03-22T16:28:08",
    "date_modified_gmt": "2017-03-22T19:28:08",
    "customer_id": 0,
    "billing": {"first_name": "John", "last_name": "Doe", "email": "john.doe@example.com", "phone": "(555) 555-5555"},
    "line_items": [
        {"id": 315, "name": "Woo Single #1", "product_id": 93, "variation_id": 0, "quantity": 2, "sku": "", "price": 3},
        {
            "id": 316,
            "name": "Ship Your Idea - Color: Black",
            "product_id": 22,
            "variation_id": 23,
            "quantity": 1,
            "sku": "WN-1-BLK",
            "price": 12,
        },
        {
            "id": 317,
            "name": "Cadmium Red",
            "product_id": 95,
            "variation_id": 0,
            "quantity": 3,
            "sku": "WN-1",
            "price": 9,
        },
    ],
    "meta_data": [],
}
PRODUCT = {
    "id": 95,
    "name": "Cadmium Red",
    "sku": "WN-1",
    "type": "simple",
    "manage_stock": True,
    "stock_quantity": 12,
    "backorders": "no",
    "parent_id": 0,
    "date_modified_gmt": "2026-11-27T08:00:00",
}

VARIABLE = {  # a variable product (its stock is kept per variation)
    "id": 22,
    "name": "Ship Your Idea",
    "sku": "",
    "type": "variable",
    "manage_stock": False,
    "stock_quantity": None,
    "parent_id": 0,
    "date_modified_gmt": "2026-11-27T08:00:00",
}
VARIATION = {  # _product-variations.md response fields we read
    "id": 23,
    "sku": "WN-1-BLK",
    "manage_stock": True,
    "stock_quantity": 4,
    "backorders": "notify",
    "parent_id": 22,
    "date_modified_gmt": "2026-11-27T08:30:00",
}

REFUND = {  # _order-refunds.md, "List all refunds" response example (links left out)
    "id": 724,
    "date_created": "2017-03-21T16:55:37",
    "date_created_gmt": "2017-03-21T19:55:37",
    "amount": "9.00",
    "reason": "",
    "refunded_by": 1,
    "refunded_payment": False,
    "meta_data": [],
    "line_items": [
        {
            "id": 314,
            "name": "Woo Album #2",
            "product_id": 87,
            "variation_id": 0,
            "quantity": -1,
            "tax_class": "",
            "subtotal": "-9.00",
            "subtotal_tax": "0.00",
            "total": "-9.00",
            "total_tax": "0.00",
            "taxes": [],
            "meta_data": [{"id": 2076, "key": "_refunded_item_id", "value": "311"}],
            "sku": "",
            "price": -9,
        }
    ],
}

DISABLED_WEBHOOK = {  # _webhooks.md, "Retrieve a webhook" response shape (links left out), ours and disabled
    "id": 142,
    "name": "backorder order.updated",
    "status": "disabled",
    "topic": "order.updated",
    "resource": "order",
    "event": "updated",
    "hooks": ["woocommerce_process_shop_order_meta", "woocommerce_api_edit_order"],
    "delivery_url": f"https://backorder.example.com/webhooks/woocommerce/{CHANNEL}",
    "date_created": "2016-05-15T23:17:52",
    "date_created_gmt": "2016-05-15T20:17:52",
    "date_modified": "2016-05-15T23:17:52",
    "date_modified_gmt": "2016-05-15T20:17:52",
}

_TYPES = {"integer": int, "boolean": bool, "string": str, "array": list, "object": dict}
PRODUCT_BATCH_FIELDS = {"id": "integer", "manage_stock": "boolean", "stock_quantity": "integer", "backorders": "string"}
ENUMS = {
    "backorders": {"no", "notify", "yes"},
    "status": {"active", "paused", "disabled"},
    "topic": {
        f"{r}.{e}"
        for r in ("coupon", "customer", "order", "product")
        for e in ("created", "updated", "deleted", "restored")
    },
}
ROUTES: list[tuple[str, str, dict[str, str], dict[str, str]]] = [
    # method, path regex, documented query parameters used, documented body fields (top level)
    ("GET", rf"{BASE}/products", {"sku": "string", "page": "integer", "per_page": "integer"}, {}),
    ("GET", rf"{BASE}/products/\d+/variations", {"page": "integer", "per_page": "integer"}, {}),
    ("POST", rf"{BASE}/products/batch", {}, {"update": "array", "create": "array", "delete": "array"}),
    ("POST", rf"{BASE}/products/\d+/variations/batch", {}, {"update": "array", "create": "array", "delete": "array"}),
    (
        "POST",
        rf"{BASE}/orders/\d+/notes",
        {},
        {"note": "string", "customer_note": "boolean", "added_by_user": "boolean"},
    ),
    ("PUT", rf"{BASE}/orders/\d+", {}, {"meta_data": "array", "status": "string"}),
    (
        "POST",
        rf"{BASE}/webhooks",
        {},
        {"name": "string", "status": "string", "topic": "string", "delivery_url": "string", "secret": "string"},
    ),
    ("GET", rf"{BASE}/orders/\d+/refunds", {"page": "integer", "per_page": "integer"}, {}),
    ("GET", rf"{BASE}/webhooks", {"page": "integer", "per_page": "integer"}, {}),
    ("PUT", rf"{BASE}/webhooks/\d+", {}, {"status": "string"}),
    (
        "GET",
        rf"{BASE}/orders",
        {
            "modified_after": "string",
            "dates_are_gmt": "boolean",
            "per_page": "integer",
            "page": "integer",
            "orderby": "string",
            "order": "string",
        },
        {},
    ),
]


def _typed(value: Any, kind: str, where: str) -> None:
    if kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), f"{where} must be an integer"
    elif kind == "boolean" and isinstance(value, str):
        assert value in ("true", "false"), f"{where} must be a boolean"
    else:
        assert isinstance(value, _TYPES[kind]), f"{where} must be {kind}"
    if where.rsplit(".", 1)[-1] in ENUMS:
        assert value in ENUMS[where.rsplit(".", 1)[-1]], f"{where}={value!r} is not a documented option"


def validate_request(request: httpx.Request) -> None:
    assert request.headers.get("Authorization", "").startswith("Basic "), "basic auth with the consumer key is required"
    path = request.url.path
    route = next((r for r in ROUTES if r[0] == request.method and re.fullmatch(r[1], path)), None)
    assert route is not None, f"{request.method} {path} is not a documented endpoint we use"
    _, _, params, fields = route
    for name, value in request.url.params.multi_items():
        assert name in params, f"query parameter {name!r} is not documented for {path}"
        kind = params[name]
        if kind == "integer":
            assert value.isdigit(), f"{name} must be an integer"
            if name == "per_page":
                assert 1 <= int(value) <= 100, "per_page is at most 100"
        elif kind == "boolean":
            assert value in ("true", "false")
    if request.content:
        body = json.loads(request.content)
        for key, value in body.items():
            assert key in fields, f"{key!r} is not a documented property for {request.method} {path}"
            _typed(value, fields[key], key)
        if path.endswith("/batch"):
            total = sum(len(body.get(k, [])) for k in ("create", "update", "delete"))
            assert 1 <= total <= 100, "a batch holds 1 to 100 objects"
            for item in body.get("update", []):
                assert "id" in item, "batch updates name the id"
                for key, value in item.items():
                    assert key in PRODUCT_BATCH_FIELDS, f"{key!r} is not a product property we may set"
                    _typed(value, PRODUCT_BATCH_FIELDS[key], f"update.{key}")
        if path.endswith("/notes"):
            assert body.get("note"), "note is required"
        for meta in body.get("meta_data", []):
            assert set(meta) <= {"key", "value"} and isinstance(meta.get("key"), str)
        if "topic" in body:
            _typed(body["topic"], "string", "topic")
            assert body.get("delivery_url", "").startswith(("http://", "https://"))


def answer(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if request.method == "GET" and path == f"{BASE}/products" and "page" in request.url.params:
        return httpx.Response(200, json=[PRODUCT, VARIABLE] if request.url.params["page"] == "1" else [])
    if request.method == "GET" and path == f"{BASE}/products/22/variations":
        return httpx.Response(200, json=[VARIATION] if request.url.params["page"] == "1" else [])
    if request.method == "GET" and path == f"{BASE}/products":
        sku = request.url.params.get("sku")
        if sku == "WN-1":
            return httpx.Response(200, json=[PRODUCT])
        if sku == "WN-1-BLK":
            return httpx.Response(200, json=[{"id": 23, "sku": "WN-1-BLK", "parent_id": 22}])
        return httpx.Response(200, json=[])
    if path.endswith("/batch"):
        body = json.loads(request.content)
        return httpx.Response(
            200, json={"update": [{"id": u["id"], "stock_quantity": u["stock_quantity"]} for u in body["update"]]}
        )
    if path.endswith("/notes"):
        return httpx.Response(
            201, json={"id": 281, "note": json.loads(request.content)["note"], "customer_note": False}
        )
    if request.method == "PUT" and path.startswith(f"{BASE}/orders/"):
        return httpx.Response(200, json={**ORDER, "meta_data": json.loads(request.content)["meta_data"]})
    if request.method == "GET" and path == f"{BASE}/webhooks":  # one of ours, disabled by failures
        return httpx.Response(200, json=[DISABLED_WEBHOOK] if request.url.params.get("page") == "1" else [])
    if request.method == "PUT" and path.startswith(f"{BASE}/webhooks/"):
        return httpx.Response(200, json={**DISABLED_WEBHOOK, **json.loads(request.content)})
    if path == f"{BASE}/webhooks":
        return httpx.Response(201, json={"id": 143, **json.loads(request.content)})
    if path == f"{BASE}/orders":
        return httpx.Response(200, json=[ORDER] if request.url.params.get("page") == "1" else [])
    if path == f"{BASE}/orders/727/refunds":
        return httpx.Response(200, json=[REFUND] if request.url.params.get("page") == "1" else [])
    return httpx.Response(404, json={"code": "rest_no_route"})


def _sign(topic: str, delivery: str) -> Any:
    def sign(body: bytes) -> dict[str, str]:
        signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
        return {
            "X-WC-Webhook-Signature": signature,
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": topic.split(".")[0],
            "X-WC-Webhook-Event": topic.split(".")[1],
            "X-WC-Webhook-ID": "143",
            "X-WC-Webhook-Delivery-ID": delivery,
            "X-WC-Webhook-Source": "https://shop.example.test/",
        }

    return sign


def _sample(name: str, topic: str, data: dict[str, Any], expect: Any) -> InboundSample:
    return InboundSample(
        name,
        json.dumps(data).encode(),
        _sign(topic, f"d-{name}"),
        expect,
        signature_headers=("X-WC-Webhook-Signature",),
    )


def _exact(expected: list[Command]) -> Any:
    def check(got: list[Command]) -> None:
        assert got == expected, got

    return check


PLACED = PlaceOrder(
    f"{CHANNEL}-727",
    CHANNEL,
    datetime(2017, 3, 22, 19, 28, 2, tzinfo=UTC),
    (NewLine(2, "WN-1-BLK", 1), NewLine(3, "WN-1", 3)),
    customer_email="john.doe@example.com",
    customer_phone="(555) 555-5555",
    customer_name="John Doe",
    reference="727",  # the order's "number"
)

DIRECTORY = MemoryDirectory()
DIRECTORY.remember([ItemRef("WN-1-BLK", "23", None, "22")])

CASE = ContractCase(
    kind="woocommerce",
    settings={
        "platform": "woocommerce",
        "store_url": "https://shop.example.test",
        "consumer_key": "ck_contract",
        "consumer_secret": "cs_contract",
        "webhook_secret": SECRET,
        "stock_source": True,
        "stock_location": "main",
    },
    secret_fields=("consumer_key", "consumer_secret", "webhook_secret"),
    base_url="https://shop.example.test",
    extras={"item_directory": DIRECTORY},
    inbound=[
        _sample("order-created", "order.created", ORDER, _exact([PLACED])),
        _sample("order-updated", "order.updated", {**ORDER, "status": "on-hold"}, _exact([PLACED])),
        _sample(
            "order-updated-cancelled",
            "order.updated",
            {**ORDER, "status": "cancelled"},
            _exact([CancelOrder(f"{CHANNEL}-727", reason="cancelled on woocommerce")]),
        ),
        _sample("order-created-unpaid", "order.created", {**ORDER, "status": "pending"}, _exact([])),
        _sample(  # a full refund: the status says it all, the refunds need not be read
            "order-updated-refunded",
            "order.updated",
            {**ORDER, "status": "refunded", "refunds": [{"id": 724, "reason": "", "total": "-33.00"}]},
            _exact([CancelOrder(f"{CHANNEL}-727", reason="refunded on woocommerce")]),
        ),
        _sample(
            "order-updated-completed",
            "order.updated",
            {**ORDER, "status": "completed", "date_completed_gmt": "2017-03-22T20:00:00"},
            _exact(
                [
                    PLACED,
                    ShipSku(f"{CHANNEL}-727", "WN-1-BLK", 1, "main", shipment_ref="woocommerce:completed:727:316"),
                    ShipSku(f"{CHANNEL}-727", "WN-1", 3, "main", shipment_ref="woocommerce:completed:727:317"),
                ]
            ),
        ),
        _sample(
            "order-deleted",
            "order.deleted",
            {"id": 727},
            _exact([CancelOrder(f"{CHANNEL}-727", reason="deleted on woocommerce")]),
        ),
        _sample(
            "product-updated",
            "product.updated",
            PRODUCT,
            _exact(
                [
                    SetStockLevel(
                        "WN-1", "main", 12, observed_at=datetime(2026, 11, 27, 8, 0, tzinfo=UTC), source="woocommerce"
                    )
                ]
            ),
        ),
    ],
    outbound=[
        OutboundCall(
            "push_stock",
            lambda c: c.push_stock([StockUpdate("WN-1", 5, "bo-4"), StockUpdate("WN-1-BLK", 0, "bo-4")]),
            answer,
            validate_request,
            SPEC,
        ),
        OutboundCall(
            "tag_order",
            lambda c: c.tag_order(OrderTag("bo-5", f"{CHANNEL}-727", f"{CHANNEL}-727", True, "backorder: WN-1×3")),
            answer,
            validate_request,
            SPEC,
        ),
        OutboundCall(
            "connect",
            lambda c: DeliveryReceipt(detail="; ".join(c.connect("https://backorder.example.com"))),
            answer,
            validate_request,
            SPEC,
        ),
        OutboundCall(
            "current_stock",
            lambda c: DeliveryReceipt(detail=str(len(c.current_stock()))),
            answer,
            validate_request,
            SPEC,
        ),
        OutboundCall(  # read before a partially refunded order is parsed (WooCommerceConnector.enrich)
            "order_refunds",
            lambda c: DeliveryReceipt(detail=f"{len(c.order_refunds('727'))} refund(s)"),
            answer,
            validate_request,
            SPEC,
        ),
        OutboundCall(
            "recent_orders",
            lambda c: DeliveryReceipt(detail=str(len(c.recent_orders(datetime(2026, 11, 27, tzinfo=UTC))))),
            answer,
            validate_request,
            SPEC,
        ),
    ],
)
