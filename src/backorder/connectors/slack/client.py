"""Slack incoming webhook: ``POST`` JSON ``{text, blocks}`` to the webhook URL; Slack answers
``200 ok``, or 400/403/404/410 with a reason (fatal), or 429 with ``Retry-After``. Incoming
webhooks take no idempotency key; our message id is in the context block."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from backorder.connectors.base import (
    Connector,
    ConnectorDeps,
    ConnectorSettings,
    DeliveryReceipt,
    NotifiesStaff,
    StaffMessage,
)
from backorder.connectors.errors import NotConfigured
from backorder.connectors.http import HttpSettings, ProviderClient
from backorder.connectors.slack.mapping import payload
from backorder.connectors.slack.settings import SlackSettings


class SlackConnector(Connector, NotifiesStaff):
    def __init__(self, name: str, settings: SlackSettings, http: ProviderClient | None, prefix: str, path: str) -> None:
        super().__init__(name, settings)
        self.settings: SlackSettings = settings
        self.rate_per_second = settings.posts_per_second
        self._http = http
        self._prefix = prefix
        self._path = path

    def rate_limit_key(self, payload: Mapping[str, Any]) -> str | None:
        digest = hashlib.sha256(self._path.encode()).hexdigest()[:12]
        return f"slack:{digest}"

    def post_staff(self, message: StaffMessage) -> DeliveryReceipt:
        if self._http is None:
            raise NotConfigured("notify.staff.webhook_url", provider="slack")
        response = self._http.request("POST", f"{self._prefix}{self._path}", json=payload(message))
        return DeliveryReceipt(
            provider_ref=None, detail=f"posted to Slack ({response.text[:20] or response.status_code})"
        )


def build(name: str, settings: ConnectorSettings, deps: ConnectorDeps) -> SlackConnector:
    assert isinstance(settings, SlackSettings)
    if settings.webhook_url is None or not settings.webhook_url.get_secret_value():
        return SlackConnector(name, settings, None, "", "")
    url = urlsplit(settings.webhook_url.get_secret_value())
    base = (settings.base_url or f"{url.scheme}://{url.netloc}").rstrip("/")
    path = url.path + (f"?{url.query}" if url.query else "")
    client = deps.http_client_factory(name) if deps.http_client_factory else httpx.Client(base_url=base)
    if str(client.base_url):
        return SlackConnector(
            name, settings, ProviderClient(client, HttpSettings(max_attempts=1), provider="slack"), "", path
        )
    http = ProviderClient(client, HttpSettings(max_attempts=1, allowed_hosts=[httpx.URL(base).host]), provider="slack")
    return SlackConnector(name, settings, http, base, path)
