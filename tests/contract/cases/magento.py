"""Magento / Adobe Commerce: the events our Backorder_Sync module sends (fixtures the module's
README points to), an Adobe Commerce webhook signed with RSA, and outbound REST calls checked
against the vendored Swagger 2.0 file ``shared/vendor/magento/admin-schema-2.4.8.yaml``.

openapi-core reads OpenAPI 3 only, so the Swagger 2.0 check here is our own: the path must be one
of the spec's templates (after the ``/rest/<store>`` prefix), the method must be defined for it,
path and query parameters must be declared with the right type, and the JSON body is validated with
jsonschema (Draft 4, which Swagger 2.0 schemas are) against the operation's body schema with the
spec's ``definitions``, made strict: an object schema that lists ``properties`` rejects any other
property, so a misspelt field fails instead of being ignored by Magento.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import yaml
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from backorder.connectors.base import DeliveryReceipt, OrderTag, StockUpdate
from backorder.connectors.signatures import sign_standard_webhook
from backorder.domain.commands import CancelOrder, Command, NewLine, PlaceOrder, SetStockLevel, ShipLine
from tests.contract.framework import NOW, ContractCase, InboundSample, OutboundCall
from tests.vendor import vendor_file

REPO = Path(__file__).resolve().parents[3]
SWAGGER = vendor_file("magento/admin-schema-2.4.8.yaml")
FIXTURES = REPO / "integrations" / "magento" / "fixtures"
BASE_URL = "https://shop.example.test"
SECRET = "whsec_" + base64.b64encode(b"magento-module-secret-0001").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"magento-module-secret-0000").decode()
ADOBE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ADOBE_PUBLIC_PEM = (
    ADOBE_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
SIG_HEADERS = ("webhook-signature",)


# ---- Swagger 2.0 request validation ----------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _swagger() -> dict[str, Any]:
    with SWAGGER.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.lru_cache(maxsize=1)
def _strict_definitions() -> dict[str, Any]:
    return _strict(copy.deepcopy(_swagger()["definitions"]))


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    pattern = "".join(f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{pattern}$")


def _check_type(value: str, kind: str | None, what: str) -> None:
    if kind == "integer":
        assert re.fullmatch(r"-?\d+", value), f"{what} must be an integer, got {value!r}"
    elif kind == "number":
        float(value)


def validate_against_swagger(request: httpx.Request) -> None:
    spec = _swagger()
    match = re.match(r"^/rest/[A-Za-z0-9_]+(/V1/.*)$", request.url.path)
    assert match, f"{request.url.path} is not under /rest/<store>/V1"
    path = match.group(1)
    candidates = []
    for template, operations in spec["paths"].items():
        found = _template_regex(template).match(path)
        if found:
            candidates.append((template.count("{"), template, operations, found.groupdict()))
    assert candidates, f"{path} is not a path of the Magento 2.4.8 admin schema"
    _, template, operations, path_values = sorted(candidates, key=lambda c: c[0])[0]
    operation = operations.get(request.method.lower())
    assert operation, f"{request.method} is not defined for {template}"
    params = operation.get("parameters", [])
    for p in params:
        if p["in"] == "path":
            _check_type(path_values[p["name"]], p.get("type"), f"path parameter {p['name']}")
    declared_query = {p["name"]: p for p in params if p["in"] == "query"}
    for name, value in request.url.params.multi_items():
        assert name in declared_query, f"query parameter {name} is not declared for {request.method} {template}"
        _check_type(value, declared_query[name].get("type"), f"query parameter {name}")
    for name, p in declared_query.items():
        assert not p.get("required") or name in request.url.params, f"required query parameter {name} missing"
    body_params = [p for p in params if p["in"] == "body"]
    if request.content:
        assert body_params, f"{request.method} {template} takes no body"
        assert request.headers.get("content-type", "").startswith("application/json")
        schema = {**_strict(copy.deepcopy(body_params[0]["schema"])), "definitions": _strict_definitions()}
        jsonschema.Draft4Validator(schema).validate(json.loads(request.content))
    else:
        assert not body_params or not body_params[0]["schema"].get("required"), f"{template} needs a body"
    assert request.headers.get("authorization", "").startswith("Bearer "), "Magento integration token missing"


# ---- provider answers ------------------------------------------------------------------------


def _answer(state: str):
    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.endswith("/V1/orders"):
            return httpx.Response(
                200,
                json={
                    "items": [{"entity_id": 42, "increment_id": "000000042", "state": state}],
                    "search_criteria": {},
                    "total_count": 1,
                },
            )
        if request.url.path.endswith("/inventory/source-items"):
            return httpx.Response(200, json=[])
        return httpx.Response(200, json=True)

    return answer


def _answer_recent(request: httpx.Request) -> httpx.Response:
    """``GET /V1/orders`` by updated_at: the module fixture's order as the REST API returns it
    (sales-data-order-interface: the same fields, plus state and updated_at), and a cancelled one."""
    order = json.loads((FIXTURES / "order.placed.json").read_bytes())["data"]
    placed = {**order, "state": "processing", "status": "processing", "updated_at": "2026-11-27 09:40:00"}
    cancelled = {
        **order,
        "entity_id": 43,
        "increment_id": "000000043",
        "state": "canceled",
        "updated_at": "2026-11-27 09:45:00",
    }
    shipped = {
        **order,
        "entity_id": 44,
        "increment_id": "000000044",
        "state": "complete",
        "updated_at": "2026-11-27 09:50:00",
    }
    return httpx.Response(200, json={"items": [placed, cancelled, shipped], "search_criteria": {}, "total_count": 3})


def _answer_source_items(request: httpx.Request) -> httpx.Response:
    """``GET /V1/inventory/source-items`` (``inventory-api-data-source-item-search-results-interface``):
    the module fixture's item at the mapped source ``ws-london``, with the ``Date`` Magento sends."""
    items = [
        {"sku": "WN-CAD-RED-5ML", "source_code": "ws-london", "quantity": 12.0, "status": 1},
        {"sku": "WN-COTMAN-SET-12", "source_code": "ws-london", "quantity": 0, "status": 0},
    ]
    params = request.url.params
    criteria = {
        "filter_groups": [
            {
                "filters": [
                    {
                        "field": params["searchCriteria[filterGroups][0][filters][0][field]"],
                        "value": params["searchCriteria[filterGroups][0][filters][0][value]"],
                        "condition_type": params["searchCriteria[filterGroups][0][filters][0][conditionType]"],
                    }
                ]
            }
        ],
        "page_size": int(params["searchCriteria[pageSize]"]),
        "current_page": int(params["searchCriteria[currentPage]"]),
    }
    return httpx.Response(
        200,
        json={"items": items, "search_criteria": criteria, "total_count": len(items)},
        headers={"Date": "Fri, 27 Nov 2026 09:30:00 GMT"},
    )


