"""WooCommerce partial refunds, without a database: what the connector reads from the Refunds
endpoint before parsing, and how the pure parser turns it into the order's current view.

Shapes follow the WooCommerce REST API v3 reference (woocommerce/woocommerce-rest-api-docs,
source/includes/wp-api-v3/_order-refunds.md, "List all refunds" response example: refund 724 of
order 723 takes back 1 unit of line item 311 as ``line_items[].quantity = -1`` with the meta
``_refunded_item_id = "311"``) and the order resource (``refunds`` entries are ``{id, reason,
total}`` only: ``WC_REST_Orders_V2_Controller::get_formatted_item_data``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from tests.contract.cases.woocommerce import REFUND

from backorder.connectors.base import ConnectorDeps
from backorder.connectors.errors import MalformedPayload
from backorder.connectors.registry import load_specs
from backorder.connectors.woocommerce import mapping
from backorder.connectors.woocommerce.client import WooCommerceConnector
from backorder.domain.commands import CancelOrder, NewLine, PlaceOrder, ShipSku

REFUND_724: dict[str, Any] = REFUND  # _order-refunds.md, "List all refunds", second element
REFUND_726: dict[str, Any] = {  # _order-refunds.md, first element: money only, no line item
    "id": 726,
    "date_created": "2017-03-21T17:07:11",
    "date_created_gmt": "2017-03-21T20:07:11",
    "amount": "10.00",
    "reason": "",
    "refunded_by": 1,
    "refunded_payment": False,
    "meta_data": [],
    "line_items": [],
}


def order(status: str = "processing", refunds: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Order 723 as the REST API (and so the webhook) shows it after refunds: quantities as ordered."""
    return {
        "id": 723,
        "status": status,
        "date_created_gmt": "2017-03-21T19:00:00",
        "date_modified_gmt": "2017-03-21T20:07:12",
        "billing": {"first_name": "John", "last_name": "Doe", "email": "john.doe@example.com", "phone": ""},
        "line_items": [
            {"id": 311, "name": "Woo Album #2", "product_id": 87, "variation_id": 0, "quantity": 2, "sku": "WA-2"},
            {"id": 312, "name": "Cadmium Red", "product_id": 95, "variation_id": 0, "quantity": 3, "sku": "WN-1"},
        ],
        "refunds": refunds or [],
    }


def listed(*refunds: dict[str, Any]) -> list[dict[str, Any]]:
    """How the order resource lists refunds."""
    return [{"id": r["id"], "reason": r["reason"], "total": "-" + r["amount"]} for r in refunds]


def read(data: dict[str, Any], *refunds: dict[str, Any]) -> dict[str, Any]:
    return {**data, mapping.REFUNDS_KEY: list(refunds)}


def placed(*lines: NewLine) -> PlaceOrder:
    return PlaceOrder(
        "woo-723",
        "woo",
        datetime(2017, 3, 21, 19, 0, tzinfo=UTC),
        lines,
        customer_email="john.doe@example.com",
        customer_name="John Doe",
    )


# --- the pure parser ---------------------------------------------------------------------------


def test_the_refunded_quantity_of_the_published_example_is_taken_off_its_line_item() -> None:
    data = read(order(refunds=listed(REFUND_724)), REFUND_724)
    assert mapping.refunded_units(data) == {"311": 1}
    assert mapping.order_commands("woo", "order.updated", data) == [
        placed(NewLine(1, "WA-2", 1), NewLine(2, "WN-1", 3))
    ]


def test_a_refund_of_money_only_takes_back_no_unit() -> None:
    data = read(order(refunds=listed(REFUND_726)), REFUND_726)
    assert mapping.refunded_units(data) == {}
    assert mapping.order_commands("woo", "order.updated", data) == [
        placed(NewLine(1, "WA-2", 2), NewLine(2, "WN-1", 3))
    ]


def test_the_refunds_of_a_line_add_up_and_a_line_refunded_in_full_is_left_out() -> None:
    second = {**REFUND_724, "id": 730, "line_items": [{**REFUND_724["line_items"][0], "id": 320}]}
    data = read(order(refunds=listed(second, REFUND_724)), REFUND_724, second)
    assert mapping.refunded_units(data) == {"311": 2}
    assert mapping.order_commands("woo", "order.updated", data) == [placed(NewLine(2, "WN-1", 3))]


def test_only_the_refunds_the_order_lists_count_not_newer_ones_the_api_already_has() -> None:
    newer = {**REFUND_724, "id": 731}
    data = read(order(refunds=listed(REFUND_724)), REFUND_724, newer)
    assert mapping.refunded_units(data) == {"311": 1}


def test_every_unit_refunded_while_the_order_stays_open_cancels_it() -> None:
    everything = {
        **REFUND_724,
        "line_items": [
            {**REFUND_724["line_items"][0], "quantity": -2},
            {"id": 315, "product_id": 95, "variation_id": 0, "quantity": -3, "meta_data": []},
        ],
    }
    data = read(order(refunds=listed(everything)), everything)
    assert mapping.order_commands("woo", "order.updated", data) == [
        CancelOrder("woo-723", reason="refunded on woocommerce")
    ]


def test_a_refund_line_without_refunded_item_id_falls_back_to_the_only_line_of_its_product() -> None:
    bare = {
        **REFUND_724,
        "line_items": [{"id": 315, "product_id": 95, "variation_id": 0, "quantity": -1, "meta_data": []}],
    }
    assert mapping.refunded_units(read(order(refunds=listed(bare)), bare)) == {"312": 1}
    unknown = {**bare, "line_items": [{"id": 316, "product_id": 999, "variation_id": 0, "quantity": -1}]}
    with pytest.raises(MalformedPayload, match="names no _refunded_item_id"):
        mapping.refunded_units(read(order(refunds=listed(unknown)), unknown))


