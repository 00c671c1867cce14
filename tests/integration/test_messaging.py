"""Customer messaging end to end on SQLite and PostgreSQL, with Mailgun and Twilio answered by
httpx mock transports: SMS opt-out (STOP) with its one confirmation, ETA debounce, bounce →
SMS fallback, one-click unsubscribe, delivery status — and no canary address in any log."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import update

from backorder.bootstrap import Application, bootstrap, read_config
from backorder.domain import commands as c
from backorder.importer import import_file
from backorder.notify.preferences import set_preference
from backorder.store import tables as t
from backorder.web.app import create_app

with warnings.catch_warnings():  # Starlette prefers httpx2 for its test client; httpx works the same here
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from conftest import SettableClock

DATA = Path(__file__).resolve().parents[2] / "src" / "backorder" / "demo_data"
TOKEN = "twilio-test-token"
SIGNING_KEY = "mailgun-signing-key"
EMAIL = "canary.messaging@canary-pii.example"
PHONE = "+447700911911"


class Providers:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if "/Messages.json" in request.url.path:
            return httpx.Response(201, json={"sid": f"SM{len(self.requests):032d}"})
        return httpx.Response(200, json={"id": f"<{len(self.requests)}@mg.example.com>", "message": "Queued"})

    def sms(self) -> list[dict[str, str]]:
        return [
            {k: v[0] for k, v in parse_qs(r.content.decode()).items()}
            for r in self.requests
            if "/Messages.json" in r.url.path
        ]

    def emails(self) -> list[bytes]:
        return [r.content for r in self.requests if r.url.path.endswith("/messages")]


@pytest.fixture
def providers() -> Providers:
    return Providers()


@pytest.fixture
def messaging_app(
    database_url: str, clock: SettableClock, tmp_path: Path, providers: Providers
) -> Iterator[Application]:
    config = tmp_path / "backorder.toml"
    config.write_text(
        f"""
