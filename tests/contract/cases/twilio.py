"""Twilio Messages, checked against twilio/twilio-oai ``twilio_api_v2010.json``."""

from __future__ import annotations

from urllib.parse import parse_qs

import httpx

from backorder.connectors.base import OutboundMessage
from tests.contract.framework import ContractCase, OutboundCall
from tests.contract.vendor_openapi import validate

SPEC = "twilio/twilio_api_v2010.json"
SID = "AC" + "0123456789abcdef" * 2
MESSAGE = OutboundMessage(
    "bo-43", "sms", "+447700900123", "", "Shop: order WEB-1001 has 1 item on backorder.", None, "backorder_created"
)


def _check(request: httpx.Request) -> None:
    validate(SPEC, request, "https://api.twilio.com")
    assert request.url.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
    assert form["To"] == "+447700900123" and form["From"] == "+15005550006"
    assert form["StatusCallback"] == "https://shop.example/hooks/twilio/status?bo=bo-43"
    assert request.headers["authorization"].startswith("Basic ")


CASE = ContractCase(
    kind="twilio",
    settings={
        "provider": "twilio",
        "account_sid": SID,
        "auth_token": "tw-token",
        "from_number": "+15005550006",
        "status_callback": "https://shop.example/hooks/twilio/status",
    },
    secret_fields=("auth_token",),
    outbound=[
        OutboundCall(
            "send_message",
            lambda c: c.send_message(MESSAGE),  # type: ignore[attr-defined]
            ok_response=lambda r: httpx.Response(201, json={"sid": "SM" + "a" * 32, "status": "queued"}),
            validate=_check,
            spec_source=SPEC,
        )
    ],
)
