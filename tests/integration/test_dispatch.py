"""The outbox as a work queue, and the dispatcher's retry / dead-letter / replay behaviour, on
SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from backorder.bootstrap import Application, DatabaseSandboxSink
from backorder.connectors.base import (
    Connector,
    ConnectorSettings,
    DeliveryReceipt,
    NotifiesStaff,
    PlacesPurchaseOrders,
    PurchaseOrderDocument,
    StaffMessage,
)
from backorder.connectors.errors import ConnectorError, ProviderUnavailable, RateLimited, Rejected
from backorder.connectors.sandbox.client import SandboxConnector
from backorder.connectors.sandbox.settings import SandboxSettings
from backorder.store import tables as t
from backorder.store.outbox import AttemptOutcome, OutboxQueue
from backorder.store.sandbox import sandbox_messages

if TYPE_CHECKING:
    from conftest import Db, SettableClock

LEASE = timedelta(seconds=60)
STAFF_PAYLOAD = {"event": "StockBelowThreshold", "sku": "INK", "projected": -2, "reorder_point": 0, "supplier": None}
PO_PAYLOAD = {
    "event": "PurchaseOrderSent",
    "po_number": "PO-20260302-00001",
    "supplier": "ROYAL",
    "supplier_email": "orders@royal.example",
    "lines": [{"sku": "INK", "supplier_sku": "R-INK", "quantity": 6, "unit_cost": "3.10", "expected_on": "2026-03-12"}],
}


class ScriptedProvider(Connector, NotifiesStaff, PlacesPurchaseOrders):
    """Fails with the scripted errors first, then succeeds; remembers what it was sent."""

    def __init__(self, *failures: ConnectorError) -> None:
        super().__init__("scripted", ConnectorSettings(provider="scripted"))
        self.failures = list(failures)
        self.sent: list[str] = []
        self.calls = 0

    def _answer(self, message_id: str) -> DeliveryReceipt:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message_id)
        return DeliveryReceipt(provider_ref=f"ref-{len(self.sent)}", detail="accepted")

    def post_staff(self, message: StaffMessage) -> DeliveryReceipt:
        return self._answer(message.message_id)

    def place_purchase_order(self, document: PurchaseOrderDocument) -> DeliveryReceipt:
        return self._answer(document.message_id)


def enqueue(
    app: Application, count: int = 1, action: str = "notify_staff", payload: dict[str, Any] | None = None
) -> list[int]:
    target = "purchasing" if action == "send_purchase_order" else "staff"
    return [app.queue.enqueue(action, target, dict(payload or STAFF_PAYLOAD), app.clock.now()) for _ in range(count)]


def outbox_row(db: Db, outbox_id: int) -> dict[str, Any]:
    (row,) = db.rows(t.outbox, t.outbox.c.id == outbox_id)
    return row


def attempts(db: Db, outbox_id: int) -> list[tuple[int, str, int | None]]:
    rows = db.rows(t.delivery_attempts, t.delivery_attempts.c.outbox_id == outbox_id, order_by=t.delivery_attempts.c.id)
    return [(r["attempt"], r["outcome"], r["status_code"]) for r in rows]


# --- claiming -------------------------------------------------------------------------------


def test_two_workers_claiming_at_once_never_get_the_same_row(app: Application, db: Db, clock: SettableClock) -> None:
    ids = enqueue(app, 60)
    now = clock.now()
    got: dict[str, list[int]] = {"w1": [], "w2": []}
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        queue = OutboxQueue(app.engine)
        try:
            barrier.wait(timeout=30)
            while batch := queue.claim(now, 4, LEASE, name):
                got[name].extend(d.id for d in batch)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(name,)) for name in got]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert not set(got["w1"]) & set(got["w2"])
    assert sorted(got["w1"] + got["w2"]) == ids
    owners = {r["id"]: r["claimed_by"] for r in db.rows(t.outbox)}
    assert all(owners[i] == "w1" for i in got["w1"]) and all(owners[i] == "w2" for i in got["w2"])
    assert {(r["status"], r["attempts"]) for r in db.rows(t.outbox)} == {("in_flight", 1)}


def test_a_claimed_row_is_not_claimed_again_while_its_lease_holds(app: Application, clock: SettableClock) -> None:
    (outbox_id,) = enqueue(app)
    assert [d.id for d in app.queue.claim(clock.now(), 10, LEASE, "A")] == [outbox_id]
    assert app.queue.claim(clock.now() + timedelta(seconds=59), 10, LEASE, "B") == []


def test_an_expired_lease_is_claimed_again_and_the_stale_worker_cannot_finish(
    app: Application, db: Db, clock: SettableClock
) -> None:
    (outbox_id,) = enqueue(app)
    start = clock.now()
    (stale,) = app.queue.claim(start, 10, LEASE, "A")
    later = start + LEASE + timedelta(seconds=1)
    (fresh,) = app.queue.claim(later, 10, LEASE, "B")
    assert (fresh.id, fresh.attempt, stale.attempt) == (outbox_id, 2, 1)

    sent = AttemptOutcome("sent", "done", provider_ref="stale-ref")
    assert app.queue.finish(stale, sent, "scripted", start, later) is False
    row = outbox_row(db, outbox_id)
    assert (row["status"], row["claimed_by"], row["attempts"], row["provider_ref"]) == ("in_flight", "B", 2, None)
    assert attempts(db, outbox_id) == []

    assert app.queue.finish(fresh, AttemptOutcome("sent", "done", provider_ref="fresh-ref"), "scripted", later, later)
    row = outbox_row(db, outbox_id)
    assert (row["status"], row["claimed_by"], row["provider_ref"]) == ("sent", None, "fresh-ref")
    assert attempts(db, outbox_id) == [(2, "sent", None)]
    assert app.queue.finish(stale, sent, "scripted", start, later) is False  # still nothing from the stale worker
    assert attempts(db, outbox_id) == [(2, "sent", None)]


# --- the dispatcher ---------------------------------------------------------------------------


def test_a_retryable_failure_goes_back_to_pending_with_a_later_attempt_time(
    app: Application, db: Db, clock: SettableClock
) -> None:
    provider = ScriptedProvider(ProviderUnavailable(503, provider="scripted"))
    app.routes.staff = provider
    (outbox_id,) = enqueue(app)

    stats = app.dispatcher.run_once()
    assert (stats.claimed, stats.retried) == (1, 1)
    row = outbox_row(db, outbox_id)
    assert (row["status"], row["attempts"], row["claimed_by"]) == ("pending", 1, None)
    assert row["next_attempt_at"] > clock.now()
    assert "HTTP 503" in row["last_error"]
    assert attempts(db, outbox_id) == [(1, "retry", 503)]

    assert app.dispatcher.drain().claimed == 0  # not due yet
    clock.set(row["next_attempt_at"])
    assert app.dispatcher.drain().sent == 1
    assert outbox_row(db, outbox_id)["status"] == "sent"
    assert attempts(db, outbox_id) == [(1, "retry", 503), (2, "sent", None)]
    assert provider.sent == [f"bo-{outbox_id}"]


def test_a_rate_limited_delivery_waits_at_least_as_long_as_the_provider_asked(
    app: Application, db: Db, clock: SettableClock
) -> None:
    app.routes.staff = ScriptedProvider(RateLimited(900.0, provider="scripted"))
    (outbox_id,) = enqueue(app)
    app.dispatcher.run_once()
    assert outbox_row(db, outbox_id)["next_attempt_at"] >= clock.now() + timedelta(seconds=900)
    assert attempts(db, outbox_id) == [(1, "retry", 429)]


def test_a_fatal_failure_is_dead_at_once_and_staff_hear_about_it(
    app: Application, db: Db, clock: SettableClock
) -> None:
    provider = ScriptedProvider(Rejected(422, '{"error": "unknown supplier account"}', provider="scripted"))
    app.routes.purchasing = provider
    (outbox_id,) = enqueue(app, action="send_purchase_order", payload=PO_PAYLOAD)

    stats = app.dispatcher.run_once()
    assert stats.dead == 1
    row = outbox_row(db, outbox_id)
    assert (row["status"], row["attempts"]) == ("dead", 1)
    assert "HTTP 422" in row["last_error"] and "unknown supplier account" in row["last_error"]
    assert attempts(db, outbox_id) == [(1, "dead", 422)]
    assert provider.calls == 1

    announced = [r for r in db.rows(t.outbox) if r["id"] != outbox_id]
    assert [(r["action"], r["payload"]["event"], r["payload"]["outbox_id"]) for r in announced] == [
        ("notify_staff", "DeadLetter", outbox_id)
    ]
    app.dispatcher.drain()
    (staff,) = sandbox_messages(app.engine, kind="staff")
    assert staff["subject"] == f"Delivery failed for good: send_purchase_order to purchasing (outbox #{outbox_id})"
    assert provider.calls == 1  # a dead letter is not retried by itself


def test_a_delivery_that_keeps_failing_is_dead_after_the_last_attempt(
    app: Application, db: Db, clock: SettableClock
) -> None:
    app.routes.staff = ScriptedProvider(*[ProviderUnavailable(502, provider="scripted") for _ in range(20)])
    (outbox_id,) = enqueue(app)
    for _ in range(app.config.worker.max_attempts):
        app.dispatcher.drain()
        clock.advance(seconds=app.config.worker.backoff_cap_seconds + 1)
    row = outbox_row(db, outbox_id)
    assert (row["status"], row["attempts"]) == ("dead", app.config.worker.max_attempts)
    assert row["last_error"].startswith(f"gave up after {app.config.worker.max_attempts} attempts")
    outcomes = [outcome for _, outcome, _ in attempts(db, outbox_id)]
    assert outcomes == ["retry"] * (app.config.worker.max_attempts - 1) + ["dead"]


def test_replaying_a_dead_letter_sends_it_exactly_once(app: Application, db: Db, clock: SettableClock) -> None:
    provider = ScriptedProvider(Rejected(401, "bad token", provider="scripted"))
    app.routes.staff = provider
    (outbox_id,) = enqueue(app)
    app.dispatcher.drain()
    assert outbox_row(db, outbox_id)["status"] == "dead"
    assert provider.sent == []

    clock.advance(minutes=5)  # staff fixed the token
    assert app.queue.retry([outbox_id], clock.now(), dead_only=True) == 1
    row = outbox_row(db, outbox_id)
    assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("pending", 0, clock.now())
    assert app.dispatcher.drain().sent == 1
    assert provider.sent == [f"bo-{outbox_id}"]
    assert outbox_row(db, outbox_id)["status"] == "sent"

    assert app.queue.retry([outbox_id], clock.now(), dead_only=True) == 0  # sent rows are not replayed
    assert app.dispatcher.drain().claimed == 0
    assert provider.sent == [f"bo-{outbox_id}"]
    assert attempts(db, outbox_id) == [(1, "dead", 401), (1, "sent", None)]


def test_the_sandbox_connector_fails_first_then_records_the_message_once(
    app: Application, db: Db, clock: SettableClock
) -> None:
    app.routes.staff = SandboxConnector(
        "notify.staff", SandboxSettings(provider="sandbox", fail_first=2), DatabaseSandboxSink(app.engine, clock), None
    )
    (outbox_id,) = enqueue(app)
    for _ in range(3):
        app.dispatcher.drain()
        clock.advance(hours=2)
    assert outbox_row(db, outbox_id)["status"] == "sent"
    assert attempts(db, outbox_id) == [(1, "retry", 503), (2, "retry", 503), (3, "sent", None)]
    recorded = sandbox_messages(app.engine, kind="staff")
    assert [(m["outbox_id"], m["recipient"]) for m in recorded] == [(outbox_id, "notify.staff")]
    assert recorded[0]["subject"].startswith("Below reorder point: INK")


def test_a_customer_message_for_an_order_that_does_not_exist_is_skipped(app: Application, db: Db) -> None:
    (outbox_id,) = enqueue(app, action="notify_customer", payload={"event": "BackorderCreated", "order_id": "GONE"})
    assert app.dispatcher.drain().skipped == 1
    assert outbox_row(db, outbox_id)["status"] == "skipped"
    assert [outcome for _, outcome, _ in attempts(db, outbox_id)] == ["skipped"]


@pytest.mark.parametrize("dead_only", [True, False])
def test_retry_only_touches_the_rows_it_is_allowed_to(app: Application, db: Db, dead_only: bool) -> None:
    app.routes.staff = ScriptedProvider(Rejected(400, provider="scripted"))
    dead, pending = enqueue(app, 2)
    app.dispatcher.run_once(limit=1)
    assert (outbox_row(db, dead)["status"], outbox_row(db, pending)["status"]) == ("dead", "pending")
    changed = app.queue.retry([dead, pending], app.clock.now(), dead_only=dead_only)
    assert changed == (1 if dead_only else 2)
    assert {outbox_row(db, i)["status"] for i in (dead, pending)} == {"pending"}
