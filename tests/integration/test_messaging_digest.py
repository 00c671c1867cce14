"""The daily staff digest on SQLite and PostgreSQL: the real worker enqueues exactly one per day
at the configured UTC hour (however many ticks and workers), it says what staff need to know, and
``[messages] daily_digest = false`` turns it off."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import insert, select

from backorder.bootstrap import Application, bootstrap, read_config
from backorder.domain import commands as c
from backorder.importer import import_file
from backorder.store import tables as t
from backorder.worker import Worker

if TYPE_CHECKING:
    from conftest import SettableClock

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)
"""Midnight of the integration clock's first day; ``_at`` counts days and hours from it."""
DATA = Path(__file__).resolve().parents[2] / "src" / "backorder" / "demo_data"


def _app(database_url: str, clock: SettableClock, tmp_path: Path, messages: str) -> Application:
    config = tmp_path / "backorder.toml"
    config.write_text(f"[worker]\nbop_interval_minutes = 0\n[messages]\n{messages}\n", encoding="utf-8")
    app = bootstrap(read_config(config, environ={}), database_url=database_url, clock=clock, sandbox_folder=False)
    import_file(app.bus, DATA / "suppliers.csv", "suppliers")
    import_file(app.bus, DATA / "skus.csv", "skus")
    return app


@pytest.fixture
def digest_app(database_url: str, clock: SettableClock, tmp_path: Path) -> Iterator[Application]:
    app = _app(database_url, clock, tmp_path, "digest_hour = 10")
    try:
        yield app
    finally:
        app.close()


def _digests(app: Application) -> list[dict[str, object]]:
    o = t.outbox.c
    with app.engine.connect() as conn:
        rows = conn.execute(select(o.payload).where(o.action == "notify_staff").order_by(o.id)).all()
    return [r.payload for r in rows if r.payload.get("event") == "DailyDigest"]


def _at(clock: SettableClock, day: int, hour: int, minute: int = 0) -> datetime:
    moment = MONDAY + timedelta(days=day, hours=hour, minutes=minute)
    clock.set(moment)
    return moment


def test_the_worker_enqueues_exactly_one_digest_a_day_from_the_configured_hour(
    digest_app: Application, clock: SettableClock
) -> None:
    worker = Worker(digest_app, "w1")
    for hour, minute in [(0, 0), (9, 0), (9, 59)]:
        _at(clock, 0, hour, minute)
        worker.tick()
    assert _digests(digest_app) == []  # before 10:00 UTC: nothing
    for hour, minute in [(10, 0), (10, 1), (14, 30), (23, 59)]:
        _at(clock, 0, hour, minute)
        worker.tick()
    first = _digests(digest_app)
    assert [d["date"] for d in first] == ["2026-03-02"]
    _at(clock, 1, 9, 59)
    worker.tick()
    assert len(_digests(digest_app)) == 1  # the next day, not before its hour
    _at(clock, 1, 10, 5)
    worker.tick()
    worker.tick()
    assert [d["date"] for d in _digests(digest_app)] == ["2026-03-02", "2026-03-03"]


def test_workers_racing_at_the_hour_enqueue_one_digest_between_them(
    digest_app: Application, clock: SettableClock
) -> None:
    now = _at(clock, 0, 10, 0)
    barrier = threading.Barrier(4)
    results: list[int | None] = []
    lock = threading.Lock()

    def race() -> None:
        barrier.wait()
        found = digest_app.dispatcher.schedule_digest(now)
        with lock:
            results.append(found)

    threads = [threading.Thread(target=race) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 4
    assert len([r for r in results if r is not None]) == 1
    assert len(_digests(digest_app)) == 1


def test_the_digest_counts_open_backorders_purchase_orders_sent_and_dead_letters(
    digest_app: Application, clock: SettableClock
) -> None:
    app = digest_app
    line = (c.NewLine(1, "WN-PWC-263-5", 3),)
    app.bus.handle(c.PlaceOrder("WEB-D1", "web", clock.now(), line, customer_email="digest@canary-pii.example"))
    now = _at(clock, 0, 10, 0)
    with app.engine.begin() as conn:
        for number, sent in [("PO-D1", now - timedelta(hours=3)), ("PO-D0", now - timedelta(days=2))]:
            conn.execute(
                insert(t.purchase_orders).values(
                    number=number, supplier="WN-UK", status="sent", created_at=sent, sent_at=sent
                )
            )
    app.queue.enqueue("no_such_action", "nowhere", {}, now)  # dead-letters at once
    app.dispatcher.drain()
    counts = app.queue.counts()
    assert counts.get("dead") == 1
    app.dispatcher.schedule_digest(now)
    app.dispatcher.drain()
    (digest,) = _digests(app)
    assert digest["open_backorders"] == 1 and digest["open_backorder_units"] == 3
    assert digest["purchase_orders_sent"] == 1 and digest["dead_letters"] == 1
    m = t.sandbox_messages.c
    with app.engine.connect() as conn:
        (body,) = conn.execute(select(m.subject, m.body).where(m.template == "DailyDigest")).all()
    text = " ".join(body)
    assert "Daily backorder digest for 2026-03-02" in text
    assert "1 open backorder line(s), 3 unit(s) waiting" in text
    assert "1 purchase order(s) sent in the last 24 hours" in text
    assert "1 dead letter(s) need a look" in text


def test_daily_digest_false_turns_the_digest_off(database_url: str, clock: SettableClock, tmp_path: Path) -> None:
    app = _app(database_url, clock, tmp_path, "daily_digest = false\ndigest_hour = 8")
    try:
        worker = Worker(app, "w1")
        for day in range(3):
            for hour in (0, 8, 12, 23):
                _at(clock, day, hour)
                worker.tick()
        assert _digests(app) == []
        assert app.dispatcher.schedule_digest(clock.now()) is None
    finally:
        app.close()
