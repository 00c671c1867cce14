"""The SMTP connector against a real SMTP server (aiosmtpd) on loopback: plain, STARTTLS with a
self-signed certificate made here, implicit TLS and AUTH; the headers and parts of what arrives;
and which failures retry (refused connection, 4xx) and which dead-letter (5xx)."""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from backorder.bootstrap import bootstrap, read_config
from backorder.connectors.base import ConnectorDeps, OutboundMessage
from backorder.connectors.errors import FatalError, RetryableError
from backorder.connectors.smtp import SPEC, SmtpConnector, SmtpSettings
from backorder.domain import commands as c
from backorder.importer import import_file

if TYPE_CHECKING:
    from conftest import SettableClock

DATA = Path(__file__).resolve().parents[2] / "src" / "backorder" / "demo_data"

USER, PASSWORD = "shop", "relay-pass"
EMAIL = "canary.smtp@canary-pii.example"
UNSUBSCRIBE = {
    "List-Unsubscribe": "<https://shop.example/hooks/unsubscribe/tok>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}


@dataclass
class Mailbox:
    """The aiosmtpd handler: keeps what arrives; answers RCPT or DATA with a set reply."""

    received: list[tuple[EmailMessage, Any, bool]] = field(default_factory=list)
    rcpt_reply: str | None = None
    data_reply: str | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        mail = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(mail, EmailMessage)
        encrypted = server.transport.get_extra_info("ssl_object") is not None
        self.received.append((mail, session, encrypted))
        return "250 Message accepted for delivery"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    # handled=False: aiosmtpd itself answers a failure with 535.
    return AuthResult(success=ok, handled=ok, auth_data=auth_data)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and localhost): (cert.pem, key.pem)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


@dataclass
class Server:
    mailbox: Mailbox
    port: int


