"""Bounce → SMS fallback edge cases on SQLite and PostgreSQL: an SMS provider without credentials
skips the fallback (recorded in the outbox with its reason) instead of deferring it forever, and
a bounce the provider reports twice falls back once."""

from __future__ import annotations

import hashlib
import hmac
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import select

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
KEY = "mailgun-webhook-signing-key"
EMAIL = "canary.fallback@canary-pii.example"
PHONE = "+447700911922"


def _app(
    database_url: str, clock: SettableClock, tmp_path: Path, sms: str, requests: list[httpx.Request]
) -> Application:
    config = tmp_path / "backorder.toml"
    config.write_text(
        f"""
[server]
public_url = "https://shop.example"
[notify.email]
provider = "mailgun"
api_key = "key-test"
domain = "mg.shop.example"
webhook_signing_key = "{KEY}"
[notify.sms]
{sms}
[notify.staff]
provider = "sandbox"
""",
        encoding="utf-8",
    )

    def answer(request: httpx.Request) -> httpx.Response:
        request.read()
        requests.append(request)
        if request.url.path.endswith("/Messages.json"):
            return httpx.Response(201, json={"sid": f"SM{len(requests):032d}"})
        return httpx.Response(200, json={"id": f"<{len(requests)}@mg.example.com>", "message": "Queued"})

    def factory(name: str) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(answer), base_url="https://provider.test")

    app = bootstrap(
        read_config(config, environ={}),
        database_url=database_url,
        clock=clock,
        sandbox_folder=False,
        http_client_factory=factory,
    )
    import_file(app.bus, DATA / "suppliers.csv", "suppliers")
    import_file(app.bus, DATA / "skus.csv", "skus")
    return app


@pytest.fixture
def requests() -> list[httpx.Request]:
    return []


TWILIO_WITHOUT_TOKEN = """provider = "twilio"
account_sid = "AC0123456789abcdef0123456789abcdef"
from_number = "+15005550006"
"""
TWILIO = TWILIO_WITHOUT_TOKEN + 'auth_token = "twilio-token"\nmessages_per_second = 1000\n'


@pytest.fixture
def make_app(database_url: str, clock: SettableClock, tmp_path: Path, requests: list[httpx.Request]) -> Iterator[Any]:
    made: list[Application] = []

    def make(sms: str) -> Application:
        made.append(_app(database_url, clock, tmp_path, sms, requests))
        return made[-1]

    yield make
    for app in made:
        app.close()


def _send_and_bounce(app: Application, requests: list[httpx.Request], times: int = 1) -> str:
    line = (c.NewLine(1, "WN-PWC-263-5", 2),)
    app.bus.handle(c.PlaceOrder("WEB-F1", "web", app.clock.now(), line, customer_email=EMAIL, customer_phone=PHONE))
    set_preference(app.engine, "WEB-F1", "email", sms_consent=True, now=app.clock.now())
    app.dispatcher.drain()
    assert app.messaging is not None
    (message_id,) = app.messaging.statuses()
    client = TestClient(create_app(app))
    event = {
        "event": "failed",
        "severity": "permanent",
        "recipient": EMAIL,
        "user-variables": {"bo_message_id": message_id},
        "message": {"headers": {"message-id": "1@mg.example.com"}},
    }
    for n in range(times):
        timestamp, token = str(int(app.clock.now().timestamp())), f"tok-{n}"
        signature = hmac.new(KEY.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
        body = {"signature": {"timestamp": timestamp, "token": token, "signature": signature}, "event-data": event}
        assert client.post("/hooks/mailgun/events", content=json.dumps(body)).status_code == 204
    app.dispatcher.drain()
    return message_id


def _fallbacks(app: Application) -> list[dict[str, Any]]:
    o = t.outbox.c
    with app.engine.connect() as conn:
        rows = conn.execute(select(t.outbox).where(o.action == "send_sms").order_by(o.id)).all()
    return [dict(r._mapping) for r in rows if r.payload.get("fallback")]


def test_a_fallback_sms_without_provider_credentials_is_skipped_with_its_reason(
    make_app: Any, requests: list[httpx.Request]
) -> None:
    app = make_app(TWILIO_WITHOUT_TOKEN)
    message_id = _send_and_bounce(app, requests)
    (fallback,) = _fallbacks(app)
    assert fallback["status"] == "skipped"  # not pending: nothing waits forever
    (attempt,) = app.queue.attempts(fallback["id"])
    assert attempt["outcome"] == "skipped"
    assert message_id in attempt["detail"] and "missing: auth_token" in attempt["detail"]
    assert PHONE not in attempt["detail"]
    assert not [r for r in requests if r.url.path.endswith("/Messages.json")]


def test_a_bounce_reported_twice_falls_back_to_sms_once(make_app: Any, requests: list[httpx.Request]) -> None:
    app = make_app(TWILIO)
    _send_and_bounce(app, requests, times=2)
    (fallback,) = _fallbacks(app)
    assert fallback["status"] == "sent"
    sms = [r for r in requests if r.url.path.endswith("/Messages.json")]
    assert len(sms) == 1
