"""Mailgun Messages API, checked against mailgun/mailgun-mcp-server ``openapi.yaml`` (3.1)."""

from __future__ import annotations

import httpx

from backorder.connectors.base import OutboundMessage
from tests.contract.framework import ContractCase, OutboundCall
from tests.contract.vendor_openapi import validate

SPEC = "mailgun/openapi.yaml"
MESSAGE = OutboundMessage(
    "bo-42",
    "email",
    "ada@example.com",
    "Order WEB-1001: 1 item on backorder",
    "Hello Ada",
    "<p>Hello Ada</p>",
    "backorder_created",
    {
        "List-Unsubscribe": "<https://shop.example/hooks/unsubscribe/t>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    },
)


def _check(request: httpx.Request) -> None:
    validate(SPEC, request, "https://api.mailgun.net")
    assert request.url.path == "/v3/mg.example.com/messages"
    assert request.headers["content-type"].startswith("multipart/form-data")
    body = request.content
    assert b'name="v:bo_message_id"\r\n\r\nbo-42' in body
    assert b'name="h:List-Unsubscribe-Post"\r\n\r\nList-Unsubscribe=One-Click' in body
    assert request.headers["authorization"].startswith("Basic ")


CASE = ContractCase(
    kind="mailgun",
    settings={
        "provider": "mailgun",
        "api_key": "key-test",
        "domain": "mg.example.com",
        "region": "eu",
        "webhook_signing_key": "signing-key",
    },
    secret_fields=("api_key", "webhook_signing_key"),
    outbound=[
        OutboundCall(
            "send_message",
            lambda c: c.send_message(MESSAGE),  # type: ignore[attr-defined]
            ok_response=lambda r: httpx.Response(
                200, json={"id": "<20261127.1@mg.example.com>", "message": "Queued. Thank you."}
            ),
            validate=_check,
            spec_source=SPEC,
        )
    ],
)
