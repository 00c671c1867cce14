"""Salesforce B2C Commerce: the events our int_backorder job step sends (fixtures its README points
to) and the outbound calls, each checked against its source of truth:

- SCAPI Orders calls: openapi-core against ``shared/vendor/sfcc/orders-oas-v1-public.yaml`` (OAS 3);
- the Account Manager token request: RFC 6749 §4.4 client credentials, the token URL of that OAS's
  ``AmOAuth2`` security scheme;
- OCAPI Data inventory calls: no machine-readable spec is vendored; checked against the documented
  resource (OCAPI Data API 23.2, ProductInventoryRecords: ``PATCH /inventory_lists/{inventory_list_id}/
  product_inventory_records/{product_id}``, body a ProductInventoryRecord whose ``allocation`` is a
  ProductInventoryRecordAllocation ``{amount: Decimal}``; ``GET /inventory_lists/{inventory_list_id}/
  product_inventory_records?start={Integer}&count={Integer}&select={String}`` answering a
  ProductInventoryRecords document ``{count, data, next, previous, select, start, total}``).
"""

from __future__ import annotations

import base64
import functools
import json
import re
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import yaml
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from backorder.connectors.base import DeliveryReceipt, OrderTag, StockUpdate
from backorder.connectors.signatures import sign_standard_webhook
from backorder.domain.commands import CancelOrder, Command, NewLine, PlaceOrder, SetStockLevel
from tests.contract.framework import NOW, ContractCase, InboundSample, OutboundCall
from tests.vendor import vendor_file

REPO = Path(__file__).resolve().parents[3]
OAS = vendor_file("sfcc/orders-oas-v1-public.yaml")
FIXTURES = REPO / "integrations" / "sfcc" / "fixtures"
OCAPI_HOST = "https://zzxy-001.dx.commercecloud.salesforce.com"
TOKEN_URL = "https://account.demandware.com/dwsso/oauth2/access_token"
SECRET = "whsec_" + base64.b64encode(b"sfcc-cartridge-secret-0001").decode()
CHANNEL = "contract.sfcc"


class _OasRequest:
    """An httpx request as openapi-core's Request protocol."""

    def __init__(self, request: httpx.Request) -> None:
        self._request = request
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(request.url.params.multi_items())),
            header=Headers(list(request.headers.items())),
        )

    @property
    def host_url(self) -> str:
        return f"{self._request.url.scheme}://{self._request.url.host}"

    @property
    def path(self) -> str:
        return self._request.url.path

    @property
    def method(self) -> str:
        return self._request.method.lower()

    @property
    def body(self) -> bytes | None:
        return self._request.content or None

    @property
    def content_type(self) -> str:
        return self._request.headers.get("content-type", "").lower()


@functools.lru_cache(maxsize=1)
def _orders_oas() -> OpenAPI:
    return OpenAPI.from_file_path(str(OAS))


def validate(request: httpx.Request) -> None:
    url = str(request.url)
    if url.startswith(TOKEN_URL):
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        assert parse_qs(request.content.decode())["grant_type"] == ["client_credentials"]
        assert request.headers["authorization"].startswith("Basic ")
        return
    assert request.headers.get("authorization", "").startswith("Bearer "), "no Account Manager bearer token"
    if request.url.host.endswith(".api.commercecloud.salesforce.com"):
        with warnings.catch_warnings():
            # openapi-core cannot evaluate oauth2 schemes; the bearer token is asserted above.
            warnings.filterwarnings("ignore", "Unsupported scheme type", UserWarning)
            _orders_oas().validate_request(_OasRequest(request))
        return
    path = request.url.raw_path.decode().split("?")[0]
    assert request.url.host == httpx.URL(OCAPI_HOST).host, f"not the OCAPI host: {url}"
    if re.fullmatch(r"/s/-/dw/data/v\d+_\d+/inventory_lists/[^/]+/product_inventory_records", path):
        assert request.method == "GET" and not request.content
        params = dict(request.url.params.multi_items())
        assert set(params) <= {"start", "count", "select"}, f"undocumented query parameter in {sorted(params)}"
        assert all(re.fullmatch(r"\d+", params[k]) for k in ("start", "count") if k in params)
        return
    match = re.fullmatch(r"/s/-/dw/data/v\d+_\d+/inventory_lists/[^/]+/product_inventory_records/[^/]+", path)
    assert match, f"not an OCAPI inventory record URL: {url}"
    assert request.method == "PATCH"
    body = json.loads(request.content)
    assert set(body) == {"allocation"} and set(body["allocation"]) == {"amount"}
    assert isinstance(body["allocation"]["amount"], int | float) and body["allocation"]["amount"] >= 0


