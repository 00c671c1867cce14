"""What the dashboard's inbox says an event is about, from the raw bodies each platform sends."""

from __future__ import annotations

import json

from backorder.web.dashboard import about_event


def test_an_order_is_named_by_the_number_its_customer_knows_with_its_skus() -> None:
    shopify = {"id": 820982911946154508, "name": "#1001", "line_items": [{"sku": "WN-1"}, {"sku": None}]}
    assert about_event(json.dumps(shopify).encode()) == "order #1001: WN-1"
    pos = {"order_id": "T-4", "lines": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 2}]}
    assert about_event(json.dumps(pos).encode()) == "order T-4: A, B"
    sfcc = {"type": "order.created", "data": {"order_no": "00001234", "product_line_items": [{"product_id": "P"}]}}
    assert about_event(json.dumps(sfcc).encode()) == "order 00001234: P"
    many = {"number": "727", "line_items": [{"sku": f"S{i}"} for i in range(7)]}
    assert about_event(json.dumps(many).encode()) == "order 727: S0, S1, S2, S3, S4 and 2 more"


def test_a_body_that_says_nothing_recognisable_is_about_nothing() -> None:
    assert about_event(b"not json") == ""
    assert about_event(b"[1, 2]") == ""
    assert about_event(json.dumps({"inventory_item_id": 7, "available": 3}).encode()) == ""
    assert about_event(b"[" * 100_000 + b"]" * 100_000) == ""  # nested too deep to read: no 500
