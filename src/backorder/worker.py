"""The background loop: dispatch due outbox rows, send due purchase-order drafts, and run a
full backorder pass on a schedule. Runs in `backorder worker` (alone) or inside
`backorder serve` (a thread). Several workers may run at once against PostgreSQL."""

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

    def tick(self) -> int:
        """One round; returns how many outbox rows were handled."""
        cfg = self.app.config.worker
        now = self.app.clock.now()
        try:
            self.app.bus.handle(commands.SendDuePurchaseOrders())
            self.app.dispatcher.schedule_digest(now)  # issue 4: the daily staff digest, once a day
            self.app.channel_services and self.app.channel_services.tick(now)  # issue 3: inbox, stock sync, reconcile
            interval = cfg.bop_interval_minutes
            if interval and (self._last_bop is None or (now - self._last_bop).total_seconds() >= interval * 60):
                self.app.bus.handle(commands.RunBackorderProcessing())
                self._last_bop = now
        except Exception:  # the loop must survive; the failure is logged and retried next tick
            log.exception("scheduled work failed; will retry next round")
        stats = self.app.dispatcher.run_once(cfg.batch_size, self.name)
        return stats.claimed

    def run(self, stop: threading.Event) -> None:
        log.info("worker %s started", self.name)
        while not stop.is_set():
            handled = self.tick()
            if handled == 0:
                stop.wait(self.app.config.worker.poll_interval_seconds)
        log.info("worker %s stopped", self.name)


def start_in_thread(app: Application) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=Worker(app).run, args=(stop,), name="backorder-worker", daemon=True)
    thread.start()
    return thread, stop