def _stock_detail(connector: Any) -> str:
    """The pulled levels go through the module's parser into the same commands as its
    ``stock.source_items`` event, observed one second before Magento's ``Date``."""
    found = connector.current_stock()
    parsed = [cmd for _, body in found for cmd in connector.parse("stock.source_items", {}, body)]
    at = NOW.replace(second=0) - timedelta(seconds=1)
    source = "magento:contract.magento"
    assert parsed == [
        SetStockLevel("WN-CAD-RED-5ML", "london", 12, at, source),
        SetStockLevel("WN-COTMAN-SET-12", "london", 0, at, source),
    ], parsed
    return f"{len(found)} level(s)"


# ---- inbound samples -------------------------------------------------------------------------


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _standard(msg_id: str, *, secrets: tuple[str, ...] = (SECRET,)):
    def sign(body: bytes) -> dict[str, str]:
        ts = int(NOW.timestamp())
        signatures = " ".join(sign_standard_webhook(s, msg_id, ts, body) for s in secrets)
        return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signatures}

    return sign


def _adobe(body: bytes) -> dict[str, str]:
    signature = ADOBE_KEY.sign(base64.b64encode(body), padding.PKCS1v15(), hashes.SHA256())
    return {
        "x-adobe-commerce-webhook-signature": base64.b64encode(signature).decode(),
        "content-type": "application/json",
    }


def _expect(expected: list[Command]):
    def check(commands: list[Command]) -> None:
        assert commands == expected

    return check


def _recent_detail(connector: Any) -> str:
    """The pulled orders go through the module's parser: the open one is placed, the cancelled
    one cancelled, the complete one left out."""
    found = connector.recent_orders(NOW)
    parsed = [connector.parse(topic, {}, body) for _, body, _, topic in found]
    assert [type(cmds[0]).__name__ for cmds in parsed] == ["PlaceOrder", "CancelOrder"], parsed
    assert parsed[0][0].order_id == "contract.magento-000000042" and parsed[0][0].lines == PLACED.lines
    return f"{len(found)} order(s)"


PLACED = PlaceOrder(
    order_id="contract.magento-000000042",
    channel="contract.magento",
    placed_at=NOW.replace(hour=9, minute=29, second=57),
    lines=(NewLine(77, "WN-CAD-RED-5ML", 2), NewLine(78, "WN-COTMAN-SET-12", 1)),
    customer_email="ada@example.com",
    customer_phone="+441632960001",
    customer_name="Ada Lovelace",
    reference="000000042",  # the increment id: the number on the customer's confirmation
)

