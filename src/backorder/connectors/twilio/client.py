"""Twilio: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (form data, HTTP basic
``AccountSid:AuthToken``), answered 201 with the Message resource (``sid``). Twilio's Messages
API has no idempotency key; our message id rides in the ``StatusCallback`` URL (``?bo=bo-12``),
so every status callback names the message it is about."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
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
from backorder.connectors.twilio.mapping import message_fields
from backorder.connectors.twilio.settings import TwilioSettings


class TwilioConnector(Connector, NotifiesCustomers):
    def __init__(
        self, name: str, settings: TwilioSettings, http: ProviderClient, prefix: str, callback: str | None
    ) -> None:
        super().__init__(name, settings)
        self.settings: TwilioSettings = settings
        self.rate_per_second = settings.messages_per_second
        self._http = http
        self._prefix = prefix
        self._callback = callback

    def rate_limit_key(self, payload: Mapping[str, Any]) -> str | None:
        return f"twilio:{self.settings.messaging_service_sid or self.settings.from_number}"

    def send_message(self, message: OutboundMessage) -> DeliveryReceipt:
        s = self.settings
        if s.missing_credentials():
            raise NotConfigured(f"notify.sms.{s.missing_credentials()[0]}", provider="twilio")
        assert s.auth_token is not None
        response = self._http.request(
            "POST",
            f"{self._prefix}/2010-04-01/Accounts/{quote(s.account_sid, safe='')}/Messages.json",
            data=message_fields(message, s.from_number, s.messaging_service_sid, self._callback),
            auth=(s.account_sid, s.auth_token.get_secret_value()),
        )
        try:
            sid = response.json().get("sid")
        except ValueError:
            sid = None
        return DeliveryReceipt(provider_ref=sid, detail=f"queued by Twilio ({response.status_code})")


def build(name: str, settings: ConnectorSettings, deps: ConnectorDeps) -> TwilioConnector:
    assert isinstance(settings, TwilioSettings)
    public_url = str(deps.extras.get("public_url") or "").rstrip("/")
    callback = settings.status_callback or (f"{public_url}/hooks/twilio/status" if public_url else None)
    base = settings.effective_base_url()
    client = deps.http_client_factory(name) if deps.http_client_factory else httpx.Client(base_url=base)
    if str(client.base_url):
        http = ProviderClient(client, HttpSettings(max_attempts=1), provider="twilio")
        return TwilioConnector(name, settings, http, "", callback)
    http = ProviderClient(client, HttpSettings(max_attempts=1, allowed_hosts=[httpx.URL(base).host]), provider="twilio")
    return TwilioConnector(name, settings, http, base, callback)
