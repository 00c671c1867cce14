"""The webhook path in bulk, on SQLite and PostgreSQL: webhooks that arrive together share one
inbox commit and each still gets its own answer; the processor applies order rows in groups (one
transaction each) and a bad payload in a group is failed alone while the others are recorded;
several workers at once claim and process every row exactly once."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import random
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import func, select

from backorder.bootstrap import Application, bootstrap
from backorder.config import parse_config
from backorder.connectors.base import settings_lookup
from backorder.connectors.registry import load_specs
from backorder.domain import commands as c
from backorder.store import tables as t
from backorder.web.app import create_app

if TYPE_CHECKING:
    from conftest import SettableClock

SECRET = "batch-secret"


def make(database_url: str, clock: SettableClock) -> Application:
    cfg = parse_config(
        {
            "worker": {"bop_interval_minutes": 0},
            "channels": {"web": {"platform": "shopify", "webhook_secret": SECRET, "reconcile_minutes": 0}},
        },
        settings_lookup(load_specs()),
        environ={},
    )
    return bootstrap(cfg, database_url=database_url, clock=clock, sandbox_folder=False, rng=random.Random(5))


@pytest.fixture
def apps(database_url: str, clock: SettableClock) -> Iterator[Callable[[], Application]]:
    made: list[Application] = []

    def one() -> Application:
        application = make(database_url, clock)
        made.append(application)
        return application

    yield one
    for application in made:
        application.close()


@pytest.fixture
def app(apps: Callable[[], Application]) -> Application:
    application = apps()
    for sku in ("INK", "PEN"):
        application.bus.handle(c.UpsertSku(sku, sku.title()))
    return application


def order_body(number: int, sku: str = "INK", quantity: int = 1, updated: str = "2026-03-02T08:00:00Z") -> bytes:
    return json.dumps(
        {
            "id": number,
            "admin_graphql_api_id": f"gid://shopify/Order/{number}",
            "created_at": "2026-03-02T08:00:00Z",
            "updated_at": updated,
            "email": "ada@example.com",
            "line_items": [{"id": 1, "sku": sku, "quantity": quantity}],
        }
    ).encode()


def put(app: Application, rows: list[tuple[str, bytes]], topic: str = "orders/create") -> None:
    """Rows straight into the inbox, as the ingress commits them."""
    now = app.clock.now()
    items = [("shopify", "web", f"event:{key}", topic, {"x-shopify-topic": topic}, body, now) for key, body in rows]
    app.channel_services.inbox.record_many(items)


def statuses(app: Application) -> list[tuple[str, str | None]]:
    with app.engine.connect() as conn:
        return [(r.status, r.error) for r in conn.execute(select(t.inbox).order_by(t.inbox.c.id))]


def count(app: Application, table: Any) -> int:
    with app.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def counting_transactions(app: Application, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    handle = app.bus.handle

    def counted(cmd: Any) -> Any:
        calls.append(cmd)
        return handle(cmd)

    monkeypatch.setattr(app.bus, "handle", counted)
    return calls


# --- the processor: groups -----------------------------------------------------------------------


def test_order_rows_are_applied_in_groups_of_one_transaction_each(
    app: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(app, [(f"o-{n}", order_body(2000 + n)) for n in range(12)])
    app.channel_services.processor.batch_size = 5
    transactions = counting_transactions(app, monkeypatch)
    assert app.channel_services.processor.drain() == 12
    assert len(transactions) == 3  # 5 + 5 + 2 rows
    assert all(isinstance(cmd, c.ImportBatch) for cmd in transactions)
    assert [s for s, _ in statuses(app)] == ["processed"] * 12
    assert count(app, t.orders) == 12
    assert [(ln["sku"], ln["backordered"]) for ln in app.read.lines("web-2007")] == [("INK", 1)]


def test_a_bad_payload_in_a_group_is_failed_alone_and_the_others_are_recorded(app: Application) -> None:
    put(
        app,
        [
            ("a", order_body(3001)),
            ("b", order_body(3002)),
            ("c", order_body(3003, sku="NOPE")),  # the domain refuses it inside the group
            ("d", order_body(3004)),
            ("e", b'{"id": 3005, "line_items": "nope"}'),  # cannot be parsed at all
            ("f", order_body(3006, sku="PEN")),
        ],
    )
    assert app.channel_services.processor.drain() == 6
    found = statuses(app)
    assert [s for s, _ in found] == ["processed", "processed", "failed", "processed", "failed", "processed"]
    assert "NOPE" in (found[2][1] or "")
    assert "line_items" in (found[4][1] or "")
    with app.engine.connect() as conn:
        orders = sorted(conn.execute(select(t.orders.c.id)).scalars())
    assert orders == ["web-3001", "web-3002", "web-3004", "web-3006"]  # each once, nothing of the bad ones


def test_an_order_already_held_as_the_channel_shows_it_is_ignored_within_a_group(app: Application) -> None:
    put(app, [("first", order_body(4001, quantity=2))])
    app.channel_services.processor.drain()
    before = count(app, t.order_lines), count(app, t.outbox)
    put(
        app,
        [
            ("again", order_body(4001, quantity=2, updated="2026-03-02T08:01:00Z")),  # newer, same lines
            ("other", order_body(4002)),
            ("more", order_body(4001, quantity=3, updated="2026-03-02T08:02:00Z")),  # a real edit: one more
        ],
        topic="orders/updated",
    )
    assert app.channel_services.processor.drain() == 3
    found = statuses(app)[1:]
    assert [s for s, _ in found] == ["ignored", "processed", "processed"]
    assert "already recorded as the channel shows it" in (found[0][1] or "")
    assert sum(ln["quantity"] for ln in app.read.lines("web-4001")) == 3
    assert count(app, t.order_lines) == before[0] + 2  # 4002's line and 4001's added unit
    assert count(app, t.outbox) > before[1]


def test_an_older_update_in_the_same_batch_as_a_newer_one_is_ignored(app: Application) -> None:
    put(
        app,
        [
            ("new", order_body(5001, quantity=4, updated="2026-03-02T09:00:00Z")),
            ("old", order_body(5001, quantity=1, updated="2026-03-02T08:00:00Z")),
        ],
        topic="orders/updated",
    )
    assert app.channel_services.processor.drain() == 2
    assert [s for s, _ in statuses(app)] == ["processed", "ignored"]
    assert [ln["quantity"] for ln in app.read.lines("web-5001")] == [4]


# --- several workers at once ---------------------------------------------------------------------


def test_concurrent_claims_never_hand_out_the_same_row(app: Application, apps: Callable[[], Application]) -> None:
    put(app, [(f"k-{n}", order_body(6000 + n)) for n in range(40)])
    others = [apps() for _ in range(3)]
    barrier = threading.Barrier(len(others))
    claimed: list[list[int]] = [[] for _ in others]

    def claim(k: int) -> None:
        barrier.wait()
        while rows := others[k].channel_services.inbox.claim(datetime.now(UTC), 3):
            claimed[k].extend(r.id for r in rows)

    threads = [threading.Thread(target=claim, args=(k,)) for k in range(len(others))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    every = [row_id for ids in claimed for row_id in ids]
    assert len(every) == 40 and len(set(every)) == 40


def test_several_workers_process_every_row_exactly_once(app: Application, apps: Callable[[], Application]) -> None:
    put(app, [(f"w-{n}", order_body(7000 + n, sku="INK" if n % 2 else "PEN")) for n in range(45)])
    workers = [apps() for _ in range(3)]
    handled = [0] * len(workers)
    barrier = threading.Barrier(len(workers))

    def work(k: int) -> None:
        workers[k].channel_services.processor.batch_size = 4
        barrier.wait()
        handled[k] = workers[k].channel_services.processor.drain(limit=5)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sum(handled) == 45
    with app.engine.connect() as conn:
        rows = conn.execute(select(t.inbox.c.status, t.inbox.c.attempts)).all()
        orders = conn.execute(select(t.orders.c.id)).scalars().all()
        lines = conn.execute(select(func.count()).select_from(t.order_lines)).scalar_one()
    assert {(r.status, r.attempts) for r in rows} == {("processed", 1)}  # each claimed once, done once
    assert sorted(orders) == sorted(f"web-{7000 + n}" for n in range(45))
    assert lines == 45


# --- the ingress: group commit ---------------------------------------------------------------------


def signed(body: bytes, event: str) -> dict[str, str]:
    digest = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return {"X-Shopify-Hmac-Sha256": digest, "X-Shopify-Topic": "orders/create", "X-Shopify-Event-Id": event}


async def post_together(app: Application, events: list[tuple[str, bytes]]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=create_app(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await asyncio.gather(
            *(client.post("/webhooks/shopify/web", content=body, headers=signed(body, e)) for e, body in events)
        )


def test_webhooks_arriving_together_share_a_commit_and_each_gets_its_own_answer(
    app: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = app.channel_services.inbox
    commits: list[int] = []
    record_many = inbox.record_many

    def counted(items: Any) -> Any:
        commits.append(len(items))
        return record_many(items)

    monkeypatch.setattr(inbox, "record_many", counted)
    events = [(f"e-{n}", order_body(8000 + n)) for n in range(20)]
    responses = asyncio.run(post_together(app, events))
    assert [r.status_code for r in responses] == [200] * 20
    assert sum(commits) == 20 and len(commits) < 20
    with app.engine.connect() as conn:
        ids = dict(conn.execute(select(t.inbox.c.event_key, t.inbox.c.id)).all())
    assert [r.json() for r in responses] == [{"status": "accepted", "inbox_id": ids[f"event:{e}"]} for e, _ in events]


def test_the_same_event_twice_in_one_commit_is_one_row_and_one_duplicate(app: Application) -> None:
    body = order_body(8100)
    first, second = asyncio.run(post_together(app, [("same", body), ("same", body)]))
    assert {first.json()["status"], second.json()["status"]} == {"accepted", "duplicate"}
    assert first.json()["inbox_id"] == second.json()["inbox_id"]
    assert count(app, t.inbox) == 1


def test_a_failed_commit_answers_every_webhook_of_the_batch_503(
    app: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(items: Any) -> Any:
        raise RuntimeError("disk full")

    monkeypatch.setattr(app.channel_services.inbox, "record_many", broken)
    responses = asyncio.run(post_together(app, [(f"x-{n}", order_body(8200 + n)) for n in range(5)]))
    assert [(r.status_code, r.headers["retry-after"]) for r in responses] == [(503, "30")] * 5
    assert count(app, t.inbox) == 0


# --- the raw ASGI ingress in front of FastAPI -------------------------------------------------------


async def call_asgi(
    app: Application, path: str, messages: list[dict[str, Any]], headers: dict[str, str], root_path: str = ""
) -> list[Any]:
    asgi = create_app(app)
    sent: list[Any] = []
    incoming = iter(messages)

    async def receive() -> dict[str, Any]:
        return next(incoming)

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 8080),
    }
    await asgi(scope, receive, send)
    return sent


def test_a_sender_that_goes_away_mid_body_gets_nothing_stored(app: Application) -> None:
    body = order_body(9001)
    half: list[dict[str, Any]] = [
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent = asyncio.run(call_asgi(app, "/webhooks/shopify/web", half, signed(body, "gone")))
    assert sent == []
    assert count(app, t.inbox) == 0


def test_an_unexpected_error_in_the_ingress_is_a_500_and_stores_nothing(
    app: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = app.channel_services.receivers["web"]

    def broken(request: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(receiver, "identify", broken)
    body = order_body(9002)
    sent = asyncio.run(
        call_asgi(app, "/webhooks/shopify/web", [{"type": "http.request", "body": body}], signed(body, "bug"))
    )
    assert sent[0]["status"] == 500
    assert count(app, t.inbox) == 0


def test_other_webhook_urls_and_methods_answer_as_the_framework_does(app: Application) -> None:
    async def calls() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [
                await client.get("/webhooks/shopify/web"),
                await client.post("/webhooks/shopify/web/extra", content=b"{}"),
                await client.post("/webhooks/shopify", content=b"{}"),
                await client.get("/openapi.json"),
            ]

    get, extra, short, openapi = asyncio.run(calls())
    assert get.status_code == 405
    assert extra.status_code == 404 and short.status_code == 404
    assert count(app, t.inbox) == 0
    assert "post" in openapi.json()["paths"]["/webhooks/{platform}/{channel_id}"]  # still documented


def test_webhook_answers_carry_the_nosniff_header_like_every_api_answer(app: Application) -> None:
    body = order_body(9003)
    (accepted,) = asyncio.run(post_together(app, [("h", body)]))
    assert accepted.headers["x-content-type-options"] == "nosniff"
    assert accepted.headers["content-type"] == "application/json"


def test_behind_a_path_prefix_the_ingress_still_answers(app: Application) -> None:
    body = order_body(9004)
    sent = asyncio.run(
        call_asgi(
            app,
            "/shop/webhooks/shopify/web",
            [{"type": "http.request", "body": body}],
            signed(body, "prefixed"),
            root_path="/shop",
        )
    )
    assert sent[0]["status"] == 200
    assert json.loads(sent[1]["body"])["status"] == "accepted"
    assert count(app, t.inbox) == 1


# --- the worker ------------------------------------------------------------------------------------


def test_a_running_worker_processes_the_inbox_in_a_thread_of_its_own_and_stops_cleanly(app: Application) -> None:
    from backorder.worker import Worker

    stop = threading.Event()
    worker = threading.Thread(target=Worker(app, "w-test").run, args=(stop,))
    worker.start()
    try:
        put(app, [(f"r-{n}", order_body(9100 + n)) for n in range(6)])
        deadline = threading.Event()
        for _ in range(600):  # until the rows are done (at most ~30 s), not a fixed pause
            if [s for s, _ in statuses(app)] == ["processed"] * 6:
                break
            deadline.wait(0.05)
        assert [s for s, _ in statuses(app)] == ["processed"] * 6
        assert "backorder-inbox" in {th.name for th in threading.enumerate()}
    finally:
        stop.set()
        worker.join(timeout=60)
    assert not worker.is_alive()
    assert "backorder-inbox" not in {th.name for th in threading.enumerate()}
    assert count(app, t.orders) == 6


def test_on_sqlite_the_inbox_commit_reaches_the_disk_before_the_answer(app: Application) -> None:
    if app.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL commits durably by default (synchronous_commit = on)")
    put(app, [("durable", order_body(9200))])
    raw = app.channel_services.inbox._raw
    assert raw is not None
    assert raw.connection.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL: fsync per commit
    with app.engine.connect() as conn:  # the rest of the application keeps the engine's setting
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