def _answer(request: httpx.Request) -> httpx.Response:
    if str(request.url).startswith(TOKEN_URL):
        return httpx.Response(200, json={"access_token": "am-token-1", "token_type": "Bearer", "expires_in": 1799})
    if request.method == "PATCH" and "/dw/data/" in request.url.path:
        return httpx.Response(
            200, json={"_type": "product_inventory_record", "allocation": json.loads(request.content)["allocation"]}
        )
    return httpx.Response(204)


def _answer_recent(request: httpx.Request) -> httpx.Response:
    """SCAPI ``GET .../orders``: the spec's own ``OrdersGet`` example, and a cancelled copy."""
    if str(request.url).startswith(TOKEN_URL):
        return _answer(request)
    example = yaml.safe_load(Path(OAS).read_text(encoding="utf-8"))["components"]["examples"]["OrdersGet"]["value"]
    order = example["data"][0]
    cancelled = {**order, "orderNo": "00000411", "status": "cancelled"}
    return httpx.Response(200, json={"data": [order, cancelled]})


def _recent_detail(connector: Any) -> str:
    found = connector.recent_orders(NOW)
    parsed = [connector.parse(topic, {}, body) for _, body, _, topic in found]
    assert [type(cmds[0]).__name__ for cmds in parsed] == ["PlaceOrder", "CancelOrder"], parsed
    placed = parsed[0][0]
    assert placed.order_id == f"{CHANNEL}-00000410" and placed.customer_email == "no-reply@salesforce.com"
    assert placed.lines and all(line.quantity > 0 for line in placed.lines)
    return f"{len(found)} order(s)"


def _answer_records(request: httpx.Request) -> httpx.Response:
    """``GET .../product_inventory_records``: a ProductInventoryRecords document with the records'
    documented fields (snake_case, as OCAPI sends them); one record has no allocation yet."""
    if str(request.url).startswith(TOKEN_URL):
        return _answer(request)
    list_id = request.url.path.split("/")[-2]
    records = [
        {
            "_type": "product_inventory_record",
            "product_id": "WN-CAD-RED-5ML",
            "inventory_list_id": list_id,
            "allocation": {"amount": 14, "reset_date": "2026-11-27T06:00:00.000Z"},
            "ats": 11,
            "stock_level": 11,
            "inventory_turnover": 3,
            "perpetual_flag": False,
            "last_modified": "2026-11-27T08:55:00.000Z",
        },
        {"_type": "product_inventory_record", "product_id": "WN-NEW-ITEM", "inventory_list_id": list_id},
    ]
    return httpx.Response(
        200,
        json={"_v": "23.2", "_type": "product_inventory_records", "count": 2, "data": records, "start": 0, "total": 2},
    )


def _stock_detail(connector: Any) -> str:
    """The pulled records go through the job step's parser into the same commands as its
    ``inventory.records`` event: the allocation as on-hand at its reset date."""
    found = connector.current_stock()
    parsed = [cmd for _, body in found for cmd in connector.parse("inventory.records", {}, body)]
    assert parsed == [
        SetStockLevel("WN-CAD-RED-5ML", "london", 14, NOW.replace(hour=6, minute=0, second=0), f"sfcc:{CHANNEL}")
    ], parsed
    return f"{len(found)} record(s)"


def _standard(msg_id: str):
    def sign(body: bytes) -> dict[str, str]:
        ts = int(NOW.timestamp())
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": sign_standard_webhook(SECRET, msg_id, ts, body),
        }

    return sign


def _expect(expected: list[Command]):
    def check(commands: list[Command]) -> None:
        assert commands == expected

    return check