CASE = ContractCase(
    kind="magento",
    base_url=BASE_URL,
    settings={
        "platform": "magento",
        "base_url": BASE_URL,
        "access_token": "mg-integration-token-123",
        "webhook_secret": SECRET,
        "webhook_secrets": [OLD_SECRET],
        "adobe_public_keys": [ADOBE_PUBLIC_PEM],
        "source_locations": {"ws-london": "london"},
        "push_source_code": "default",
    },
    secret_fields=("access_token", "webhook_secret"),
    outbound=[
        OutboundCall(
            "push_stock",
            lambda c: c.push_stock(
                [StockUpdate("WN-CAD-RED-5ML", 5, "bo-1"), StockUpdate("WN-COTMAN-SET-12", 0, "bo-1")]
            ),
            ok_response=_answer("processing"),
            validate=validate_against_swagger,
            spec_source="shared/vendor/magento/admin-schema-2.4.8.yaml (POST /V1/inventory/source-items)",
        ),
        OutboundCall(
            "tag_order_backordered",
            lambda c: c.tag_order(
                OrderTag(
                    "bo-2",
                    "contract.magento-000000042",
                    "contract.magento-000000042",
                    True,
                    "backorder: WN-CAD-RED-5ML×2",
                )
            ),
            ok_response=_answer("processing"),
            validate=validate_against_swagger,
            spec_source="shared/vendor/magento/admin-schema-2.4.8.yaml (GET /V1/orders, POST /V1/orders/{id}/hold, /comments)",
        ),
        OutboundCall(
            "tag_order_released",
            lambda c: c.tag_order(
                OrderTag("bo-3", "contract.magento-000000042", "contract.magento-000000042", False, "ready to ship")
            ),
            ok_response=_answer("holded"),
            validate=validate_against_swagger,
            spec_source="shared/vendor/magento/admin-schema-2.4.8.yaml (GET /V1/orders, POST /V1/orders/{id}/unhold, /comments)",
        ),
        OutboundCall(
            "recent_orders",
            lambda c: DeliveryReceipt(detail=_recent_detail(c)),
            ok_response=_answer_recent,
            validate=validate_against_swagger,
            spec_source="shared/vendor/magento/admin-schema-2.4.8.yaml (GET /V1/orders, searchCriteria)",
        ),
        OutboundCall(
            "current_stock",
            lambda c: DeliveryReceipt(detail=_stock_detail(c)),
            ok_response=_answer_source_items,
            validate=validate_against_swagger,
            spec_source="shared/vendor/magento/admin-schema-2.4.8.yaml (GET /V1/inventory/source-items, searchCriteria)",
        ),
    ],
    inbound=[
        InboundSample(
            "module_order_placed",
            _fixture("order.placed.json"),
            _standard("mg-order-placed-42"),
            _expect([PLACED]),
            signature_headers=SIG_HEADERS,
        ),
        InboundSample(
            "module_order_placed_signed_with_the_old_secret_during_rotation",
            _fixture("order.placed.json"),
            _standard("mg-order-placed-42", secrets=(OLD_SECRET,)),
            _expect([PLACED]),
            signature_headers=SIG_HEADERS,
        ),
        InboundSample(
            "module_order_cancelled",
            _fixture("order.cancelled.json"),
            _standard("mg-order-cancelled-42"),
            _expect([CancelOrder("contract.magento-000000042", reason="cancelled in Magento")]),
            signature_headers=SIG_HEADERS,
        ),
        InboundSample(
            "module_shipment_created",
            _fixture("shipment.created.json"),
            _standard("mg-shipment-9"),
            _expect([ShipLine("contract.magento-000000042", 77, 2, "london")]),
            signature_headers=SIG_HEADERS,
        ),
        InboundSample(
            "module_source_items_read_only_mapped_sources",
            _fixture("stock.source_items.json"),
            _standard("mg-stock-5d0c"),
            _expect(
                [
                    SetStockLevel(
                        "WN-CAD-RED-5ML",
                        "london",
                        12,
                        NOW.replace(hour=9, minute=20, second=0),
                        "magento:contract.magento",
                    )
                ]
            ),
            signature_headers=SIG_HEADERS,
        ),
        InboundSample(
            "module_legacy_stock_item_on_the_push_source_is_ignored",
            _fixture("stock.item.json"),
            _standard("mg-stock-item-77aa"),
            _expect([]),
            signature_headers=SIG_HEADERS,
        ),
        InboundSample(
            "adobe_commerce_webhook_sales_order_place_after",
            _fixture("adobe.sales_order_place_after.json"),
            _adobe,
            _expect(
                [
                    PlaceOrder(
                        order_id="contract.magento-000000043",
                        channel="contract.magento",
                        placed_at=NOW.replace(hour=9, minute=40, second=12),
                        lines=(NewLine(80, "WN-CAD-RED-5ML", 3), NewLine(81, "ST-EASEL-CONF", 1)),
                        customer_email="grace@example.com",
                        customer_name="Grace Hopper",
                        reference="000000043",
                    )
                ]
            ),
            signature_headers=("x-adobe-commerce-webhook-signature",),
        ),
    ],
)