[server]
public_url = "https://shop.example"
[notify.email]
provider = "mailgun"
api_key = "key-test"
domain = "mg.example.com"
webhook_signing_key = "{SIGNING_KEY}"
[notify.sms]
provider = "twilio"
account_sid = "AC0123456789abcdef0123456789abcdef"
auth_token = "{TOKEN}"
from_number = "+15005550006"
messages_per_second = 1000
[notify.staff]
provider = "sandbox"
[messages]
sms_consent_from_order = true
""",
        encoding="utf-8",
    )

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
    try:
        yield app
    finally:
        app.close()


def _order(app: Application, order_id: str, email: str | None, phone: str | None) -> None:
    app.bus.handle(
        c.PlaceOrder(
            order_id,
            "web",
            app.clock.now(),
            (c.NewLine(1, "WN-PWC-263-5", 2),),
            customer_email=email,
            customer_phone=phone,
            customer_name="Canary",
        )
    )


def _twilio_post(client: TestClient, path: str, params: dict[str, str]) -> httpx.Response:
    url = f"https://shop.example{path}"
    signed = url + "".join(k + params[k] for k in sorted(params))
    signature = base64.b64encode(hmac.new(TOKEN.encode(), signed.encode(), hashlib.sha1).digest()).decode()
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def _mailgun_post(client: TestClient, app: Application, event: dict[str, object]) -> httpx.Response:
    timestamp, token = str(int(app.clock.now().timestamp())), "tok-" + str(len(json.dumps(event)))
    signature = hmac.new(SIGNING_KEY.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    body = {"signature": {"timestamp": timestamp, "token": token, "signature": signature}, "event-data": event}
    return client.post("/hooks/mailgun/events", content=json.dumps(body))


def test_stop_suppresses_the_number_at_once_and_only_one_confirmation_follows(
    messaging_app: Application, providers: Providers, caplog: pytest.LogCaptureFixture
) -> None:
    app = messaging_app
    caplog.set_level(logging.DEBUG)
    _order(app, "WEB-1", None, PHONE)
    app.dispatcher.drain()
    assert [m["To"] for m in providers.sms()] == [PHONE]
    client = TestClient(create_app(app))
    assert (
        _twilio_post(
            client, "/hooks/twilio/inbound", {"From": PHONE, "Body": " opt OUT ", "MessageSid": "SMx"}
        ).status_code
        == 200
    )
    assert (
        _twilio_post(client, "/hooks/twilio/inbound", {"From": PHONE, "Body": "stop", "MessageSid": "SMy"}).status_code
        == 200
    )
    bad = client.post(
        "/hooks/twilio/inbound", data={"From": PHONE, "Body": "START"}, headers={"X-Twilio-Signature": "bad"}
    )
    assert bad.status_code == 401
    app.bus.handle(c.CancelOrder("WEB-1"))
    app.dispatcher.drain()
    texts = providers.sms()
    assert len(texts) == 2, texts  # the backorder message, then exactly one confirmation
    assert "no more text messages" in texts[1]["Body"]
    assert EMAIL not in caplog.text and PHONE not in caplog.text


def test_delivery_status_is_recorded_from_twilio_callbacks(messaging_app: Application, providers: Providers) -> None:
    app = messaging_app
    _order(app, "WEB-2", None, PHONE)
    app.dispatcher.drain()
    callback = providers.sms()[0]["StatusCallback"]
    parts = urlsplit(callback)
    client = TestClient(create_app(app))
    path = f"{parts.path}?{parts.query}"
    response = _twilio_post(client, path, {"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "30003"})
    assert response.status_code == 204
    message_id = parse_qs(parts.query)["bo"][0]
    assert app.messaging is not None and app.messaging.statuses()[message_id] == "undelivered"


def test_eta_changes_are_debounced_for_customers(messaging_app: Application, providers: Providers) -> None:
    app = messaging_app
    _order(app, "WEB-3", EMAIL, None)
    app.dispatcher.drain()
    assert len(providers.emails()) == 1

    def eta_change(days: int) -> None:
        line = t.order_lines.c
        with app.engine.begin() as conn:
            eta = conn.execute(t.order_lines.select().where(line.order_id == "WEB-3")).first().eta  # type: ignore[union-attr]
            new = eta + timedelta(days=days)
            conn.execute(update(t.order_lines).where(line.order_id == "WEB-3").values(eta=new))
        payload = {
            "event": "BackorderEtaChanged",
            "order_id": "WEB-3",
            "channel": "web",
            "changes": [{"line_no": 1, "sku": "WN-PWC-263-5", "previous": eta.isoformat(), "current": new.isoformat()}],
        }
        app.queue.enqueue("notify_customer", "customer", payload, app.clock.now())

    eta_change(1)  # less than two days: the customer is not told
    app.dispatcher.drain()
    assert len(providers.emails()) == 1
    eta_change(3)  # four days from what they were told, but within a day of the last message: waits
    app.dispatcher.drain()
    assert len(providers.emails()) == 1
    app.clock.advance(hours=25)  # type: ignore[attr-defined]
    app.dispatcher.drain()
    emails = providers.emails()
    assert len(emails) == 2 and b"new expected date" in emails[1]


def test_a_bounced_email_suppresses_the_address_and_falls_back_to_sms_with_consent(
    messaging_app: Application, providers: Providers, caplog: pytest.LogCaptureFixture
) -> None:
    app = messaging_app
    caplog.set_level(logging.DEBUG)
    _order(app, "WEB-4", EMAIL, PHONE)
    set_preference(app.engine, "WEB-4", "email", sms_consent=True, now=app.clock.now())
    app.dispatcher.drain()
    assert len(providers.emails()) == 1 and providers.sms() == []
    message_id = re.search(rb'name="v:bo_message_id"\r\n\r\n(bo-\d+)', providers.emails()[0]).group(1).decode()  # type: ignore[union-attr]
    client = TestClient(create_app(app))
    event = {
        "event": "failed",
        "severity": "permanent",
        "recipient": EMAIL,
        "user-variables": {"bo_message_id": message_id},
        "message": {"headers": {"message-id": "1@mg.example.com"}},
    }
    assert _mailgun_post(client, app, event).status_code == 204
    assert app.messaging is not None and app.messaging.is_suppressed(EMAIL)
    assert app.messaging.statuses()[message_id] == "bounced"
    app.dispatcher.drain()
    assert [m["To"] for m in providers.sms()] == [PHONE]
    app.bus.handle(c.CancelOrder("WEB-4"))
    app.dispatcher.drain()
    assert len(providers.emails()) == 1  # the bounced address gets nothing more
    assert EMAIL not in caplog.text and PHONE not in caplog.text


def test_one_click_unsubscribe_from_the_list_unsubscribe_header(
    messaging_app: Application, providers: Providers
) -> None:
    app = messaging_app
    _order(app, "WEB-5", EMAIL, None)
    app.dispatcher.drain()
    body = providers.emails()[0]
    assert b'name="h:List-Unsubscribe-Post"\r\n\r\nList-Unsubscribe=One-Click' in body
    link = re.search(rb"<(https://shop\.example/hooks/unsubscribe/[^>]+)>", body).group(1).decode()  # type: ignore[union-attr]
    client = TestClient(create_app(app))
    path = urlsplit(link).path
    assert client.get(path).status_code == 200 and app.messaging is not None and not app.messaging.is_suppressed(EMAIL)
    assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert app.messaging.is_suppressed(EMAIL)
    assert client.post(path[:-3] + "xyz").status_code == 404
    app.bus.handle(c.CancelOrder("WEB-5"))
    app.dispatcher.drain()
    assert len(providers.emails()) == 1
