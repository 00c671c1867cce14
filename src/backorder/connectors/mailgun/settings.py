"""``[notify.email] provider = "mailgun"``."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from backorder.connectors.base import ConnectorSettings

REGION_BASE_URLS = {"us": "https://api.mailgun.net", "eu": "https://api.eu.mailgun.net"}


class MailgunSettings(ConnectorSettings):
    api_key: SecretStr | None = None
    """``"${MAILGUN_API_KEY}"`` (sent as HTTP basic ``api:KEY``)."""
    domain: str = ""
    """The sending domain, e.g. ``mg.example.com``."""
    region: Literal["us", "eu"] = "us"
    from_email: str = "backorders@example.com"
    from_name: str = ""
    webhook_signing_key: SecretStr | None = None
    """The HTTP webhook signing key (Mailgun → Webhooks), to verify event webhooks."""

    def missing_credentials(self) -> list[str]:
        missing = [] if self.api_key and self.api_key.get_secret_value() else ["api_key"]
        return missing + ([] if self.domain else ["domain"])

    def effective_base_url(self) -> str:
        return (self.base_url or REGION_BASE_URLS[self.region]).rstrip("/")
