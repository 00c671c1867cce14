"""``[notify.sms] provider = "twilio"``."""

from __future__ import annotations

from pydantic import SecretStr

from backorder.connectors.base import ConnectorSettings

DEFAULT_BASE_URL = "https://api.twilio.com"


class TwilioSettings(ConnectorSettings):
    account_sid: str = ""
    auth_token: SecretStr | None = None
    """``"${TWILIO_AUTH_TOKEN}"``: also verifies ``X-Twilio-Signature`` on callbacks."""
    from_number: str | None = None
    """The sending number (E.164). Or set ``messaging_service_sid``."""
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    """Where Twilio posts delivery status; default ``<server.public_url>/hooks/twilio/status``."""
    messages_per_second: float = 1.0
    """Per sending number: about 1/s for a long code (more for toll-free or short codes)."""

    def missing_credentials(self) -> list[str]:
        missing = []
        if not self.account_sid:
            missing.append("account_sid")
        if not (self.auth_token and self.auth_token.get_secret_value()):
            missing.append("auth_token")
        if not (self.from_number or self.messaging_service_sid):
            missing.append("from_number")
        return missing

    def effective_base_url(self) -> str:
        return (self.base_url or DEFAULT_BASE_URL).rstrip("/")
