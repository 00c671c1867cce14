"""Slack incoming webhook. Slack publishes no OpenAPI document for incoming webhooks, so the
payload is checked against the Block Kit reference: https://api.slack.com/reference/block-kit/blocks
(header: plain_text ≤150 chars; section: text ≤3000 or fields ≤10 items of ≤2000; context: ≤10
elements; ≤50 blocks) and https://api.slack.com/messaging/webhooks (JSON body, ``text`` as the
notification fallback when ``blocks`` are sent)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from backorder.connectors.base import StaffMessage
from tests.contract.framework import ContractCase, OutboundCall

SOURCE = "https://api.slack.com/reference/block-kit/blocks"
MESSAGE = StaffMessage(
    "bo-44",
    "New backorder: WEB-1001 (web)",
    "• WN-0102263 Cadmium Red ×2, ETA 2026-12-04" * 200,
    {"Order": "WEB-1001", "Lines": "1"},
    "https://shop.example/dashboard/orders/WEB-1001",
    "BackorderCreated",
)


def _text(obj: dict[str, Any], kinds: tuple[str, ...], limit: int) -> None:
    assert obj["type"] in kinds, obj
    assert isinstance(obj["text"], str) and 0 < len(obj["text"]) <= limit


def check_block_kit(body: dict[str, Any]) -> None:
    assert isinstance(body.get("text"), str) and body["text"], "text fallback is required with blocks"
    blocks = body["blocks"]
    assert 1 <= len(blocks) <= 50
    for block in blocks:
        assert len(block.get("block_id", "")) <= 255
        if block["type"] == "header":
            _text(block["text"], ("plain_text",), 150)
        elif block["type"] == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                _text(block["text"], ("plain_text", "mrkdwn"), 3000)
            for item in block.get("fields", []):
                _text(item, ("plain_text", "mrkdwn"), 2000)
            assert len(block.get("fields", [])) <= 10
        elif block["type"] == "context":
            assert 1 <= len(block["elements"]) <= 10
            for element in block["elements"]:
                _text(element, ("plain_text", "mrkdwn"), 3000)
        else:
            raise AssertionError(f"unexpected block type {block['type']}")


def _check(request: httpx.Request) -> None:
    assert request.method == "POST" and request.url.path == "/services/T000/B000/XXXX"
    assert request.headers["content-type"] == "application/json"
    body = json.loads(request.content)
    check_block_kit(body)
    assert "bo-44" in json.dumps(body)


CASE = ContractCase(
    kind="slack",
    settings={"provider": "slack", "webhook_url": "https://hooks.slack.com/services/T000/B000/XXXX"},
    secret_fields=("webhook_url",),
    outbound=[
        OutboundCall(
            "post_staff",
            lambda c: c.post_staff(MESSAGE),  # type: ignore[attr-defined]
            ok_response=lambda r: httpx.Response(200, text="ok"),
            validate=_check,
            spec_source=SOURCE,
        )
    ],
)
