"""Our message as a MIME email (plain text + HTML alternative)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formataddr

from backorder.connectors.base import OutboundMessage


def mime(message: OutboundMessage, from_email: str, from_name: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = formataddr((from_name, from_email)) if from_name else from_email
    mail["To"] = message.to
    mail["Subject"] = message.subject
    domain = from_email.rpartition("@")[2] or "backorder.local"
    # Our id in the Message-ID: a duplicate delivery carries the same one and is traceable.
    mail["Message-ID"] = f"<{message.message_id}@{domain}>"
    mail["X-Backorder-Message-Id"] = message.message_id
    for name, value in message.headers.items():
        mail[name] = value
    mail.set_content(message.text)
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    return mail