CASE = ContractCase(
    kind="sfcc",
    base_url=OCAPI_HOST,
    settings={
        "platform": "sfcc",
        "base_url": OCAPI_HOST,
        "client_id": "a1b2c3d4-am-client",
        "client_secret": "am-client-secret-xyz",
        "scopes": ["SALESFORCE_COMMERCE_API:zzxy_prd", "sfcc.orders.rw"],
        "inventory_list_id": "inventory_web",
        "short_code": "kv7kzm78",
        "organization_id": "f_ecom_zzxy_prd",
        "site_id": "RefArch",
        "webhook_secret": SECRET,
        "inventory_locations": {"inventory_london": "london"},
    },
    secret_fields=("client_secret", "webhook_secret"),
    outbound=[
        OutboundCall(
            "push_stock",
            lambda c: c.push_stock([StockUpdate("WN-CAD-RED-5ML", 5, "bo-1"), StockUpdate("WN/COTMAN 12", 0, "bo-1")]),
            ok_response=_answer,
            validate=validate,
            spec_source="OCAPI Data API 23.2 ProductInventoryRecords (docs); Account Manager token per orders-oas-v1 AmOAuth2",
        ),
        OutboundCall(
            "tag_order_backordered",
            lambda c: c.tag_order(
                OrderTag("bo-2", f"{CHANNEL}-00001234", f"{CHANNEL}-00001234", True, "backorder: WN-CAD-RED-5ML×2")
            ),
            ok_response=_answer,
            validate=validate,
            spec_source="shared/vendor/sfcc/orders-oas-v1-public.yaml (PUT export-status, PATCH order)",
        ),
        OutboundCall(
            "tag_order_released",
            lambda c: c.tag_order(
                OrderTag("bo-3", f"{CHANNEL}-00001234", f"{CHANNEL}-00001234", False, "ready to ship")
            ),
            ok_response=_answer,
            validate=validate,
            spec_source="shared/vendor/sfcc/orders-oas-v1-public.yaml (PUT export-status, PATCH order)",
        ),
        OutboundCall(
            "recent_orders",
            lambda c: DeliveryReceipt(detail=_recent_detail(c)),
            ok_response=_answer_recent,
            validate=validate,
            spec_source="shared/vendor/sfcc/orders-oas-v1-public.yaml (GET orders, lastModifiedDateFrom)",
        ),
        OutboundCall(
            "current_stock",
            lambda c: DeliveryReceipt(detail=_stock_detail(c)),
            ok_response=_answer_records,
            validate=validate,
            spec_source="OCAPI Data API 23.2 ProductInventoryRecords GET (docs; not vendored); token per orders-oas-v1 AmOAuth2",
        ),
    ],
    inbound=[
        InboundSample(
            "cartridge_order_created",
            (FIXTURES / "order.created.json").read_bytes(),
            _standard("sfcc-order-created-00001234"),
            _expect(
                [
                    PlaceOrder(
                        order_id=f"{CHANNEL}-00001234",
                        channel=CHANNEL,
                        placed_at=NOW.replace(hour=9, minute=24, second=51),
                        lines=(NewLine(1, "WN-CAD-RED-5ML", 2), NewLine(2, "WN-COTMAN-SET-12", 1)),
                        customer_email="ada@example.com",
                        customer_phone="+441632960001",
                        customer_name="Ada Lovelace",
                        reference="00001234",  # the number the customer knows, without our channel prefix
                    )
                ]
            ),
            signature_headers=("webhook-signature",),
        ),
        InboundSample(
            "cartridge_order_cancelled",
            (FIXTURES / "order.cancelled.json").read_bytes(),
            _standard("sfcc-order-cancelled-00001234"),
            _expect([CancelOrder(f"{CHANNEL}-00001234", reason="cancelled in SFCC")]),
            signature_headers=("webhook-signature",),
        ),
        InboundSample(
            "cartridge_inventory_records",
            (FIXTURES / "inventory.records.json").read_bytes(),
            _standard("sfcc-inventory-4f1e"),
            _expect(
                [
                    SetStockLevel(
                        "WN-CAD-RED-5ML", "london", 14, NOW.replace(hour=6, minute=0, second=0), f"sfcc:{CHANNEL}"
                    )
                ]
            ),
            signature_headers=("webhook-signature",),
        ),
    ],
)
