"""``[notify.email] provider = "sendgrid"``."""

from __future__ import annotations

from pydantic import SecretStr

from backorder.connectors.base import ConnectorSettings

DEFAULT_BASE_URL = "https://api.sendgrid.com"
EU_BASE_URL = "https://api.eu.sendgrid.com"


class SendGridSettings(ConnectorSettings):
    api_key: SecretStr | None = None
    """``"${SENDGRID_API_KEY}"``: a key with Mail Send permission."""
    from_email: str = "backorders@example.com"
    from_name: str = ""
    region: str = "global"
    """``global`` (api.sendgrid.com) or ``eu`` (api.eu.sendgrid.com, EU regional subusers)."""
    event_verification_key: str | None = None
    """The Event Webhook's ECDSA public key (base64), to verify bounce/complaint events."""

    def missing_credentials(self) -> list[str]:
        return [] if self.api_key and self.api_key.get_secret_value() else ["api_key"]

    def effective_base_url(self) -> str:
        return (self.base_url or (EU_BASE_URL if self.region == "eu" else DEFAULT_BASE_URL)).rstrip("/")