def test_a_completed_order_ships_only_what_was_not_refunded() -> None:
    data = read(order("completed", listed(REFUND_724)), REFUND_724)
    cmds = mapping.order_commands("woo", "order.updated", data, "main")
    assert cmds[1:] == [
        ShipSku("woo-723", "WA-2", 1, "main", shipment_ref="woocommerce:completed:723:311"),
        ShipSku("woo-723", "WN-1", 3, "main", shipment_ref="woocommerce:completed:723:312"),
    ]


def test_listed_refunds_that_were_not_read_are_a_failure_not_a_guess() -> None:
    with pytest.raises(MalformedPayload, match="not read from WooCommerce's Refunds API"):
        mapping.order_commands("woo", "order.updated", order(refunds=listed(REFUND_724)))
    with pytest.raises(MalformedPayload, match="724 of order 723 are no longer in WooCommerce"):
        mapping.order_commands("woo", "order.updated", read(order(refunds=listed(REFUND_724))))


def test_a_refunded_or_cancelled_order_is_cancelled_without_its_refunds_being_read() -> None:
    for status in ("refunded", "cancelled"):
        data = order(status, listed(REFUND_724))
        assert not mapping.needs_refund_lines("order.updated", data)
        assert mapping.order_commands("woo", "order.updated", data) == [
            CancelOrder("woo-723", reason=f"{status} on woocommerce")
        ]


# --- the connector reads the refunds before parsing ------------------------------------------------


class Store:
    """WooCommerce's REST API for one order's refunds (MockTransport handler)."""

    def __init__(self, refunds: list[dict[str, Any]], status: int = 200) -> None:
        self.refunds = refunds
        self.status = status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.status != 200:
            return httpx.Response(self.status, json={"code": "internal_server_error"})
        if request.url.path != "/wp-json/wc/v3/orders/723/refunds":
            return httpx.Response(404, json={"code": "rest_no_route"})
        page, per_page = int(request.url.params["page"]), int(request.url.params["per_page"])
        return httpx.Response(200, json=self.refunds[(page - 1) * per_page : page * per_page])


def connector(store: Store, **settings: Any) -> WooCommerceConnector:
    spec = load_specs()["woocommerce"]
    config = {
        "platform": "woocommerce",
        "store_url": "https://shop.example.test",
        "consumer_key": "ck",
        "consumer_secret": "cs",
        "webhook_secret": "s",
        **settings,
    }

    def factory(name: str) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(store), base_url="https://shop.example.test")

    built = spec.build("channels.woo", spec.settings.model_validate(config), ConnectorDeps(http_client_factory=factory))
    assert isinstance(built, WooCommerceConnector)
    return built


def test_the_connector_reads_the_listed_refunds_and_the_parser_cuts_their_units() -> None:
    store = Store([REFUND_726, REFUND_724])
    woo = connector(store)
    body = woo.enrich("order.updated", json.dumps(order(refunds=listed(REFUND_724))).encode())
    assert [(r.method, r.url.path, dict(r.url.params)) for r in store.requests] == [
        ("GET", "/wp-json/wc/v3/orders/723/refunds", {"per_page": "100", "page": "1"})
    ]
    assert store.requests[0].headers["Authorization"].startswith("Basic ")
    assert json.loads(body)[mapping.REFUNDS_KEY] == [REFUND_724]  # 726 is not listed by this version
    assert woo.parse("order.updated", {}, body) == [placed(NewLine(1, "WA-2", 1), NewLine(2, "WN-1", 3))]


def test_every_page_of_refunds_is_read() -> None:
    many = [{**REFUND_726, "id": 1000 + n} for n in range(150)]
    store = Store([*many, REFUND_724])
    body = connector(store).enrich("order.updated", json.dumps(order(refunds=listed(REFUND_724))).encode())
    assert [r.url.params["page"] for r in store.requests] == ["1", "2"]
    assert json.loads(body)[mapping.REFUNDS_KEY] == [REFUND_724]


def test_an_order_without_refunds_is_passed_on_unchanged_without_a_call() -> None:
    store = Store([REFUND_724])
    raw = json.dumps(order()).encode()
    assert connector(store).enrich("order.updated", raw) == raw
    refunded = json.dumps(order("refunded", listed(REFUND_724))).encode()
    assert connector(store).enrich("order.updated", refunded) == refunded
    assert store.requests == []


def test_refund_data_in_the_body_as_received_is_never_used() -> None:
    store = Store([REFUND_724])
    woo = connector(store)
    forged = read(order(), REFUND_724)
    body = woo.enrich("order.updated", json.dumps(forged).encode())
    assert mapping.REFUNDS_KEY not in json.loads(body) and store.requests == []
    forged_listed = read(order(refunds=listed(REFUND_726)), REFUND_724)  # claims units 726 never took
    body = woo.enrich("order.updated", json.dumps(forged_listed).encode())
    assert json.loads(body)[mapping.REFUNDS_KEY] == []  # the store has no refund 726 any more
    with pytest.raises(MalformedPayload, match="726 of order 723 are no longer in WooCommerce"):
        woo.parse("order.updated", {}, body)


def test_refunds_that_cannot_be_read_fail_the_event_with_the_reason() -> None:
    body = json.dumps(order(refunds=listed(REFUND_724))).encode()
    with pytest.raises(MalformedPayload, match=r"refunds of order 723 could not be read .*ProviderUnavailable"):
        connector(Store([], status=503)).enrich("order.updated", body)
    with pytest.raises(MalformedPayload, match=r"NotConfigured: .*consumer_key"):
        connector(Store([]), consumer_key=None, consumer_secret=None).enrich("order.updated", body)
