"""The background loop: dispatch due outbox rows, send due purchase-order drafts, and run a
full backorder pass on a schedule. Runs in `backorder worker` (alone) or inside
`backorder serve` (a thread). Several workers may run at once against PostgreSQL.

In :meth:`Worker.run` the webhook inbox has a thread of its own, so recording an order is never
queued behind a round of outbox deliveries (five or so per order); :meth:`Worker.tick` alone
(tests, one-shot use) still does everything in one round."""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime

from backorder.bootstrap import Application
from backorder.domain import commands

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, app: Application, name: str | None = None) -> None:
        self.app = app
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 10000}"
        self._last_bop: datetime | None = None
        self._inbox_thread: threading.Thread | None = None

    def tick(self) -> int:
        """One round; returns how many outbox rows were handled."""
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
        except Exception:  # the loop must survive; the failure is logged and retried next tick
            log.exception("scheduled work failed; will retry next round")
        stats = self.app.dispatcher.run_once(cfg.batch_size, self.name)
        return stats.claimed

    def _channels(self, now: datetime) -> None:
        services = self.app.channel_services
        if services is None:
            return
        services.tick(now, process_inbox=self._inbox_thread is None)  # the inbox thread processes webhooks

    def run(self, stop: threading.Event) -> None:
        log.info("worker %s started", self.name)
        if self.app.channel_services is not None:
            self._inbox_thread = threading.Thread(
                target=self._run_inbox, args=(stop,), name="backorder-inbox", daemon=True
            )
            self._inbox_thread.start()
        try:
            while not stop.is_set():
                handled = self.tick()
                if handled == 0:
                    stop.wait(self.app.config.worker.poll_interval_seconds)
        finally:
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
            except Exception:  # the loop must survive; the rows' leases run out and they are retried
                log.exception("inbox processing failed; will retry next round")
                handled = 0
            if handled == 0:
                stop.wait(self.app.config.worker.poll_interval_seconds)


def start_in_thread(app: Application) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=Worker(app).run, args=(stop,), name="backorder-worker", daemon=True)
    thread.start()
    return thread, stop
