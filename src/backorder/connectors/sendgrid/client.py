"""SendGrid v3 Mail Send: ``POST /v3/mail/send`` (Bearer API key), answered 202 with the
message's ``X-Message-Id``. SendGrid has no idempotency key for Mail Send; our message id
travels as ``custom_args.bo_message_id`` (echoed in every event) and an ``X-Backorder-Message-Id``
header, so a duplicate delivery can be traced."""

from __future__ import annotations

import httpx

from backorder.connectors.base import (
    Connector,
    ConnectorDeps,
    ConnectorSettings,
    DeliveryReceipt,
    NotifiesCustomers,
    OutboundMessage,
)
from backorder.connectors.errors import NotConfigured
from backorder.connectors.http import HttpSettings, ProviderClient
from backorder.connectors.sendgrid.mapping import mail_send_body
from backorder.connectors.sendgrid.settings import SendGridSettings


class SendGridConnector(Connector, NotifiesCustomers):
    rate_per_second = 0.0  # SendGrid's Mail Send limits are generous; 429s are deferred by the dispatcher

    def __init__(self, name: str, settings: SendGridSettings, http: ProviderClient, prefix: str) -> None:
        super().__init__(name, settings)
        self.settings: SendGridSettings = settings
        self._http = http
        self._prefix = prefix

    def send_message(self, message: OutboundMessage) -> DeliveryReceipt:
        if self.settings.api_key is None:
            raise NotConfigured("notify.email.api_key", provider="sendgrid")
        response = self._http.request(
            "POST",
            f"{self._prefix}/v3/mail/send",
            json=mail_send_body(message, self.settings.from_email, self.settings.from_name),
            headers={"Authorization": f"Bearer {self.settings.api_key.get_secret_value()}"},
        )
        ref = response.headers.get("X-Message-Id")
        return DeliveryReceipt(provider_ref=ref, detail=f"accepted by SendGrid ({response.status_code})")


def _client(name: str, base: str, deps: ConnectorDeps) -> tuple[ProviderClient, str]:
    client = deps.http_client_factory(name) if deps.http_client_factory else httpx.Client(base_url=base)
    if str(client.base_url):
        return ProviderClient(client, HttpSettings(max_attempts=1), provider="sendgrid"), ""
    host = httpx.URL(base).host
    return ProviderClient(client, HttpSettings(max_attempts=1, allowed_hosts=[host]), provider="sendgrid"), base


def build(name: str, settings: ConnectorSettings, deps: ConnectorDeps) -> SendGridConnector:
    assert isinstance(settings, SendGridSettings)
    http, prefix = _client(name, settings.effective_base_url(), deps)
    return SendGridConnector(name, settings, http, prefix)
