"""The reference POS sender builds requests backorder accepts."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from backorder.channels.api_orders import ApiOrder
from backorder.connectors.signatures import verify_standard_webhook

SCRIPT = Path(__file__).resolve().parents[3] / "integrations" / "pos-sender" / "send_order.py"
SPEC = importlib.util.spec_from_file_location("send_order", SCRIPT)
assert SPEC and SPEC.loader
sender = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(sender)
ORDER = {
    "order_id": "POS-1001",
    "placed_at": "2026-11-27T09:30:00Z",
    "lines": [{"sku": "WN-CAD-RED-5ML", "quantity": 2}],
    "customer": {"email": "ada@example.com", "name": "Ada Lovelace"},
}


def test_a_signed_order_verifies_and_is_a_valid_api_order() -> None:
    secret = "whsec_cG9zLXNlY3JldA=="
    request = sender.build_request(
        "https://backorder.example.com/webhooks/pos/shop", ORDER, secret=secret, now=1795764600
    )
    headers = {k.lower(): v for k, v in request.header_items()}
    verify_standard_webhook(request.data, headers, secret, now=1795764601)
    assert ApiOrder.model_validate_json(request.data).order_id == "POS-1001"


def test_an_api_key_order_carries_the_key_and_an_idempotency_key() -> None:
    request = sender.build_request("https://backorder.example.com/api/v1/orders", ORDER, api_key="bo_pos_abc")
    headers = {k.lower(): v for k, v in request.header_items()}
    assert headers["authorization"] == "Bearer bo_pos_abc"
    assert headers["idempotency-key"] == "order-POS-1001"
    assert json.loads(request.data) == ORDER
