"""``[notify.email] provider = "smtp"``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from backorder.connectors.base import ConnectorSettings


class SmtpSettings(ConnectorSettings):
    host: str = ""
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    """``starttls`` (port 587), ``tls`` (implicit TLS, port 465) or ``none`` (loopback relays only)."""
    username: str | None = None
    password: SecretStr | None = None
    from_email: str = "backorders@example.com"
    from_name: str = ""
    timeout_seconds: float = Field(30.0, gt=0)
    ca_file: str | None = None
    """A PEM file of CA certificates to trust *instead of* the system store (a relay with a
    private CA). The server's certificate and host name are always verified."""

    def missing_credentials(self) -> list[str]:
        missing = [] if self.host else ["host"]
        if self.username and not (self.password and self.password.get_secret_value()):
            missing.append("password")
        return missing
