"""Mailgun Messages API for customer email (US or EU region); delivery, bounce and complaint
events arrive through signed webhooks (``/hooks/mailgun/events``)."""

from backorder.connectors.base import ConnectorSpec
from backorder.connectors.mailgun.client import MailgunConnector, build
from backorder.connectors.mailgun.settings import MailgunSettings

SPEC = ConnectorSpec(kind="mailgun", settings=MailgunSettings, build=build, roles=frozenset({"email"}))

__all__ = ["SPEC", "MailgunConnector", "MailgunSettings"]
