"""Email providers' event webhooks through the real app, on SQLite and PostgreSQL: SendGrid's Event
Webhook signed with an ECDSA P-256 key made here (over ``timestamp + body``, as SendGrid signs),
and Mailgun's webhooks signed with HMAC. Bounces, drops and complaints suppress the address;
delivery is recorded; a bad signature is 401 and changes nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from backorder.bootstrap import Application, bootstrap, read_config
from backorder.domain import commands as c
from backorder.importer import import_file
from backorder.store import tables as t
from backorder.web.app import create_app

with warnings.catch_warnings():  # Starlette prefers httpx2 for its test client; httpx works the same here
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from conftest import SettableClock

DATA = Path(__file__).resolve().parents[2] / "src" / "backorder" / "demo_data"
MAILGUN_KEY = "mailgun-webhook-signing-key"
SENDGRID_EVENTS = "/hooks/sendgrid/events"
MAILGUN_EVENTS = "/hooks/mailgun/events"


@dataclass
class Providers:
    """SendGrid and Mailgun answered on a mock transport; what was sent is kept."""

    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        n = len(self.requests)
        if request.url.path == "/v3/mail/send":
            return httpx.Response(202, headers={"X-Message-Id": f"SGREF{n}"})
        return httpx.Response(200, json={"id": f"<{n}@mg.example.com>", "message": "Queued. Thank you."})


@dataclass
class Setup:
    app: Application
    client: TestClient
    providers: Providers
    key: ec.EllipticCurvePrivateKey

    def order(self, order_id: str, email: str) -> str:
        """Place a backordered order, send its first email; return our message id (bo-N)."""
        line = (c.NewLine(1, "WN-PWC-263-5", 2),)
        self.app.bus.handle(c.PlaceOrder(order_id, "web", self.app.clock.now(), line, customer_email=email))
        before = len(self.providers.requests)
        self.app.dispatcher.drain()
        (request,) = self.providers.requests[before:]
        assert self.app.messaging is not None
        ((message_id, _),) = [
            (m, s) for m, s in self.app.messaging.statuses().items() if m not in self._seen and s == "sent"
        ]
        self._seen.add(message_id)
        assert message_id.encode() in request.content
        return message_id

    _seen: set[str] = field(default_factory=set)

    def emails_sent(self) -> int:
        return len(self.providers.requests)

    def state(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every messaging table and the outbox, to show a rejected webhook changed nothing."""
        tables = (t.message_status, t.suppressions, t.message_settings, t.message_preferences, t.outbox)
        with self.app.engine.connect() as conn:
            return {x.name: sorted((tuple(r) for r in conn.execute(select(x))), key=repr) for x in tables}


def _make_app(
    database_url: str, clock: SettableClock, tmp_path: Path, email_settings: str
) -> tuple[Application, Providers]:
    config = tmp_path / "backorder.toml"
    config.write_text(
        f"""
[server]
public_url = "https://shop.example"
[notify.email]
{email_settings}
[notify.sms]
provider = "sandbox"
[notify.staff]
provider = "sandbox"
""",
        encoding="utf-8",
    )
    providers = Providers()

    def factory(name: str) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(providers), base_url="https://provider.test")

    app = bootstrap(
        read_config(config, environ={}),
        database_url=database_url,
        clock=clock,
        sandbox_folder=False,
        http_client_factory=factory,
    )
    import_file(app.bus, DATA / "suppliers.csv", "suppliers")
    import_file(app.bus, DATA / "skus.csv", "skus")
    return app, providers


@pytest.fixture
def sendgrid(database_url: str, clock: SettableClock, tmp_path: Path) -> Iterator[Setup]:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    settings = f"""provider = "sendgrid"
api_key = "SG.test-key"
from_email = "backorders@shop.example"
event_verification_key = "{base64.b64encode(public).decode()}"
"""
    app, providers = _make_app(database_url, clock, tmp_path, settings)
    try:
        yield Setup(app, TestClient(create_app(app)), providers, key)
    finally:
        app.close()


@pytest.fixture
def mailgun(database_url: str, clock: SettableClock, tmp_path: Path) -> Iterator[Setup]:
    settings = f"""provider = "mailgun"
api_key = "key-test"
domain = "mg.shop.example"
webhook_signing_key = "{MAILGUN_KEY}"
"""
    app, providers = _make_app(database_url, clock, tmp_path, settings)
    try:
        yield Setup(app, TestClient(create_app(app)), providers, ec.generate_private_key(ec.SECP256R1()))
    finally:
        app.close()


