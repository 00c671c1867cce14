"""SMTP with smtplib: STARTTLS, implicit TLS or plain (loopback), optional AUTH.

Errors are translated at this edge: a 4xx reply (or a dropped connection, a timeout) is
retryable; a 5xx reply (refused recipient, bad auth, rejected data) is fatal. SMTP has no
idempotency key; our message id is the ``Message-ID`` and ``X-Backorder-Message-Id``."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from typing import Any

from backorder.connectors.base import (
    Connector,
    ConnectorDeps,
    ConnectorSettings,
    DeliveryReceipt,
    NotifiesCustomers,
    OutboundMessage,
)
from backorder.connectors.errors import NotConfigured, ProviderUnavailable, Rejected, TransportFailure
from backorder.connectors.smtp.mapping import mime
from backorder.connectors.smtp.settings import SmtpSettings

SmtpFactory = Callable[[SmtpSettings], Any]
"""Opens a connected ``smtplib.SMTP``-like object (tests inject a fake)."""


def tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    """Certificate and host name verified, against ``ca_file`` when set, else the system CAs."""
    return ssl.create_default_context(cafile=settings.ca_file) if settings.ca_file else ssl.create_default_context()


def _open(settings: SmtpSettings) -> smtplib.SMTP:
    if settings.security == "tls":
        return smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=settings.timeout_seconds, context=tls_context(settings)
        )
    return smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds)


class SmtpConnector(Connector, NotifiesCustomers):
    def __init__(self, name: str, settings: SmtpSettings, factory: SmtpFactory) -> None:
        super().__init__(name, settings)
        self.settings: SmtpSettings = settings
        self._factory = factory

    def send_message(self, message: OutboundMessage) -> DeliveryReceipt:
        s = self.settings
        if not s.host:
            raise NotConfigured("notify.email.host", provider="smtp")
        mail = mime(message, s.from_email, s.from_name)
        try:
            with self._factory(s) as server:
                if s.security == "starttls":
                    server.starttls(context=tls_context(s))
                if s.username:
                    server.login(s.username, s.password.get_secret_value() if s.password else "")
                refused = server.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if codes and all(400 <= c < 500 for c in codes):
                raise ProviderUnavailable(
                    codes[0], provider="smtp", detail=f"SMTP server deferred the recipient ({codes[0]})"
                ) from exc
            raise Rejected(
                codes[0] if codes else 550, provider="smtp", detail=f"SMTP server refused the recipient ({codes})"
            ) from exc
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500:
                raise ProviderUnavailable(
                    exc.smtp_code, provider="smtp", detail=f"SMTP {exc.smtp_code}: try again later"
                ) from exc
            raise Rejected(
                exc.smtp_code, provider="smtp", detail=f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}"
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TransportFailure(f"SMTP to {s.host}:{s.port} failed ({type(exc).__name__})", provider="smtp") from exc
        if refused:
            raise Rejected(550, provider="smtp", detail="SMTP server refused the recipient")
        return DeliveryReceipt(provider_ref=str(mail["Message-ID"]).strip("<>"), detail=f"accepted by {s.host}")


def _text(value: bytes | str) -> str:
    return (value.decode(errors="replace") if isinstance(value, bytes) else value)[:200]


def build(name: str, settings: ConnectorSettings, deps: ConnectorDeps) -> SmtpConnector:
    assert isinstance(settings, SmtpSettings)
    factory = deps.extras.get("smtp_factory") or _open
    return SmtpConnector(name, settings, factory)
