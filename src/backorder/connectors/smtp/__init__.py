"""Plain SMTP for customer email (and supplier POs), so a shop with no email provider works."""

from backorder.connectors.base import ConnectorSpec
from backorder.connectors.smtp.client import SmtpConnector, build
from backorder.connectors.smtp.settings import SmtpSettings

SPEC = ConnectorSpec(kind="smtp", settings=SmtpSettings, build=build, roles=frozenset({"email"}))

__all__ = ["SPEC", "SmtpConnector", "SmtpSettings"]
