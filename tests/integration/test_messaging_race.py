"""ETA-change debounce under concurrency, on SQLite and PostgreSQL: two ETA messages for one
order dispatched by two threads at once reach the customer once; the other waits for the end of
the interval and is then decided again against what the customer was told."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from backorder.bootstrap import Application
from backorder.domain import commands as c
from backorder.importer import import_file
from backorder.store import tables as t

if TYPE_CHECKING:
    from conftest import SettableClock

DATA = Path(__file__).resolve().parents[2] / "src" / "backorder" / "demo_data"
ORDER = "WEB-R1"


def _emails(app: Application, template: str) -> int:
    m = t.sandbox_messages.c
    with app.engine.connect() as conn:
        return len(conn.execute(select(m.id).where(m.kind == "email", m.template == template)).all())


def _move_eta(app: Application, days: int) -> dict[str, Any]:
    line = t.order_lines.c
    with app.engine.begin() as conn:
        eta = conn.execute(select(line.eta).where(line.order_id == ORDER)).scalar_one()
        new = eta + timedelta(days=days)
        conn.execute(update(t.order_lines).where(line.order_id == ORDER).values(eta=new))
    change = {"line_no": 1, "sku": "WN-PWC-263-5", "previous": eta.isoformat(), "current": new.isoformat()}
    return {"event": "BackorderEtaChanged", "order_id": ORDER, "channel": "web", "changes": [change]}


def test_two_eta_messages_dispatched_at_once_reach_the_customer_once(app: Application, clock: SettableClock) -> None:
    import_file(app.bus, DATA / "suppliers.csv", "suppliers")
    import_file(app.bus, DATA / "skus.csv", "skus")
    line = (c.NewLine(1, "WN-PWC-263-5", 2),)
    app.bus.handle(c.PlaceOrder(ORDER, "web", clock.now(), line, customer_email="race@canary-pii.example"))
    app.dispatcher.drain()
    assert _emails(app, "backorder_created") == 1
    clock.advance(hours=25)
    now = clock.now()
    app.queue.enqueue("notify_customer", "customer", _move_eta(app, 5), now)
    app.queue.enqueue("notify_customer", "customer", _move_eta(app, 3), now)  # both say "8 days later"
    claimed = app.queue.claim(now, 10, timedelta(minutes=2), "race")
    assert [d.action for d in claimed] == ["notify_customer", "notify_customer"]

    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def deliver(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            outcomes.append(app.dispatcher.deliver(claimed[index]))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(outcomes) == ["deferred", "sent"]  # one fanned out; the other waits
    app.dispatcher.drain()
    assert _emails(app, "eta_changed") == 1

    clock.advance(hours=25)  # the waiting one comes round: nothing new to tell
    app.dispatcher.drain()
    assert _emails(app, "eta_changed") == 1
    o = t.outbox.c
    with app.engine.connect() as conn:
        statuses = conn.execute(
            select(o.status).where(o.action == "notify_customer", o.id.in_([d.id for d in claimed]))
        ).all()
    assert sorted(s.status for s in statuses) == ["sent", "skipped"]

    app.queue.enqueue("notify_customer", "customer", _move_eta(app, 4), clock.now())  # a real move later
    app.dispatcher.drain()
    assert _emails(app, "eta_changed") == 2
