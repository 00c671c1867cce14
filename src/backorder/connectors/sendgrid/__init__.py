"""SendGrid (Twilio SendGrid) v3 Mail Send for customer email; bounces and complaints arrive
through the signed Event Webhook (``/hooks/sendgrid/events``)."""

from backorder.connectors.base import ConnectorSpec
from backorder.connectors.sendgrid.client import SendGridConnector, build
from backorder.connectors.sendgrid.settings import SendGridSettings

SPEC = ConnectorSpec(kind="sendgrid", settings=SendGridSettings, build=build, roles=frozenset({"email"}))

__all__ = ["SPEC", "SendGridConnector", "SendGridSettings"]