@pytest.fixture
def start_server(certificate: tuple[Path, Path]) -> Iterator[Any]:
    started: list[Controller] = []

    def start(security: str = "none", auth: bool = False) -> Server:
        mailbox = Mailbox()
        kwargs: dict[str, Any] = {}
        if security == "starttls":
            kwargs["tls_context"] = _server_context(certificate)
            kwargs["require_starttls"] = True
        if security == "tls":
            kwargs["ssl_context"] = _server_context(certificate)
        if auth:
            kwargs["authenticator"] = _authenticate
            kwargs["auth_required"] = True
        port = _free_port()
        controller = Controller(mailbox, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        started.append(controller)
        return Server(mailbox, port)

    yield start
    for controller in started:
        controller.stop()


def _connector(port: int, certificate: tuple[Path, Path] | None = None, **settings: Any) -> SmtpConnector:
    values: dict[str, Any] = {
        "provider": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from_email": "backorders@shop.example",
        "from_name": "Atelier Supplies",
        "timeout_seconds": 10,
    }
    if certificate is not None:
        values["ca_file"] = str(certificate[0])
    values.update(settings)
    connector = SPEC.build("notify.email", SmtpSettings(**values), ConnectorDeps())
    assert isinstance(connector, SmtpConnector)
    return connector


def _message(message_id: str = "bo-42") -> OutboundMessage:
    return OutboundMessage(
        message_id,
        "email",
        EMAIL,
        "Your backorder WEB-1001",
        "Hello Ada,\nyour order is on its way soon.",
        "<p>Hello Ada,<br>your order is on its way soon.</p>",
        "backorder_created",
        UNSUBSCRIBE,
    )


def test_a_plain_smtp_server_receives_a_multipart_email_with_our_id_and_unsubscribe_headers(
    start_server: Any,
) -> None:
    server = start_server()
    receipt = _connector(server.port).send_message(_message("bo-42"))
    ((mail, session, encrypted),) = server.mailbox.received
    assert receipt.provider_ref == "bo-42@shop.example"
    assert mail["Message-ID"] == "<bo-42@shop.example>"
    assert mail["X-Backorder-Message-Id"] == "bo-42"
    assert mail["List-Unsubscribe"] == "<https://shop.example/hooks/unsubscribe/tok>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["To"] == EMAIL and mail["From"] == "Atelier Supplies <backorders@shop.example>"
    assert mail["Subject"] == "Your backorder WEB-1001"
    assert mail.get_content_type() == "multipart/alternative"
    parts = {part.get_content_type(): part.get_content() for part in mail.iter_parts()}
    assert set(parts) == {"text/plain", "text/html"}
    assert "your order is on its way soon." in parts["text/plain"]
    assert "<p>Hello Ada,<br>" in parts["text/html"]
    assert not encrypted and not session.authenticated


def test_starttls_with_a_trusted_self_signed_certificate_encrypts_the_session(
    start_server: Any, certificate: tuple[Path, Path]
) -> None:
    server = start_server("starttls")
    _connector(server.port, certificate, security="starttls").send_message(_message())
    ((mail, session, encrypted),) = server.mailbox.received
    assert encrypted and session.ssl is not None  # the message travelled inside TLS
    assert mail["X-Backorder-Message-Id"] == "bo-42"


def test_starttls_refuses_a_certificate_it_does_not_trust_and_retries_later(start_server: Any) -> None:
    server = start_server("starttls")
    with pytest.raises(RetryableError) as caught:
        _connector(server.port, None, security="starttls").send_message(_message())
    assert server.mailbox.received == []
    assert EMAIL not in caught.value.detail


def test_implicit_tls_delivers(start_server: Any, certificate: tuple[Path, Path]) -> None:
    server = start_server("tls")
    _connector(server.port, certificate, security="tls").send_message(_message())
    ((_, _, encrypted),) = server.mailbox.received
    assert encrypted


def test_auth_over_starttls_logs_in_with_the_configured_account(
    start_server: Any, certificate: tuple[Path, Path]
) -> None:
    server = start_server("starttls", auth=True)
    _connector(server.port, certificate, security="starttls", username=USER, password=PASSWORD).send_message(_message())
    ((_, session, encrypted),) = server.mailbox.received
    assert encrypted and session.authenticated and session.auth_data.login == USER.encode()


def test_a_wrong_password_is_fatal(start_server: Any, certificate: tuple[Path, Path]) -> None:
    server = start_server("starttls", auth=True)
    connector = _connector(server.port, certificate, security="starttls", username=USER, password="wrong")
    with pytest.raises(FatalError) as caught:
        connector.send_message(_message())
    assert getattr(caught.value, "status_code", None) == 535
    assert server.mailbox.received == []


def test_a_refused_connection_is_retryable() -> None:
    with pytest.raises(RetryableError) as caught:
        _connector(_free_port()).send_message(_message())  # nothing listens there any more
    assert "ConnectionRefusedError" in caught.value.detail


@pytest.mark.parametrize(
    ("where", "reply"),
    [("rcpt", "550 5.1.1 Mailbox unavailable"), ("data", "554 5.7.1 Message rejected as spam")],
)
def test_a_5xx_reply_is_fatal(start_server: Any, where: str, reply: str) -> None:
    server = start_server()
    setattr(server.mailbox, f"{where}_reply", reply)
    with pytest.raises(FatalError) as caught:
        _connector(server.port).send_message(_message())
    assert getattr(caught.value, "status_code", None) == int(reply[:3])
    assert server.mailbox.received == []


@pytest.mark.parametrize(
    ("where", "reply"),
    [("rcpt", "450 4.2.1 Mailbox busy, try later"), ("data", "451 4.3.0 Local error, try again")],
)
def test_a_4xx_reply_is_retryable(start_server: Any, where: str, reply: str) -> None:
    server = start_server()
    setattr(server.mailbox, f"{where}_reply", reply)
    with pytest.raises(RetryableError) as caught:
        _connector(server.port).send_message(_message())
    assert caught.value.status_code == int(reply[:3])
    assert server.mailbox.received == []


def test_the_dispatcher_sends_through_smtp_retries_a_4xx_and_dead_letters_a_5xx(
    start_server: Any, database_url: str, clock: SettableClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = start_server()
    config = tmp_path / "backorder.toml"
    config.write_text(
        f"""
[server]
public_url = "https://shop.example"
[notify.email]
provider = "smtp"
host = "127.0.0.1"
port = {server.port}
security = "none"
from_email = "backorders@shop.example"
""",
        encoding="utf-8",
    )
    app = bootstrap(read_config(config, environ={}), database_url=database_url, clock=clock, sandbox_folder=False)
    try:
        import_file(app.bus, DATA / "suppliers.csv", "suppliers")
        import_file(app.bus, DATA / "skus.csv", "skus")

        def order(order_id: str) -> None:
            line = (c.NewLine(1, "WN-PWC-263-5", 2),)
            app.bus.handle(c.PlaceOrder(order_id, "web", app.clock.now(), line, customer_email=EMAIL))

        order("WEB-S1")
        app.dispatcher.drain()
        ((mail, _, _),) = server.mailbox.received
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert mail["List-Unsubscribe"].startswith("<https://shop.example/hooks/unsubscribe/")
        assert mail.get_content_type() == "multipart/alternative"

        server.mailbox.rcpt_reply = "451 4.3.0 Try again later"
        order("WEB-S2")
        stats = app.dispatcher.drain()
        assert stats.retried == 1 and stats.dead == 0
        server.mailbox.rcpt_reply = "550 5.1.1 Mailbox unavailable"
        clock.advance(hours=2)
        stats = app.dispatcher.drain()
        assert stats.dead == 1
        (dead,) = app.queue.list(status="dead")
        assert "550" in dead["last_error"]
        assert len(server.mailbox.received) == 1
        assert EMAIL not in caplog.text
    finally:
        app.close()
