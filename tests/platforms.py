"""The real composition root wired to a fake platform: connectors' HTTP calls go to an in-process
``httpx.MockTransport`` handler instead of the network (for integration tests of channels)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import httpx

from backorder.bootstrap import Application, bootstrap
from backorder.config import parse_config
from backorder.connectors.base import settings_lookup
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
