"""Pure parsing of channel payloads: ids, times, the POS/B2B order body."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from backorder.channels.api_orders import parse_order
from backorder.connectors.errors import MalformedPayload
from backorder.connectors.shopify import mapping as shopify
from backorder.connectors.woocommerce import mapping as woo
from backorder.domain.commands import NewLine

RECEIVED = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_the_exact_shopify_order_id_comes_from_the_gid_not_the_rounded_number() -> None:
    data = {"id": 820982911946154500, "admin_graphql_api_id": "gid://shopify/Order/820982911946154508"}
    assert shopify.external_order_id(data) == "820982911946154508"
    assert shopify.external_order_id({"id": 450789469}) == "450789469"
    with pytest.raises(MalformedPayload):
        shopify.external_order_id({})


def test_the_inventory_item_id_is_read_from_the_inventory_level_gid() -> None:
    data = {
        "inventory_item_id": 271878346596884000,
        "admin_graphql_api_id": "gid://shopify/InventoryLevel/24826418?inventory_item_id=271878346596884015",
    }
    assert shopify.inventory_item_id(data) == "271878346596884015"


def test_shopify_times_keep_their_offset_and_become_utc() -> None:
    assert shopify.parse_time("2021-12-31T19:00:00-05:00", "t") == datetime(2022, 1, 1, tzinfo=UTC)
    with pytest.raises(MalformedPayload):
        shopify.parse_time("2021-12-31T19:00:00", "t")  # no zone: refused rather than guessed


def test_woocommerce_gmt_fields_are_utc_without_an_offset() -> None:
    assert woo.gmt_time({"d": "2017-03-22T19:28:02"}, "d") == datetime(2017, 3, 22, 19, 28, 2, tzinfo=UTC)


def test_lines_without_a_sku_or_removed_by_an_edit_are_left_out() -> None:
    data = {
        "id": 1,
        "created_at": "2026-11-27T09:00:00Z",
        "line_items": [
            {"sku": "", "quantity": 1},
            {"sku": "INK", "quantity": 2, "current_quantity": 0},
            {"sku": "PEN", "quantity": 1},
        ],
    }
    assert shopify.place_order("web", data).lines == (NewLine(3, "PEN", 1),)
    with pytest.raises(MalformedPayload):
        shopify.place_order("web", {**data, "line_items": [{"sku": "", "quantity": 1}]})


def test_a_pos_order_body_becomes_a_place_order_named_by_its_channel() -> None:
    body = json.dumps(
        {"order_id": "T-1", "lines": [{"sku": "INK", "quantity": 2}], "priority": 5, "customer": {"email": "a@x.test"}}
    ).encode()
    order = parse_order("pos", body, RECEIVED)
    assert (order.order_id, order.channel, order.placed_at, order.priority) == ("pos-T-1", "pos", RECEIVED, 5)
    assert order.lines == (NewLine(1, "INK", 2),)
    assert order.reference == "T-1"  # the till's own number is what the customer's receipt shows


def test_a_pos_order_may_name_the_number_its_customer_knows() -> None:
    body = json.dumps({"order_id": "T-1", "reference": "R 0042", "lines": [{"sku": "INK", "quantity": 2}]}).encode()
    assert parse_order("pos", body, RECEIVED).reference == "R 0042"
    too_long = json.dumps({"order_id": "T-1", "reference": "R" * 65, "lines": [{"sku": "INK", "quantity": 2}]})
    with pytest.raises(MalformedPayload):
        parse_order("pos", too_long.encode(), RECEIVED)


def test_a_woocommerce_orders_number_is_its_reference_and_a_missing_one_is_none() -> None:
    data = {"id": 727, "number": "WC-00727", "date_created_gmt": "2026-11-27T09:00:00", "line_items": []}
    data["line_items"] = [{"id": 1, "sku": "INK", "quantity": 1}]
    assert woo.place_order("shop", data).reference == "WC-00727"
    assert woo.place_order("shop", {**data, "number": 728}).reference == "728"
    assert woo.place_order("shop", {**data, "number": None}).reference is None


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"order_id": "T 1", "lines": []}',
        b'{"order_id": "T1", "lines": [{"sku": "A", "quantity": 0}]}',
        b'{"order_id": "T1", "lines": [{"sku": "A", "quantity": 1}], "extra": 1}',
    ],
)
def test_a_bad_pos_order_body_is_malformed_with_a_reason(body: bytes) -> None:
    with pytest.raises(MalformedPayload) as caught:
        parse_order("pos", body, RECEIVED)
    assert caught.value.reason.startswith("not a valid order")


@pytest.mark.parametrize(
    ("order", "field"),
    [
        ({"lines": [{"sku": "INK", "quantity": 2**31}]}, "lines.0.quantity"),
        ({"lines": [{"sku": "INK", "quantity": 1, "line_no": 2**31}]}, "lines.0.line_no"),
        ({"lines": [{"sku": "IN\x00K", "quantity": 1}]}, "lines.0.sku"),
        ({"priority": -(2**31) - 1}, "priority"),
        ({"priority": 2**31}, "priority"),
        ({"reference": "R\x00"}, "reference"),
        ({"customer": {"email": "ada"}}, "customer.email"),
        ({"customer": {"email": "a" * 309 + "@example.com"}}, "customer.email"),
        ({"customer": {"name": "N" * 201}}, "customer.name"),
        ({"customer": {"phone": "1" * 41}}, "customer.phone"),
        ({"customer": {"name": "\x00"}}, "customer.name"),
        ({"placed_at": "2026-11-27T09:00:00"}, "placed_at"),
        ({"placed_at": "0001-01-01T00:00:00+01:00"}, "placed_at"),
    ],
)
def test_a_pos_order_beyond_the_database_columns_is_malformed_naming_the_field(
    order: dict[str, object], field: str
) -> None:
    body = {"order_id": "T-1", "lines": [{"sku": "INK", "quantity": 1}], **order}
    with pytest.raises(MalformedPayload) as caught:
        parse_order("pos", json.dumps(body).encode(), RECEIVED)
    assert caught.value.reason.startswith(f"not a valid order: {field}: ")


def test_a_pos_order_at_the_limits_of_the_columns_is_an_order() -> None:
    body = {
        "order_id": "T-1",
        "placed_at": "2026-11-27T10:00:00+01:00",
        "lines": [{"sku": "S" * 64, "quantity": 2**31 - 1, "line_no": 2**31 - 1}, {"sku": "INK", "quantity": 1}],
        "customer": {"email": "a" * 308 + "@example.com", "name": "N" * 200, "phone": "1" * 40},
        "priority": -(2**31),
        "reference": "R" * 64,
    }
    order = parse_order("pos", json.dumps(body).encode(), RECEIVED)
    assert order.placed_at == RECEIVED and order.priority == -(2**31)
    assert order.lines == (NewLine(2**31 - 1, "S" * 64, 2**31 - 1), NewLine(2, "INK", 1))
    assert order.customer_email is not None and len(order.customer_email) == 320


def test_a_pos_order_with_blank_customer_fields_is_an_order_without_them() -> None:
    body = {
        "order_id": "T-9",
        "lines": [{"sku": "INK", "quantity": 1}],
        "customer": {"email": "", "phone": " ", "name": ""},
    }
    order = parse_order("pos", json.dumps(body).encode(), RECEIVED)
    assert (order.customer_email, order.customer_phone, order.customer_name) == (None, None, None)
