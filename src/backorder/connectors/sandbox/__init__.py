"""The sandbox connector: records every message a real provider would have received, so the
demo and tests can read what customers, staff and suppliers would be told."""

from backorder.connectors.base import ConnectorSpec
from backorder.connectors.sandbox.client import SandboxConnector, build
from backorder.connectors.sandbox.settings import SandboxSettings

SPEC = ConnectorSpec(
    kind="sandbox",
    settings=SandboxSettings,
    build=build,
    roles=frozenset({"channel", "email", "sms", "staff", "purchasing"}),
)

__all__ = ["SPEC", "SandboxConnector", "SandboxSettings"]
