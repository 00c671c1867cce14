"""The background loop: dispatch due outbox rows, send due purchase-order drafts, and run a
full backorder pass on a schedule. Runs in `backorder worker` (alone) or inside
`backorder serve` (a thread). Several workers may run at once against PostgreSQL.

In :meth:`Worker.run` the webhook inbox has a thread of its own, so recording an order is never
queued behind a round of outbox deliveries (five or so per order); :meth:`Worker.tick` alone
(tests, one-shot use) still does everything in one round.

Neither loop dies of an error (a database outage, a bug in one round): the first failure of a
run of failures is logged with its traceback, later ones as one line (at most every
``BACKOFF_CAP_SECONDS``, the traceback at debug), and the loop waits the poll interval, doubled
per failed round up to ``BACKOFF_CAP_SECONDS``, until a round works again. :meth:`Worker.status`
says how the loops are doing (``/healthz`` shows it for the worker inside ``serve``)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import datetime

from backorder.bootstrap import Application
from backorder.domain import commands
from backorder.services.ports import Clock
from backorder.store.engine import driver_reason

log = logging.getLogger(__name__)

BACKOFF_CAP_SECONDS = 30.0
"""The longest wait between rounds while a loop keeps failing (unless the poll interval is longer)."""


class Failures:
    """The current run of consecutive failures of one part of the worker (the dispatcher, the
    scheduled work, the inbox): logs them without flooding and gives the back-off."""

    def __init__(self, what: str, clock: Clock) -> None:
        self.what = what
        self.clock = clock
        self.count = 0
        self.since: datetime | None = None
        self.error: str | None = None
        self._lock = threading.Lock()
        self._last_logged = 0.0

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            self.count += 1
            first = self.count == 1
            if first:
                self.since = self.clock.now()
            self.error = type(exc).__name__
        summary = f"{type(exc).__name__}: {driver_reason(exc)}"
        if first:
            self._last_logged = now
            log.error("%s failed: %s; retrying with back-off", self.what, summary, exc_info=exc)
            return
        if now - self._last_logged >= BACKOFF_CAP_SECONDS:
            self._last_logged = now
            log.warning("%s still failing (%d rounds since %s): %s", self.what, self.count, _iso(self.since), summary)
        log.debug("%s failed again", self.what, exc_info=exc)

    def succeeded(self) -> None:
        if not self.count:
            return
        with self._lock:
            count, since = self.count, self.since
            self.count, self.since, self.error = 0, None, None
        log.warning("%s works again after %d failed round(s) since %s", self.what, count, _iso(since))

    def delay(self, poll_interval: float) -> float:
        """The wait before the next round: the poll interval, doubled per failure in a row."""
        if not self.count:
            return poll_interval
        cap = max(BACKOFF_CAP_SECONDS, poll_interval)
        return float(min(cap, poll_interval * 2 ** min(self.count - 1, 16)))

    def state(self) -> tuple[datetime, str] | None:
        with self._lock:
            if not self.count or self.since is None or self.error is None:
                return None
            return self.since, self.error


def _iso(at: datetime | None) -> str:
    return at.isoformat().replace("+00:00", "Z") if at is not None else "?"


class Worker:
    def __init__(self, app: Application, name: str | None = None) -> None:
        self.app = app
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 10000}"
        self._last_bop: datetime | None = None
        self._inbox_thread: threading.Thread | None = None
        clock = app.clock
        self.dispatch_failures = Failures("outbox dispatch", clock)
        self.scheduled_failures = Failures("scheduled work", clock)
        self.inbox_failures = Failures("inbox processing", clock)
        self.state = "starting"
        """starting (run not called yet), running, stopped (run returned)"""

    def status(self) -> str:
        """``ok``, ``failing since <time>: <error class>`` (the earliest failing part),
        ``starting`` or ``stopped``."""
        if self.state != "running":
            return self.state
        inbox = self._inbox_thread
        if inbox is not None and not inbox.is_alive():  # died (it never returns while running)
            return "stopped"
        failing = [
            s for f in (self.dispatch_failures, self.scheduled_failures, self.inbox_failures) if (s := f.state())
        ]
        if not failing:
            return "ok"
        since, error = min(failing, key=lambda s: s[0])
        return f"failing since {_iso(since)}: {error}"

    def tick(self) -> int:
        """One round; returns how many outbox rows were handled. Never raises: a failure is
        logged (see :class:`Failures`) and the round counts 0."""
        cfg = self.app.config.worker
        now = self.app.clock.now()
        try:
            self.app.bus.handle(commands.SendDuePurchaseOrders())
            self.app.dispatcher.schedule_digest(now)  # issue 4: the daily staff digest, once a day
            self._channels(now)  # issue 3: inbox, stock sync, reconcile
            interval = cfg.bop_interval_minutes
            if interval and (self._last_bop is None or (now - self._last_bop).total_seconds() >= interval * 60):
                self.app.bus.handle(commands.RunBackorderProcessing())
                self._last_bop = now
        except Exception as exc:  # the loop must survive; the failure is logged and retried next tick
            self.scheduled_failures.failed(exc)
        else:
            self.scheduled_failures.succeeded()
        try:
            stats = self.app.dispatcher.run_once(cfg.batch_size, self.name)
        except Exception as exc:  # e.g. the database is down: claimed rows keep their lease
            self.dispatch_failures.failed(exc)
            return 0
        self.dispatch_failures.succeeded()
        return stats.claimed

    def _channels(self, now: datetime) -> None:
        services = self.app.channel_services
        if services is None:
            return
        services.tick(now, process_inbox=self._inbox_thread is None)  # the inbox thread processes webhooks

    def run(self, stop: threading.Event) -> None:
        """Rounds until ``stop`` is set; the round under way when it is set finishes first (its
        rows are finished or released), then the inbox thread is joined."""
        log.info("worker %s started", self.name)
        self.state = "running"
        poll = self.app.config.worker.poll_interval_seconds
        if self.app.channel_services is not None:
            self._inbox_thread = threading.Thread(
                target=self._run_inbox, args=(stop,), name="backorder-inbox", daemon=True
            )
            self._inbox_thread.start()
        try:
            while not stop.is_set():
                handled = self.tick()
                if handled == 0:
                    stop.wait(self.dispatch_failures.delay(poll))
        finally:
            self.state = "stopped"
            if self._inbox_thread is not None:
                stop.set()
                self._inbox_thread.join(timeout=30)
                self._inbox_thread = None
        log.info("worker %s stopped", self.name)

    def _run_inbox(self, stop: threading.Event) -> None:
        """Process received webhooks as they come (claimed in batches; safe beside other
        workers: a row is claimed by one of them only)."""
        services = self.app.channel_services
        assert services is not None
        while not stop.is_set():
            try:
                handled = services.processor.run(services.process_limit)
            except Exception as exc:  # the loop must survive; the rows' leases run out and they are retried
                self.inbox_failures.failed(exc)
                handled = 0
            else:
                self.inbox_failures.succeeded()
            if handled == 0:
                stop.wait(self.inbox_failures.delay(self.app.config.worker.poll_interval_seconds))


class InProcessWorker:
    """A :class:`Worker` on a thread of its own (``backorder serve``)."""

    def __init__(self, app: Application) -> None:
        self.worker = Worker(app)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(
            target=self.worker.run, args=(self.stop_event,), name="backorder-worker", daemon=True
        )

    def start(self) -> InProcessWorker:
        self.thread.start()
        return self

    def stop(self, timeout: float = 60.0) -> bool:
        """Ask the worker to stop and wait for its round to end; whether it did in time."""
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(timeout=timeout)
        return not self.thread.is_alive()

    def status(self) -> str:
        """As :meth:`Worker.status`; ``stopped`` as soon as the thread is gone."""
        if not self.thread.is_alive():
            return "stopped"
        return self.worker.status()


def start_in_thread(app: Application) -> tuple[threading.Thread, threading.Event]:
    handle = InProcessWorker(app).start()
    return handle.thread, handle.stop_event