# --- SendGrid -------------------------------------------------------------------------------------


def _sendgrid_event(message_id: str, email: str, event: str, **extra: Any) -> dict[str, Any]:
    """An Event Webhook event as SendGrid posts it: custom args (ours) at the top level."""
    return {
        "email": email,
        "event": event,
        "timestamp": 1772442000,
        "sg_event_id": f"ev-{event}-{message_id}",
        "sg_message_id": f"SGREF.filterdrecv-{message_id}",
        "bo_message_id": message_id,
        "category": ["backorder", "backorder_created"],
        **extra,
    }


def _sendgrid_post(
    s: Setup,
    events: list[dict[str, Any]],
    *,
    key: ec.EllipticCurvePrivateKey | None = None,
    tamper: Callable[[bytes], bytes] = lambda body: body,
    timestamp: int | None = None,
) -> httpx.Response:
    body = (json.dumps(events, separators=(",", ":")) + "\r\n").encode()
    stamp = str(timestamp if timestamp is not None else int(s.app.clock.now().timestamp()))
    signature = (key or s.key).sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    headers = {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }
    return s.client.post(SENDGRID_EVENTS, content=tamper(body), headers=headers)


@pytest.mark.parametrize(
    ("event", "extra", "status"),
    [
        ("bounce", {"type": "bounce", "reason": "550 5.1.1 unknown user", "status": "5.1.1"}, "bounced"),
        ("dropped", {"reason": "Bounced Address"}, "failed"),
        ("spamreport", {}, "complained"),
    ],
)
def test_a_sendgrid_bounce_drop_or_spam_report_suppresses_the_address(
    sendgrid: Setup, event: str, extra: dict[str, Any], status: str
) -> None:
    email = f"canary.{event}@canary-pii.example"
    message_id = sendgrid.order("WEB-1", email)
    response = _sendgrid_post(sendgrid, [_sendgrid_event(message_id, email.upper(), event, **extra)])
    assert response.status_code == 204
    state = sendgrid.app.messaging
    assert state is not None and state.is_suppressed(email)
    assert state.statuses()[message_id] == status
    sent = sendgrid.emails_sent()
    sendgrid.app.bus.handle(c.CancelOrder("WEB-1"))
    sendgrid.app.dispatcher.drain()
    assert sendgrid.emails_sent() == sent  # nothing more goes to a suppressed address


def test_a_sendgrid_delivered_event_records_the_status_and_suppresses_nothing(sendgrid: Setup) -> None:
    email = "canary.delivered@canary-pii.example"
    message_id = sendgrid.order("WEB-2", email)
    processed = _sendgrid_event(message_id, email, "processed")
    delivered = _sendgrid_event(message_id, email, "delivered", response="250 OK")
    assert _sendgrid_post(sendgrid, [processed, delivered]).status_code == 204
    state = sendgrid.app.messaging
    assert state is not None and state.statuses()[message_id] == "delivered"
    assert not state.is_suppressed(email)


def test_a_sendgrid_event_without_our_id_is_matched_by_sendgrids_message_id(sendgrid: Setup) -> None:
    email = "canary.byref@canary-pii.example"
    message_id = sendgrid.order("WEB-3", email)
    ref = f"SGREF{sendgrid.emails_sent()}"
    event = {"email": email, "event": "delivered", "timestamp": 1772442000, "sg_message_id": f"{ref}.filterdrecv-1"}
    assert _sendgrid_post(sendgrid, [event]).status_code == 204
    assert sendgrid.app.messaging is not None and sendgrid.app.messaging.statuses()[message_id] == "delivered"


def test_a_blocked_sendgrid_bounce_is_a_failure_but_keeps_the_address(sendgrid: Setup) -> None:
    email = "canary.blocked@canary-pii.example"
    message_id = sendgrid.order("WEB-4", email)
    event = _sendgrid_event(message_id, email, "bounce", type="blocked", reason="IP on a block list")
    assert _sendgrid_post(sendgrid, [event]).status_code == 204
    state = sendgrid.app.messaging
    assert state is not None and state.statuses()[message_id] == "failed"
    assert not state.is_suppressed(email)


