"""The dispatcher delivers a claimed batch on several threads, in lanes: different orders'
messages at once, one order's messages one after another in claim order. On SQLite and
PostgreSQL."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from backorder.bootstrap import Application
from backorder.connectors.base import Connector, ConnectorSettings, DeliveryReceipt, NotifiesStaff, StaffMessage
from backorder.dispatch import lane_of
from backorder.store.outbox import ClaimedDelivery

if TYPE_CHECKING:
    from conftest import SettableClock

STAFF_PAYLOAD = {"event": "StockBelowThreshold", "sku": "INK", "projected": -2, "reorder_point": 0, "supplier": None}


class GatedProvider(Connector, NotifiesStaff):
    """Holds the first delivery of each of ``gated`` lanes until all of them have started: with
    deliveries one at a time the gate never opens, the sends fail, and the test sees it."""

    def __init__(self, lane_of_message: dict[str, str], first_of_lane: set[str], gated: int) -> None:
        super().__init__("gated", ConnectorSettings(provider="gated"))
        self.lane_of_message = lane_of_message
        self.first_of_lane = first_of_lane
        self.gate = threading.Barrier(gated, timeout=20)
        self.lock = threading.Lock()
        self.sent: list[str] = []
        self.in_flight: dict[str, int] = {}
        self.overlap_within_a_lane = False

    def post_staff(self, message: StaffMessage) -> DeliveryReceipt:
        lane = self.lane_of_message[message.message_id]
        with self.lock:
            self.in_flight[lane] = self.in_flight.get(lane, 0) + 1
            self.overlap_within_a_lane |= self.in_flight[lane] > 1
        try:
            if message.message_id in self.first_of_lane:
                self.gate.wait()
            with self.lock:
                self.sent.append(message.message_id)
        finally:
            with self.lock:
                self.in_flight[lane] -= 1
        return DeliveryReceipt(provider_ref=message.message_id, detail="accepted")


def _enqueue(app: Application, order_id: str | None, target: str = "staff") -> int:
    payload: dict[str, Any] = dict(STAFF_PAYLOAD)
    if order_id is not None:
        payload["order_id"] = order_id
    return app.queue.enqueue("notify_staff", target, payload, app.clock.now())


def test_different_orders_are_delivered_at_once_and_one_orders_messages_in_order(
    app: Application, clock: SettableClock
) -> None:
    assert app.dispatcher.threads == 4  # the default `[worker] delivery_threads`
    ids = {order: [_enqueue(app, order) for _ in range(n)] for order, n in (("A", 3), ("B", 1), ("C", 2))}
    firsts = {f"bo-{found[0]}" for found in ids.values()}
    lanes = {f"bo-{i}": order for order, found in ids.items() for i in found}
    provider = GatedProvider(lanes, firsts, gated=3)
    app.routes.staff = provider

    stats = app.dispatcher.run_once()

    assert (stats.claimed, stats.sent) == (6, 6)
    assert not provider.overlap_within_a_lane
    for order, found in ids.items():  # each order's messages in the order they were written
        assert [m for m in provider.sent if provider.lane_of_message[m] == order] == [f"bo-{i}" for i in found]


class LocalProvider(Connector, NotifiesStaff):
    """Like the sandbox: nothing to wait for, so nothing for a thread to overlap."""

    local = True

    def __init__(self) -> None:
        super().__init__("local", ConnectorSettings(provider="local"))
        self.threads: list[str] = []

    def post_staff(self, message: StaffMessage) -> DeliveryReceipt:
        self.threads.append(threading.current_thread().name)
        return DeliveryReceipt(provider_ref=message.message_id, detail="recorded")


def test_deliveries_that_wait_on_nothing_stay_on_the_calling_thread(app: Application) -> None:
    for order in ("A", "B", "C", "D"):
        _enqueue(app, order)
    provider = LocalProvider()
    app.routes.staff = provider

    assert app.dispatcher.run_once().sent == 4
    assert provider.threads == [threading.current_thread().name] * 4


def test_one_delivery_thread_delivers_one_at_a_time_in_claim_order(app: Application) -> None:
    app.dispatcher.threads = 1
    found = [_enqueue(app, order) for order in ("A", "B", "A", "C")]
    provider = GatedProvider({f"bo-{i}": "one" for i in found}, set(), gated=1)
    app.routes.staff = provider

    assert app.dispatcher.run_once().sent == 4
    assert provider.sent == [f"bo-{i}" for i in found]
    assert not provider.overlap_within_a_lane


def test_a_lane_that_fails_lets_the_other_lanes_finish_before_the_error_is_raised(app: Application) -> None:
    """A store error in one lane (here: finishing the row) is raised only after every other lane
    has delivered; the failed lane's rows stay claimed and go again when their lease runs out."""
    good = [_enqueue(app, "GOOD") for _ in range(2)]
    bad = _enqueue(app, "BAD")
    provider = GatedProvider({f"bo-{i}": "GOOD" for i in good} | {f"bo-{bad}": "BAD"}, set(), gated=1)
    app.routes.staff = provider
    finish = app.queue.finish

    def finish_failing_for_bad(delivery: ClaimedDelivery, *args: Any, **kwargs: Any) -> bool:
        if delivery.id == bad:
            raise RuntimeError("the database went away")
        return finish(delivery, *args, **kwargs)

    app.queue.finish = finish_failing_for_bad  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="went away"):
        app.dispatcher.run_once()
    statuses = {r["id"]: r["status"] for r in app.queue.list(limit=10)}
    assert [statuses[i] for i in good] == ["sent", "sent"]
    assert statuses[bad] == "in_flight"


def test_lanes_follow_the_order_else_the_target() -> None:
    def delivery(target: str, payload: dict[str, Any]) -> ClaimedDelivery:
        return ClaimedDelivery(1, "notify_staff", target, payload, 1, "w", None)

    assert lane_of(delivery("email", {"order_id": "W-1"})) == lane_of(delivery("sms", {"order_id": "W-1"}))
    assert lane_of(delivery("email", {"order_id": "W-1"})) != lane_of(delivery("email", {"order_id": "W-2"}))
    assert lane_of(delivery("channel:web", {"sku": "INK"})) == lane_of(delivery("channel:web", {"sku": "PAPER"}))
    assert lane_of(delivery("channel:web", {"sku": "INK"})) != lane_of(delivery("channel:pos", {"sku": "INK"}))


def test_a_closed_dispatcher_still_delivers_a_round_on_the_calling_thread(app: Application) -> None:
    """Shutting down (`serve` stops its worker, then closes the app): a round still under way
    delivers without threads instead of failing."""
    found = [_enqueue(app, order) for order in ("A", "B")]
    provider = GatedProvider({f"bo-{i}": "one" for i in found}, set(), gated=1)
    app.routes.staff = provider
    app.dispatcher.close()

    assert app.dispatcher.run_once().sent == 2
    assert provider.sent == [f"bo-{i}" for i in found]
