"""SendGrid v3 Mail Send, checked against twilio/sendgrid-oai ``tsg_mail_v3.json``."""

from __future__ import annotations

import json

import httpx

from backorder.connectors.base import OutboundMessage
from tests.contract.framework import ContractCase, OutboundCall
from tests.contract.vendor_openapi import validate

SPEC = "sendgrid/tsg_mail_v3.json"
MESSAGE = OutboundMessage(
    "bo-41",
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
    validate(SPEC, request, "https://api.sendgrid.com")
    assert request.url.path == "/v3/mail/send"
    assert request.headers["authorization"] == "Bearer SG.test-key"
    body = json.loads(request.content)
    assert body["personalizations"][0]["custom_args"]["bo_message_id"] == "bo-41"
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]


CASE = ContractCase(
    kind="sendgrid",
    settings={"provider": "sendgrid", "api_key": "SG.test-key", "from_email": "shop@example.com", "from_name": "Shop"},
    secret_fields=("api_key",),
    outbound=[
        OutboundCall(
            "send_message",
            lambda c: c.send_message(MESSAGE),  # type: ignore[attr-defined]
            ok_response=lambda r: httpx.Response(202, headers={"X-Message-Id": "sg-abc123"}),
            validate=_check,
            spec_source=SPEC,
        )
    ],
)