@pytest.mark.parametrize(
    "forge",
    ["another key", "body changed after signing", "no signature header", "timestamp older than 72 hours"],
)
def test_a_sendgrid_webhook_with_a_bad_signature_is_401_and_changes_nothing(sendgrid: Setup, forge: str) -> None:
    email = "canary.forged@canary-pii.example"
    message_id = sendgrid.order("WEB-5", email)
    events = [_sendgrid_event(message_id, email, "bounce", type="bounce")]
    before = sendgrid.state()
    if forge == "another key":
        response = _sendgrid_post(sendgrid, events, key=ec.generate_private_key(ec.SECP256R1()))
    elif forge == "body changed after signing":
        response = _sendgrid_post(sendgrid, events, tamper=lambda b: b.replace(b'"bounce"', b'"spamreport"', 1))
    elif forge == "no signature header":
        response = sendgrid.client.post(SENDGRID_EVENTS, content=json.dumps(events))
    else:
        old = int(sendgrid.app.clock.now().timestamp()) - 73 * 3600
        response = _sendgrid_post(sendgrid, events, timestamp=old)
    assert response.status_code == 401
    assert sendgrid.state() == before
    assert sendgrid.app.messaging is not None and not sendgrid.app.messaging.is_suppressed(email)


# --- Mailgun --------------------------------------------------------------------------------------


def _mailgun_post(s: Setup, event: dict[str, Any], *, key: str = MAILGUN_KEY, token: str = "tok-1") -> httpx.Response:
    timestamp = str(int(s.app.clock.now().timestamp()))
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    body = {"signature": {"timestamp": timestamp, "token": token, "signature": signature}, "event-data": event}
    return s.client.post(MAILGUN_EVENTS, content=json.dumps(body), headers={"Content-Type": "application/json"})


def _mailgun_event(message_id: str, email: str, event: str, **extra: Any) -> dict[str, Any]:
    return {
        "event": event,
        "id": f"ev-{event}",
        "timestamp": 1772442000.0,
        "recipient": email,
        "user-variables": {"bo_message_id": message_id},
        "message": {"headers": {"message-id": "1@mg.example.com"}},
        **extra,
    }


@pytest.mark.parametrize(
    ("event", "extra", "status"),
    [("failed", {"severity": "permanent", "reason": "bounce"}, "bounced"), ("complained", {}, "complained")],
)
def test_a_mailgun_permanent_failure_or_complaint_suppresses_the_address(
    mailgun: Setup, event: str, extra: dict[str, Any], status: str
) -> None:
    email = f"canary.mg-{event}@canary-pii.example"
    message_id = mailgun.order("WEB-6", email)
    assert _mailgun_post(mailgun, _mailgun_event(message_id, email, event, **extra)).status_code == 204
    state = mailgun.app.messaging
    assert state is not None and state.is_suppressed(email)
    assert state.statuses()[message_id] == status


def test_a_mailgun_delivered_event_records_the_status_and_a_temporary_failure_changes_nothing(
    mailgun: Setup,
) -> None:
    email = "canary.mg-delivered@canary-pii.example"
    message_id = mailgun.order("WEB-7", email)
    temporary = _mailgun_event(message_id, email, "failed", severity="temporary")
    assert _mailgun_post(mailgun, temporary).status_code == 204
    state = mailgun.app.messaging
    assert state is not None and state.statuses()[message_id] == "sent" and not state.is_suppressed(email)
    assert _mailgun_post(mailgun, _mailgun_event(message_id, email, "delivered"), token="tok-2").status_code == 204
    assert state.statuses()[message_id] == "delivered" and not state.is_suppressed(email)


@pytest.mark.parametrize("forge", ["another key", "token changed after signing", "no signature"])
def test_a_mailgun_webhook_with_a_bad_signature_is_401_and_changes_nothing(mailgun: Setup, forge: str) -> None:
    email = "canary.mg-forged@canary-pii.example"
    message_id = mailgun.order("WEB-8", email)
    event = _mailgun_event(message_id, email, "failed", severity="permanent")
    before = mailgun.state()
    if forge == "another key":
        response = _mailgun_post(mailgun, event, key="not-the-key")
    elif forge == "token changed after signing":
        timestamp = str(int(mailgun.app.clock.now().timestamp()))
        signature = hmac.new(MAILGUN_KEY.encode(), (timestamp + "tok-1").encode(), hashlib.sha256).hexdigest()
        body = {"signature": {"timestamp": timestamp, "token": "tok-2", "signature": signature}, "event-data": event}
        response = mailgun.client.post(MAILGUN_EVENTS, content=json.dumps(body))
    else:
        response = mailgun.client.post(MAILGUN_EVENTS, content=json.dumps({"event-data": event}))
    assert response.status_code == 401
    assert mailgun.state() == before
