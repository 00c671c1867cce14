"""A dispatcher round that waits on a slow provider keeps its claim: its rows' leases are renewed
while it runs, so another worker cannot claim them and send them a second time; and a row that
another worker did claim (the lease ran out first) is left to that worker. A provider that fails
rests: one call per rest, not one per message. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from backorder.bootstrap import Application
from backorder.connectors.base import Connector, ConnectorSettings, DeliveryReceipt, NotifiesStaff, StaffMessage
from backorder.connectors.errors import Rejected, TransportFailure
from backorder.store import tables as t
from backorder.store.outbox import ClaimedDelivery

if TYPE_CHECKING:
    from conftest import SettableClock

LEASE = timedelta(seconds=0.6)  # renewed every 0.2 s
PAYLOAD = {"event": "StockBelowThreshold", "sku": "INK", "projected": -2, "reorder_point": 0, "supplier": None}


class SlowProvider(Connector, NotifiesStaff):
    """Answers after ``seconds``; during the first message it lets ``meanwhile`` run (the
    test's other worker)."""

    def __init__(self, seconds: float, meanwhile: Any) -> None:
        super().__init__("slow", ConnectorSettings(provider="slow"))
        self.seconds = seconds
        self.meanwhile = meanwhile
        self.sent: list[str] = []
        self.lock = threading.Lock()

    def post_staff(self, message: StaffMessage) -> DeliveryReceipt:
        with self.lock:
            first = not self.sent
            self.sent.append(message.message_id)
        if first:
            self.meanwhile()
        time.sleep(self.seconds)
        return DeliveryReceipt(provider_ref=message.message_id, detail="accepted")


def _one_orders_messages(app: Application, n: int) -> list[int]:
    """``n`` messages of one order: one lane, delivered one after another."""
    return [
        app.queue.enqueue("notify_staff", "staff", {**PAYLOAD, "order_id": "W-1"}, app.clock.now()) for _ in range(n)
    ]


def _status(app: Application) -> dict[int, tuple[str, int]]:
    return {r["id"]: (r["status"], r["attempts"]) for r in app.queue.list(limit=20)}


def test_a_round_that_outlasts_its_lease_keeps_its_rows(app: Application, clock: SettableClock) -> None:
    ids = _one_orders_messages(app, 3)
    app.dispatcher.lease = LEASE
    taken_by_other: list[ClaimedDelivery] = []

    def other_worker_after_the_lease() -> None:
        # Time passes beyond the first lease; the keeper renews it (0.2 s) before the other looks.
        clock.advance(seconds=2)
        time.sleep(0.5)
        taken_by_other.extend(app.queue.claim(clock.now(), 50, LEASE, "other-worker"))

    provider = SlowProvider(0.05, other_worker_after_the_lease)
    app.routes.staff = provider

    stats = app.dispatcher.run_once(worker="this-worker")

    assert taken_by_other == []
    assert (stats.claimed, stats.sent, stats.lost_claims) == (3, 3, 0)
    assert provider.sent == [f"bo-{i}" for i in ids]  # each once
    assert all(_status(app)[i] == ("sent", 1) for i in ids)


def test_a_row_another_worker_claimed_meanwhile_is_not_delivered_again(app: Application, clock: SettableClock) -> None:
    ids = _one_orders_messages(app, 3)
    app.dispatcher.lease = LEASE
    taken_by_other: list[ClaimedDelivery] = []

    def other_worker_before_the_renewal() -> None:
        # The process stalled past its lease (e.g. a long GC pause) before the keeper ran.
        clock.advance(seconds=2)
        taken_by_other.extend(app.queue.claim(clock.now(), 50, LEASE, "other-worker"))
        time.sleep(0.5)  # the keeper's renewal now finds the other rows held by the other worker

    provider = SlowProvider(0.0, other_worker_before_the_renewal)
    app.routes.staff = provider

    stats = app.dispatcher.run_once(worker="this-worker")

    assert [d.id for d in taken_by_other] == ids  # the one being sent too: its lease had run out
    # The one in flight was sent (its result is discarded: the other worker owns the row now);
    # the two not yet started are not sent by this round.
    assert provider.sent == [f"bo-{ids[0]}"]
    assert (stats.claimed, stats.sent, stats.lost_claims) == (3, 0, 3)
    assert [_status(app)[i][0] for i in ids] == ["in_flight"] * 3  # the other worker's now


def test_a_round_of_local_deliveries_starts_no_keeper(app: Application) -> None:
    _one_orders_messages(app, 2)  # the default staff connector is the sandbox: nothing to wait on
    started: list[str] = []
    original = threading.Thread.start

    def record(thread: threading.Thread) -> None:
        started.append(thread.name)
        original(thread)

    threading.Thread.start = record  # type: ignore[method-assign]
    try:
        assert app.dispatcher.run_once().sent == 2
    finally:
        threading.Thread.start = original  # type: ignore[method-assign]
    assert "backorder-lease" not in started


class DownProvider(Connector, NotifiesStaff):
    """Times out on every call until ``up`` is set; counts the calls."""

    def __init__(self) -> None:
        super().__init__("down", ConnectorSettings(provider="down"))
        self.calls = 0
        self.up = False

    def post_staff(self, message: StaffMessage) -> DeliveryReceipt:
        self.calls += 1
        if not self.up:
            raise TransportFailure("read timed out", provider="down")
        return DeliveryReceipt(provider_ref=message.message_id, detail="accepted")


def test_a_failing_provider_rests_and_costs_one_call_per_rest(app: Application, clock: SettableClock) -> None:
    """Five orders' staff messages to a provider that times out: one call, four deferred without
    an attempt; the customer's message of another provider in the same round goes on."""
    app.dispatcher.threads = 1
    ids = [app.queue.enqueue("notify_staff", "staff", {**PAYLOAD, "order_id": f"W-{n}"}, clock.now()) for n in range(5)]
    provider = DownProvider()
    app.routes.staff = provider

    stats = app.dispatcher.run_once()

    assert provider.calls == 1
    assert (stats.retried, stats.deferred, stats.sent) == (1, 4, 0)
    rows = {r["id"]: r for r in app.queue.list(limit=20)}
    assert [rows[i]["attempts"] for i in ids] == [1, 0, 0, 0, 0]  # a rest uses up no attempt
    rest_ends = rows[ids[0]]["next_attempt_at"]
    assert all(rows[i]["next_attempt_at"] == rest_ends for i in ids)  # the probe first, by id

    clock.set(rest_ends)
    stats = app.dispatcher.run_once()  # the probe fails again: the rest doubles
    assert provider.calls == 2
    rows = {r["id"]: r for r in app.queue.list(limit=20)}
    assert rows[ids[0]]["next_attempt_at"] - rest_ends == timedelta(seconds=2 * app.dispatcher.retry.base_seconds)

    provider.up = True
    clock.set(rows[ids[0]]["next_attempt_at"])
    assert app.dispatcher.drain().sent == 5
    assert provider.calls == 7  # two failed probes, then each message once


def test_a_rejected_message_does_not_rest_the_provider(app: Application) -> None:
    """A 4xx is about that message (a bad address), not the provider: the others still go."""
    app.dispatcher.threads = 1
    for n in range(3):
        app.queue.enqueue("notify_staff", "staff", {**PAYLOAD, "order_id": f"W-{n}"}, app.clock.now())

    class RejectsFirst(DownProvider):
        def post_staff(self, message: StaffMessage) -> DeliveryReceipt:
            self.calls += 1
            if self.calls == 1:
                raise Rejected(404, "channel_not_found", provider="down")
            return DeliveryReceipt(provider_ref=message.message_id, detail="accepted")

    provider = RejectsFirst()
    app.routes.staff = provider

    stats = app.dispatcher.run_once()
    assert (stats.dead, stats.sent, stats.deferred, provider.calls) == (1, 2, 0, 3)


def test_a_customer_message_waits_while_another_worker_holds_the_orders_earlier_one(
    app: Application, clock: SettableClock
) -> None:
    """Two workers claim different messages of one order: the later one is deferred, not sent
    first, until the earlier one has gone."""
    payload = {"event": "BackorderCreated", "order_id": "W-1", "channel": "web", "lines": []}
    first = app.queue.enqueue("send_email", "email", payload, clock.now())
    second = app.queue.enqueue("send_email", "email", {**payload, "event": "BackorderCancelled"}, clock.now())
    [held] = app.queue.claim(clock.now(), 1, LEASE, "other-worker")  # the other worker has the first
    assert held.id == first

    stats = app.dispatcher.run_once(worker="this-worker")  # claims the second

    assert (stats.claimed, stats.deferred, stats.sent) == (1, 1, 0)
    status = _status(app)
    assert status[second] == ("pending", 0)  # no attempt used
    assert status[first][0] == "in_flight"


def test_messages_of_one_order_claimed_together_still_go_in_one_round(app: Application) -> None:
    """The check does not hold back a worker's own earlier message: its lane sends them in order."""
    payload = {"event": "BackorderCreated", "order_id": "W-2", "lines": []}
    for _ in range(2):
        app.queue.enqueue("send_email", "email", payload, app.clock.now())
    stats = app.dispatcher.run_once(worker="this-worker")
    assert stats.claimed == 2 and stats.deferred == 0  # (skipped: no such order, nobody to write to)


def test_an_earlier_message_waiting_for_a_later_attempt_does_not_hold_the_next_back(
    app: Application, clock: SettableClock
) -> None:
    """A debounced ETA notice (or a retry's back-off) waits for its time; the order's next message
    is not held behind it."""
    payload = {"event": "BackorderEtaChanged", "order_id": "W-3", "channel": "web", "changes": []}
    later = app.queue.enqueue("send_email", "email", payload, clock.now())
    now = app.queue.enqueue("send_email", "email", {**payload, "event": "BackorderCancelled"}, clock.now())
    with app.engine.begin() as conn:  # enqueue() makes a row due now: move the first one's time
        conn.execute(
            t.outbox.update().where(t.outbox.c.id == later).values(next_attempt_at=clock.now() + timedelta(hours=6))
        )

    stats = app.dispatcher.run_once(worker="this-worker")

    assert stats.claimed == 1 and stats.deferred == 0
    assert _status(app)[now][0] != "pending"
