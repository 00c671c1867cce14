"""Twilio Programmable Messaging for customer SMS; status callbacks and inbound messages (STOP
and friends) arrive at ``/hooks/twilio/status`` and ``/hooks/twilio/inbound``."""

from backorder.connectors.base import ConnectorSpec
from backorder.connectors.twilio.client import TwilioConnector, build
from backorder.connectors.twilio.settings import TwilioSettings

SPEC = ConnectorSpec(kind="twilio", settings=TwilioSettings, build=build, roles=frozenset({"sms"}))

__all__ = ["SPEC", "TwilioConnector", "TwilioSettings"]
