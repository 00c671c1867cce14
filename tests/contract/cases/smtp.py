"""SMTP: no HTTP; a fake smtplib server stands in (a real aiosmtpd server on loopback is used in
tests/integration/test_messaging_smtp.py)."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from backorder.connectors.base import OutboundMessage
from tests.contract.framework import ContractCase, OutboundCall


class FakeSmtp:
    sent: list[EmailMessage] = []

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def __enter__(self) -> FakeSmtp:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def starttls(self, **kwargs: Any) -> None:
        return None

    def login(self, user: str, password: str) -> None:
        return None

    def send_message(self, message: EmailMessage) -> dict[str, Any]:
        FakeSmtp.sent.append(message)
        return {}


CASE = ContractCase(
    kind="smtp",
    settings={"provider": "smtp", "host": "mail.example.com", "username": "shop", "password": "smtp-pass"},
    secret_fields=("password",),
    extras={"smtp_factory": FakeSmtp},
    outbound=[
        OutboundCall(
            "send_message",
            lambda c: c.send_message(  # type: ignore[attr-defined]
                OutboundMessage("bo-45", "email", "ada@example.com", "Hi", "Body", "<p>Body</p>", "backorder_created")
            ),
        )
    ],
)
