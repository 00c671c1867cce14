"""Mailgun: ``POST /v3/{domain}/messages`` as multipart form data (HTTP basic ``api:KEY``),
answered with ``{"id": "<...@domain>", "message": "Queued. Thank you."}``. Mailgun has no
idempotency key; our message id travels as ``v:bo_message_id`` (returned in every event's
``user-variables``) and an ``X-Backorder-Message-Id`` header."""

from __future__ import annotations

from urllib.parse import quote

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
from backorder.connectors.mailgun.mapping import message_fields
from backorder.connectors.mailgun.settings import MailgunSettings


class MailgunConnector(Connector, NotifiesCustomers):
    def __init__(self, name: str, settings: MailgunSettings, http: ProviderClient, prefix: str) -> None:
        super().__init__(name, settings)
        self.settings: MailgunSettings = settings
        self._http = http
        self._prefix = prefix

    def send_message(self, message: OutboundMessage) -> DeliveryReceipt:
        s = self.settings
        if s.api_key is None or not s.domain:
            raise NotConfigured(
                "notify.email.api_key" if s.api_key is None else "notify.email.domain", provider="mailgun"
            )
        sender = f"{s.from_name} <{s.from_email}>" if s.from_name else s.from_email
        # (None, value) parts make httpx send multipart/form-data, as the Messages API documents.
        parts = [(name, (None, value.encode())) for name, value in message_fields(message, sender)]
        response = self._http.request(
            "POST",
            f"{self._prefix}/v3/{quote(s.domain, safe='')}/messages",
            files=parts,
            auth=("api", s.api_key.get_secret_value()),
        )
        try:
            ref = str(response.json().get("id") or "") or None
        except ValueError:
            ref = None
        return DeliveryReceipt(provider_ref=ref.strip("<>") if ref else None, detail="queued by Mailgun")


def build(name: str, settings: ConnectorSettings, deps: ConnectorDeps) -> MailgunConnector:
    assert isinstance(settings, MailgunSettings)
    base = settings.effective_base_url()
    client = deps.http_client_factory(name) if deps.http_client_factory else httpx.Client(base_url=base)
    if str(client.base_url):
        return MailgunConnector(
            name, settings, ProviderClient(client, HttpSettings(max_attempts=1), provider="mailgun"), ""
        )
    http = ProviderClient(
        client, HttpSettings(max_attempts=1, allowed_hosts=[httpx.URL(base).host]), provider="mailgun"
    )
    return MailgunConnector(name, settings, http, base)
