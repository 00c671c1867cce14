"""The one contract every connector passes. A connector contributes a ``ContractCase`` in
``tests/contract/cases/<kind>.py`` (module attribute ``CASE``); ``test_contract.py`` runs the
same checks over all of them:

- settings: the sample config validates; every secret is a SecretStr and never in ``repr``;
- outbound (per capability call): the request it sends is checked against the vendor's
  published spec (``validate``); 429 with Retry-After is retryable with the wait; 5xx/408 are
  retryable; other 4xx are fatal and not retried; network errors are retryable transport
  failures raised ``from`` the httpx error;
- inbound (``ReceivesWebhooks``): each sample, signed as the platform signs it, verifies and
  parses into the expected commands; a flipped bit, a missing signature header, and the same
  JSON re-serialised are each rejected before anything is parsed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from backorder.connectors.base import Connector, ConnectorDeps, DeliveryReceipt
from backorder.connectors.registry import load_specs
from backorder.domain.commands import Command

NOW = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


@dataclass
class OutboundCall:
    """One outbound capability call of a connector and how to judge its request."""

    name: str
    invoke: Callable[[Connector], DeliveryReceipt]
    ok_response: Callable[[httpx.Request], httpx.Response] | None = None
    """The provider's success answer; None for connectors that make no HTTP call."""
    validate: Callable[[httpx.Request], None] | None = None
    """Raise AssertionError unless the request matches the vendor's published spec."""
    spec_source: str = ""
    """Where ``validate`` takes its truth from (a file under shared/vendor, or a doc URL)."""


@dataclass
class InboundSample:
    name: str
    body: bytes
    sign: Callable[[bytes], dict[str, str]]
    """Headers the platform would send with this body (signature included)."""
    expect: Callable[[list[Command]], None]
    url: str = "https://backorder.example.com/webhooks/x/y"
    signature_headers: tuple[str, ...] = ()
    """Headers carrying the signature (removed in the missing-signature case)."""
    extra_headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class ContractCase:
    kind: str
    settings: dict[str, Any]
    secret_fields: tuple[str, ...] = ()
    outbound: list[OutboundCall] = field(default_factory=list)
    inbound: list[InboundSample] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    """Extra dependencies the connector's factory needs (e.g. a sandbox sink)."""
    base_url: str = "https://provider.example.test"


class Recorder:
    """An httpx MockTransport handler that records requests and answers with a script."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.requests: list[httpx.Request] = []
        self._answer = answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self._answer(request)


def build_connector(case: ContractCase, handler: Callable[[httpx.Request], httpx.Response]) -> Connector:
    spec = load_specs()[case.kind]
    settings = spec.settings.model_validate(case.settings)

    def client_factory(name: str) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(handler), base_url=case.base_url)

    return spec.build(
        f"contract.{case.kind}", settings, ConnectorDeps(http_client_factory=client_factory, extras=case.extras)
    )
