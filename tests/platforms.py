"""The real composition root wired to a fake platform: connectors' HTTP calls go to an in-process
``httpx.MockTransport`` handler instead of the network (for integration tests of channels); and
a webhook taken in as the ingress takes it, then processed as the worker processes it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from backorder.bootstrap import Application, bootstrap
from backorder.channels.processor import Outcome
from backorder.config import parse_config
from backorder.connectors.base import InboundRequest, settings_lookup
from backorder.connectors.registry import load_specs
from backorder.services.ports import Clock


def app_calling(
    raw_config: dict[str, Any],
    platform: Callable[[httpx.Request], httpx.Response],
    database_url: str,
    clock: Clock,
    seed: int = 3,
) -> Application:
    """The application of ``raw_config`` whose connectors send their HTTP calls to ``platform``
    (the fake platform), at the channel's API base URL. The caller closes it."""
    cfg = parse_config(raw_config, settings_lookup(load_specs()), environ={})

    def factory(name: str) -> httpx.Client:
        settings: Any = cfg.channels.get(name.removeprefix("channels."))
        base = settings.api_base() if hasattr(settings, "api_base") else getattr(settings, "base_url", None)
        return httpx.Client(transport=httpx.MockTransport(platform), base_url=base or "")

    return bootstrap(
        cfg,
        database_url=database_url,
        clock=clock,
        sandbox_folder=False,
        http_client_factory=factory,
        rng=random.Random(seed),
    )


def hmac_base64(secret: str, body: bytes) -> str:
    """Shopify's and WooCommerce's webhook signature: the body's HMAC-SHA256, base64."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def receive_webhook(
    app: Application, platform: str, channel: str, headers: Mapping[str, str], body: bytes
) -> tuple[int, Outcome]:
    """What the ingress does (verify, identify, inbox commit), then the worker's processor on
    that row; returns the row id and the outcome. ``headers``: lower-case names, signed."""
    services = app.channel_services
    receiver = services.receivers[channel]
    request = InboundRequest(platform, channel, "/", dict(headers), body, app.clock.now())
    receiver.verify(request)
    identity = receiver.identify(request)
    row_id, created = services.inbox.record(
        platform, channel, identity.event_key, identity.topic, headers, body, app.clock.now()
    )
    assert created and row_id is not None
    outcome = services.processor.process_id(row_id)
    assert outcome is not None
    return row_id, outcome
