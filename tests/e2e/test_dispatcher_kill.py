"""Kill the dispatcher process (SIGKILL) at random points while 1,000 customer notifications go
to fake providers on loopback; restart it each time. Every message must end sent or dead-lettered,
none lost; duplicates (at-least-once) are counted and reported."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from backorder.bootstrap import bootstrap, read_config
from backorder.importer import import_file
from backorder.store import tables as t
from tests.e2e.fake_providers import FakeProviders

MESSAGES = 1000
KILLS = 6
DATA = Path(__file__).resolve().parents[2] / "src" / "backorder" / "demo_data"
CANARY_EMAIL = "canary.kill.{n}@canary-pii.example"
CANARY_PHONE = "+4477009{n:05d}"


def _config(folder: Path, provider_url: str) -> Path:
    path = folder / "backorder.toml"
    path.write_text(
        f"""
database_url = "sqlite:///{folder / "kill.db"}"

[worker]
poll_interval_seconds = 0.05
lease_seconds = 5
batch_size = 25
max_attempts = 6
backoff_base_seconds = 0.05
backoff_cap_seconds = 0.5
bop_interval_minutes = 0

[sandbox]
folder = "{folder / "sandbox"}"

[notify.email]
provider = "sendgrid"
api_key = "SG.kill-test"
from_email = "shop@example.com"
base_url = "{provider_url}"

[notify.sms]
provider = "twilio"
account_sid = "AC0123456789abcdef0123456789abcdef"
auth_token = "kill-test-token"
from_number = "+15005550006"
messages_per_second = 10000
base_url = "{provider_url}"

[notify.staff]
provider = "sandbox"

[messages]
sms_consent_from_order = true

[rules]
BackorderCreated = ["notify_customer"]
""",
        encoding="utf-8",
    )
    return path


def _seed(config_path: Path) -> None:
    """1,000 orders, each with its BackorderCreated ``notify_customer`` row, written in bulk
    (what the bus would write; the bus itself is tested elsewhere and is slow to run 1,000 times)."""
    app = bootstrap(read_config(config_path, environ={}), sandbox_folder=False)
    try:
        import_file(app.bus, DATA / "suppliers.csv", "suppliers")
        import_file(app.bus, DATA / "skus.csv", "skus")
        at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        orders, rows = [], []
        for n in range(MESSAGES):
            phone_only = n % 3 == 0
            order_id = f"KILL-{n:04d}"
            orders.append(
                {
                    "id": order_id,
                    "channel": "web",
                    "placed_at": at,
                    "priority": 0,
                    "ship_complete": False,
                    "customer_email": None if phone_only else CANARY_EMAIL.format(n=n),
                    "customer_phone": CANARY_PHONE.format(n=n) if phone_only else None,
                    "customer_name": f"Canary {n}",
                    "created_at": at,
                }
            )
            payload = {
                "event": "BackorderCreated",
                "order_id": order_id,
                "channel": "web",
                "lines": [{"line_no": 1, "sku": "WN-PWC-263-5", "quantity": 1, "eta": "2026-03-16"}],
            }
            rows.append(
                {
                    "action": "notify_customer",
                    "target": "customer",
                    "payload": payload,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": at,
                    "created_at": at,
                    "updated_at": at,
                }
            )
        with app.engine.begin() as conn:
            conn.execute(insert(t.orders), orders)
            conn.execute(insert(t.outbox), rows)
    finally:
        app.close()


@pytest.fixture
def providers() -> Iterator[FakeProviders]:
    with FakeProviders(failure_rate=0.05) as fake:
        yield fake


def _start(config_path: Path, stderr: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BACKORDER_CONFIG": str(config_path)}
    return subprocess.Popen(
        [sys.executable, "-m", "backorder.cli", "--verbose", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr.open("ab"),
    )


def _unfinished(engine: object) -> int:
    o = t.outbox.c
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return int(
            conn.execute(
                select(func.count()).select_from(t.outbox).where(o.status.in_(["pending", "in_flight"]))
            ).scalar_one()
        )


def test_sigkilled_dispatchers_lose_no_notification(tmp_path: Path, providers: FakeProviders) -> None:
    config_path = _config(tmp_path, providers.url)
    _seed(config_path)
    stderr = tmp_path / "worker.stderr"
    rng = random.Random(2026)
    seeded = time.monotonic()
    app = bootstrap(read_config(config_path, environ={}), sandbox_folder=False, migrate=False)
    kills = 0
    kill_points: list[int] = []
    deadline = time.monotonic() + 90
    try:
        while _unfinished(app.engine) and time.monotonic() < deadline:
            worker = _start(config_path, stderr)
            if kills < KILLS:
                # A random point: after a random number of provider calls or a random while
                # (which may fall in the fan-out phase, when no provider call is made yet).
                if kills < 2:  # somewhere in the fan-out (customer → email/SMS children), by time
                    providers.wait_for(MESSAGES * 10, timeout=rng.uniform(0.8, 2.5))
                else:  # right after a random provider call, before its result may be recorded
                    providers.wait_for(len(providers.received) + rng.randint(20, 150), timeout=20)
                if _unfinished(app.engine):
                    worker.send_signal(signal.SIGKILL)
                    kills += 1
                    kill_points.append(len(providers.received))
                    worker.wait(timeout=10)
                    continue
            while _unfinished(app.engine) and time.monotonic() < deadline:
                providers.wait_for(len(providers.received) + 1, timeout=0.25)
            worker.terminate()
            worker.wait(timeout=10)
        o = t.outbox.c
        with app.engine.connect() as conn:
            rows = conn.execute(select(o.id, o.action, o.status).where(o.action.in_(["send_email", "send_sms"]))).all()
            parents = conn.execute(
                select(o.status, func.count()).where(o.action == "notify_customer").group_by(o.status)
            ).all()
    finally:
        app.close()

    counts = providers.counts()
    sent = [r for r in rows if r.status == "sent"]
    dead = [r for r in rows if r.status == "dead"]
    lost = [r for r in rows if r.status not in ("sent", "dead")]
    never_arrived = [r for r in sent if counts[f"bo-{r.id}"] == 0]
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    print(
        f"\nkill test: {len(rows)} messages, {kills} SIGKILLs, {len(sent)} sent, {len(dead)} dead-lettered, "
        f"{duplicates} duplicate deliveries (kills after provider call no. {kill_points}), {providers.failures} injected 503s, "
        f"lost={len(lost) + len(never_arrived)}; dispatch took {time.monotonic() - seeded:.1f}s"
    )
    assert dict(parents) == {"sent": MESSAGES}
    assert len(rows) == MESSAGES
    assert kills == KILLS, "the test must actually kill the dispatcher mid-flight"
    assert lost == [] and never_arrived == []
    assert len(sent) + len(dead) == MESSAGES
    # The worker's own log (stderr, at INFO) never shows a customer's address or number.
    log_text = stderr.read_text(encoding="utf-8", errors="replace")
    assert "canary-pii.example" not in log_text and "+4477009" not in log_text
