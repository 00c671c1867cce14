"""The worker and the order API through a database outage, on SQLite and PostgreSQL: the worker's
loops survive store errors (logged without a flood, with back-off) and deliver once the database
is back; /healthz says how the in-process worker is doing; the order API answers a store outage
as the webhook ingress does (503, Retry-After, JSON) and leaves nothing half-stored; SIGTERM stops
``backorder worker`` and ``backorder serve`` cleanly (the round finishes, exit 0)."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from backorder.bootstrap import Application, bootstrap
from backorder.config import parse_config
from backorder.connectors.base import settings_lookup
from backorder.connectors.registry import load_specs
from backorder.domain import commands as c
from backorder.store import tables as t
from backorder.web.app import create_app
from backorder.worker import BACKOFF_CAP_SECONDS, Failures, InProcessWorker, Worker

with warnings.catch_warnings():  # Starlette prefers httpx2 for its test client; httpx works the same here
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from conftest import SettableClock

STAFF_PAYLOAD = {"event": "StockBelowThreshold", "sku": "INK", "projected": -2, "reorder_point": 0, "supplier": None}
POS_KEY = "pos-key-1"
ORDER = {"order_id": "T-1", "lines": [{"sku": "INK", "quantity": 2}], "customer": {"email": "pos@example.com"}}


def outage(times: int | None = None) -> OperationalError:
    return OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused (simulated outage)"))


def failing(real: Callable[..., Any], times: int, calls: list[int]) -> Callable[..., Any]:
    """``real``, raising OperationalError on its first ``times`` calls."""

    def call(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) <= times:
            raise outage()
        return real(*args, **kwargs)

    return call


@pytest.fixture
def app(database_url: str, clock: SettableClock) -> Iterator[Application]:
    cfg = parse_config(
        {
            "worker": {"bop_interval_minutes": 0, "poll_interval_seconds": 0.01},
            "channels": {"pos": {"platform": "pos", "api_key": POS_KEY}},
        },
        settings_lookup(load_specs()),
        environ={},
    )
    application = bootstrap(cfg, database_url=database_url, clock=clock, sandbox_folder=False, rng=random.Random(3))
    application.bus.handle(c.UpsertSku("INK", "Ink"))
    try:
        yield application
    finally:
        application.close()


def count(app: Application, table: Any, *where: Any) -> int:
    with app.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def outbox_status(app: Application, outbox_id: int) -> str:
    with app.engine.connect() as conn:
        return str(conn.execute(select(t.outbox.c.status).where(t.outbox.c.id == outbox_id)).scalar_one())


def inbox_rows(app: Application) -> list[tuple[str, str | None]]:
    with app.engine.connect() as conn:
        return [(r.status, r.error) for r in conn.execute(select(t.inbox.c.status, t.inbox.c.error))]


def wait_until(what: str, condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# --- the worker's loops ------------------------------------------------------------------------


def test_the_worker_loop_survives_a_database_outage_and_then_delivers(
    app: Application, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    outbox_id = app.queue.enqueue("notify_staff", "staff", dict(STAFF_PAYLOAD), app.clock.now())
    calls: list[int] = []
    monkeypatch.setattr(app.queue, "claim", failing(app.queue.claim, 4, calls))
    worker = Worker(app, "w-outage")
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), name="test-worker")
    caplog.set_level(logging.DEBUG, logger="backorder.worker")
    thread.start()
    try:
        wait_until("the row to be delivered", lambda: outbox_status(app, outbox_id) == "sent")
        assert thread.is_alive()  # the loop survived the errors
        wait_until("the round to end", lambda: worker.status() == "ok")
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert worker.status() == "stopped"
    assert len(calls) >= 5
    # logged without a flood: one traceback (the first failure), the rest at debug; then "works again"
    dispatch = [r for r in caplog.records if r.name == "backorder.worker" and "outbox dispatch" in r.getMessage()]
    above_debug = [r for r in dispatch if r.levelno > logging.DEBUG]
    assert [r.levelname for r in above_debug] == ["ERROR", "WARNING"], [r.getMessage() for r in above_debug]
    assert above_debug[0].exc_info is not None
    assert "OperationalError: connection refused (simulated outage)" in above_debug[0].getMessage()
    assert "works again after 4 failed round(s)" in above_debug[1].getMessage()
    assert sum(1 for r in dispatch if r.exc_info is not None) == 4  # the later ones' tracebacks at debug


def test_the_inbox_thread_survives_a_database_outage(app: Application, monkeypatch: pytest.MonkeyPatch) -> None:
    services = app.channel_services
    services.inbox.record("api", "pos", "k-1", "order", {}, json.dumps(ORDER).encode(), app.clock.now())
    calls: list[int] = []
    monkeypatch.setattr(services.processor, "run", failing(services.processor.run, 3, calls))
    worker = Worker(app, "w-inbox")
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        wait_until("the order to be processed", lambda: inbox_rows(app) == [("processed", None)])
        assert "backorder-inbox" in {th.name for th in threading.enumerate()}
    finally:
        stop.set()
        thread.join(timeout=60)
    assert len(calls) >= 4
    assert count(app, t.orders) == 1


def test_the_back_off_doubles_up_to_its_cap() -> None:
    failures = Failures("test", clock=type("C", (), {"now": staticmethod(lambda: None)})())  # type: ignore[arg-type]
    assert failures.delay(1.0) == 1.0
    delays = []
    for _ in range(8):
        failures.count += 1
        delays.append(failures.delay(1.0))
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, BACKOFF_CAP_SECONDS, BACKOFF_CAP_SECONDS, BACKOFF_CAP_SECONDS]
    assert failures.delay(60.0) == 60.0  # never shorter than the poll interval


# --- /healthz ----------------------------------------------------------------------------------


def test_healthz_reports_the_in_process_worker(app: Application, monkeypatch: pytest.MonkeyPatch) -> None:
    web = create_app(app)
    client = TestClient(web)
    plain = client.get("/healthz")
    assert plain.status_code == 200 and "worker" not in plain.json()  # no worker in this process: as before

    handle = InProcessWorker(app)
    web.state.backorder_worker = handle
    handle.start()
    try:
        wait_until("the worker to run", lambda: client.get("/healthz").json()["worker"] == "ok")
        ok = client.get("/healthz")
        assert ok.status_code == 200 and ok.json()["status"] == "ok"

        calls: list[int] = []
        monkeypatch.setattr(app.queue, "claim", failing(app.queue.claim, 10**9, calls))
        wait_until("the worker to fail", lambda: client.get("/healthz").json()["worker"] != "ok")
        failing_now = client.get("/healthz")
        assert failing_now.status_code == 200  # it retries: still serving (the database itself answers)
        body = failing_now.json()
        assert body["status"] == "degraded"
        assert body["worker"].startswith("failing since 2026-03-02T09:00:00")
        assert body["worker"].endswith(": OperationalError")
    finally:
        assert handle.stop(timeout=60)
    stopped = client.get("/healthz")
    assert stopped.status_code == 503
    assert stopped.json()["worker"] == "stopped" and stopped.json()["status"] == "degraded"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_healthz_is_a_503_when_the_worker_thread_died(app: Application, monkeypatch: pytest.MonkeyPatch) -> None:
    web = create_app(app)
    handle = InProcessWorker(app)

    def dies() -> int:
        raise SystemExit("a bug that ends the thread")

    monkeypatch.setattr(handle.worker, "tick", dies)
    web.state.backorder_worker = handle
    handle.start()
    handle.thread.join(timeout=30)
    answer = TestClient(web).get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["worker"] == "stopped"
    assert answer.json()["database"] == "ok"


# --- the order API -----------------------------------------------------------------------------


def post_order(client: TestClient, key: str = "k-1") -> httpx.Response:
    return client.post(
        "/api/v1/orders", json=ORDER, headers={"Authorization": f"Bearer {POS_KEY}", "Idempotency-Key": key}
    )


def assert_unavailable(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "30"
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["status"] == "unavailable"


def test_the_order_api_answers_503_when_the_inbox_cannot_be_written(
    app: Application, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    client = TestClient(create_app(app), raise_server_exceptions=False)
    calls: list[int] = []
    monkeypatch.setattr(app.channel_services.inbox, "record", failing(app.channel_services.inbox.record, 1, calls))
    assert_unavailable(post_order(client))
    assert "Exception in ASGI application" not in caplog.text
    assert count(app, t.inbox) == 0 and count(app, t.orders) == 0  # nothing stored
    again = post_order(client)  # the client's retry, once the database is back
    assert again.status_code == 201, again.text
    assert count(app, t.orders) == 1


def test_an_order_recorded_before_the_outage_is_processed_once_later(
    app: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = TestClient(create_app(app), raise_server_exceptions=False)
    services = app.channel_services
    calls: list[int] = []
    monkeypatch.setattr(services.processor, "process_id", failing(services.processor.process_id, 1, calls))
    assert_unavailable(post_order(client))
    assert inbox_rows(app) == [("received", None)]  # kept: the worker will process it
    assert count(app, t.orders) == 0  # nothing half-stored
    retried = post_order(client)  # the same Idempotency-Key finds it
    assert retried.status_code == 200 and retried.json()["status"] == "received"
    assert services.processor.drain() == 1  # the worker's inbox loop
    assert inbox_rows(app) == [("processed", None)]
    assert count(app, t.orders) == 1


def test_an_order_left_processing_by_the_outage_is_retried_when_its_lease_ends(
    app: Application, clock: SettableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outage hits after the row was claimed: applying the order fails (its transaction rolls
    back). The row is not marked failed for it: it stays ``processing`` until its lease (``[worker]
    lease_seconds``) ends, then the worker claims it again. No order is stored twice or half."""
    client = TestClient(create_app(app), raise_server_exceptions=False)
    services = app.channel_services
    handle_calls: list[int] = []
    finish_calls: list[int] = []
    monkeypatch.setattr(app.bus, "handle", failing(app.bus.handle, 1, handle_calls))
    monkeypatch.setattr(services.inbox, "finish_many", failing(services.inbox.finish_many, 0, finish_calls))
    assert_unavailable(post_order(client))
    assert [s for s, _ in inbox_rows(app)] == ["processing"]  # not failed: nobody would retry it
    assert count(app, t.orders) == 0 and count(app, t.order_lines) == 0
    assert services.processor.run() == 0  # leased: not yet
    clock.advance(seconds=app.config.worker.lease_seconds + 1)
    assert services.processor.run() == 1
    assert inbox_rows(app) == [("processed", None)]
    assert count(app, t.orders) == 1 and count(app, t.order_lines) == 1


