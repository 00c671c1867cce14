"""Platform data ↔ ours for the issue 3 follow-ups: refunded units of a Shopify order, the
shipments of a completed WooCommerce order, reconciled Magento and SFCC orders as their senders'
envelopes, and a pulled Shopify inventory level in the webhook's shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from backorder.connectors.magento import mapping as magento
from backorder.connectors.sfcc import mapping as sfcc
from backorder.connectors.shopify import mapping as shopify
from backorder.connectors.woocommerce import mapping as woo
from backorder.domain import commands as c


def test_refunded_units_add_up_every_refund_of_a_line() -> None:
    order = {
        "refunds": [
            {"refund_line_items": [{"line_item_id": 11, "quantity": 1}, {"line_item_id": 12, "quantity": 2}]},
            {"refund_line_items": [{"line_item": {"id": 11}, "quantity": 1}]},
            {"refund_line_items": [{"line_item_id": 13, "quantity": "2"}]},  # not a whole number: not counted
        ]
    }
    assert shopify.refunded_units(order) == {"11": 2, "12": 2}


def test_current_quantity_wins_over_the_refunds_when_both_are_there() -> None:
    order = {
        "id": 5,
        "created_at": "2026-03-02T08:00:00Z",
        "line_items": [{"id": 11, "sku": "INK", "quantity": 4, "current_quantity": 3}],
        "refunds": [{"refund_line_items": [{"line_item_id": 11, "quantity": 2}]}],
    }
    assert shopify.place_order("web", order).lines == (c.NewLine(1, "INK", 3),)
    del order["line_items"][0]["current_quantity"]  # type: ignore[attr-defined]
    assert shopify.place_order("web", order).lines == (c.NewLine(1, "INK", 2),)


def test_a_completed_woocommerce_order_ships_each_line_with_a_sku_under_its_own_ref() -> None:
    order = {
        "id": 9,
        "status": "completed",
        "date_created_gmt": "2026-03-02T08:00:00",
        "line_items": [
            {"id": 1, "sku": "INK", "quantity": 2},
            {"id": 2, "sku": "", "quantity": 1},  # a fee or custom item: nothing of ours
            {"sku": "PEN", "quantity": 1},  # no id: its position names it
        ],
    }
    commands = woo.order_commands("woo", "order.updated", order, "main")
    assert commands[1:] == [
        c.ShipSku("woo-9", "INK", 2, "main", shipment_ref="woocommerce:completed:9:1"),
        c.ShipSku("woo-9", "PEN", 1, "main", shipment_ref="woocommerce:completed:9:#3"),
    ]
    assert isinstance(commands[0], c.PlaceOrder)
    assert woo.order_commands("woo", "order.updated", {**order, "status": "processing"}) == commands[:1]


def test_a_reconciled_magento_order_is_the_modules_envelope() -> None:
    order = {
        "entity_id": 42,
        "increment_id": "000000042",
        "state": "processing",
        "created_at": "2026-03-02 08:00:00",
        "updated_at": "2026-03-02 08:30:00",
        "billing_address": {"telephone": "+441632960001"},
        "items": [{"item_id": 77, "sku": "INK", "qty_ordered": 2.0}],
    }
    topic, envelope, updated = magento.reconciled_order(order) or ("", {}, None)
    assert (topic, envelope["type"], updated) == (
        "order.placed",
        "order.placed",
        datetime(2026, 3, 2, 8, 30, tzinfo=UTC),
    )
    assert envelope["data"]["customer_telephone"] == "+441632960001"
    assert magento.reconciled_order({**order, "state": "canceled"})[0] == "order.cancelled"  # type: ignore[index]
    assert magento.reconciled_order({**order, "state": "complete"}) is None


def test_a_reconciled_sfcc_order_is_the_job_steps_envelope() -> None:
    order = {
        "orderNo": "00000410",
        "status": "new",
        "creationDate": "2026-03-02T08:00:00.000Z",
        "lastModified": "2026-03-02T08:10:00.000Z",
        "customerInfo": {"email": "max@example.com", "customerName": "Max"},
        "productItems": [{"productId": "INK", "quantity": 2, "position": 1}, {"productId": "PEN", "quantity": 1}],
    }
    topic, envelope, _ = sfcc.reconciled_order(order) or ("", {}, None)
    assert topic == "order.created"
    assert envelope["data"]["product_line_items"] == [
        {"position": 1, "product_id": "INK", "quantity": 2},
        {"position": 2, "product_id": "PEN", "quantity": 1},
    ]
    assert sfcc.reconciled_order({**order, "status": "created"}) is None
    assert sfcc.reconciled_order({**order, "status": "failed"}) is None
    assert sfcc.reconciled_order({**order, "status": "cancelled"})[2] == datetime(2026, 3, 2, 8, 10, tzinfo=UTC)  # type: ignore[index]


def test_a_pulled_shopify_level_has_the_webhooks_shape() -> None:
    body = shopify.level_from_graphql("901", "24826418", 5, "2026-03-02T08:00:00Z")
    assert shopify.inventory_item_id(body) == "901"
    assert json.loads(json.dumps(body))["location_id"] == 24826418
    assert body["available"] == 5 and body["updated_at"] == "2026-03-02T08:00:00Z"
