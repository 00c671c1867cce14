"""Group commit for the webhook ingress: requests hand their inbox row to one writer thread,
which commits everything that is waiting in a single transaction and then answers each request.
A request is answered only after the transaction holding its row has committed (and fails with
all the others of its batch if that commit fails), so "durable before 200" holds while the cost
of a commit is shared by every webhook that arrived meanwhile."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from datetime import datetime

from backorder.store.inbox import InboxStore

log = logging.getLogger(__name__)

Item = tuple[str, str, str, str, Mapping[str, str], bytes, datetime]


class InboxWriter:
    def __init__(self, inbox: InboxStore, max_batch: int = 256) -> None:
        self.inbox = inbox
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[Item, Future[tuple[int | None, bool]]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="inbox-writer", daemon=True)
                    self._thread.start()

    def submit(self, item: Item) -> Future[tuple[int | None, bool]]:
        self._ensure_started()
        future: Future[tuple[int | None, bool]] = Future()
        self._queue.put((item, future))
        return future

    async def record(self, item: Item) -> tuple[int | None, bool]:
        return await asyncio.wrap_future(self.submit(item))

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                batch.append(more)
            try:
                results = self.inbox.record_many([item for item, _ in batch])
            except BaseException as exc:  # nothing of this batch was committed: every sender gets an error
                log.exception("inbox commit of %d webhook(s) failed", len(batch))
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                future.set_result(result)