def test_a_worker_batch_hit_by_an_outage_leaves_its_rows_to_be_claimed_again(
    app: Application, clock: SettableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's inbox round: the store goes away while a claimed row is applied. The round
    fails (the loop backs off) and the row is claimed again after its lease, not marked failed."""
    client = TestClient(create_app(app), raise_server_exceptions=False)
    services = app.channel_services
    inline: list[int] = []
    monkeypatch.setattr(services.processor, "process_id", failing(services.processor.process_id, 1, inline))
    assert_unavailable(post_order(client))  # recorded; left to the worker
    assert inbox_rows(app) == [("received", None)]
    applying: list[int] = []
    monkeypatch.setattr(app.bus, "handle", failing(app.bus.handle, 1, applying))
    with pytest.raises(OperationalError):
        services.processor.run()
    assert inbox_rows(app) == [("processing", None)]
    assert services.processor.run() == 0  # leased
    clock.advance(seconds=app.config.worker.lease_seconds + 1)
    assert services.processor.run() == 1
    assert inbox_rows(app) == [("processed", None)]
    assert count(app, t.orders) == 1


# --- SIGTERM -------------------------------------------------------------------------------------


def _backorder(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    config = tmp_path / "backorder.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "b.db"}"\n\n'
        "[worker]\npoll_interval_seconds = 0.2\nbop_interval_minutes = 0\n\n"
        f'[sandbox]\nfolder = "{tmp_path / "sandbox"}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKORDER_")}
    code = "from backorder.cli import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, "--config", str(config), "-v", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )


def _stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"no exit within 20 s of SIGTERM:\n{err}") from None
    return process.returncode, err


def _wait_for_line(process: subprocess.Popen[str], text: str, timeout: float = 60.0) -> str:
    assert process.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return "".join(seen)
    process.kill()
    raise AssertionError(f"{text!r} never appeared:\n{''.join(seen)}")


def test_sigterm_stops_the_worker_command_cleanly(tmp_path: Path) -> None:
    process = _backorder(tmp_path, "worker")
    before = _wait_for_line(process, "backorder.worker: worker")  # "worker <name> started"
    time.sleep(0.5)  # a round or two
    code, err = _stop(process)
    log = before + err
    assert code == 0, log
    assert "worker stopped (SIGTERM)" in log
    assert "stopped" in log.split("backorder.worker: worker", 2)[-1]  # the worker's own "worker <name> stopped"
    assert "Traceback" not in log


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sigterm_stops_serve_and_its_worker_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    process = _backorder(tmp_path, "serve", "--host", "127.0.0.1", "--port", str(port))
    try:
        wait_until(
            "the server to answer",
            lambda: _answers(f"http://127.0.0.1:{port}/healthz"),
            timeout=60,
        )
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
        assert health["worker"] in ("ok", "starting")
    except BaseException:
        process.kill()
        raise
    code, err = _stop(process)
    assert code == 0, err
    assert "Finished server process" in err
    assert err.index("Finished server process") < err.rindex("backorder.worker: worker")  # joined after uvicorn
    assert err.rstrip().endswith("stopped"), err


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
