"""Group commit for the webhook ingress: requests hand their inbox row to one writer thread,
which commits everything that is waiting in a single transaction and then answers each request.
A request is answered only after the transaction holding its row has committed (and fails with
all the others of its batch if that commit fails), so "durable before 200" holds while the cost
of a commit is shared by every webhook that arrived meanwhile.

The answers of a batch go back to each event loop in ONE ``call_soon_threadsafe`` (one wake-up
of the loop per commit, not one per request)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from datetime import datetime
from typing import Any

from backorder.store.inbox import InboxStore

log = logging.getLogger(__name__)

Item = tuple[str, str, str, str, Mapping[str, str], bytes, datetime]
Result = tuple[int | None, bool]
# Where an answer goes: a concurrent Future (sync callers), or an asyncio future and its loop.
_Target = Future[Result] | tuple[asyncio.AbstractEventLoop, "asyncio.Future[Result]"]


class InboxWriter:
    def __init__(self, inbox: InboxStore, max_batch: int = 256) -> None:
        self.inbox = inbox
        self.max_batch = max_batch  # a soft limit: one hand-over (a loop iteration's rows) is never split
        self._queue: queue.SimpleQueue[list[tuple[Item, _Target]] | None] = queue.SimpleQueue()
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[Item, _Target]]] = {}
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="inbox-writer", daemon=True)
                    self._thread.start()

    def submit(self, item: Item) -> Future[Result]:
        self._ensure_started()
        future: Future[Result] = Future()
        self._queue.put([(item, future)])
        return future

    async def record(self, item: Item) -> Result:
        self._ensure_started()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        pending = self._pending.get(loop)
        if pending is None:  # the first of this loop iteration: hand them all over once it ends
            pending = self._pending[loop] = []
            loop.call_soon(self._hand_over, loop)
        pending.append((item, (loop, future)))
        return await future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        """Everything the requests of one loop iteration recorded goes to the writer in one put
        (one wake-up of the writer thread, not one per request)."""
        self._queue.put(self._pending.pop(loop))

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
        self.inbox.close()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = list(first)
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                batch.extend(more)
            try:
                results: list[Any] = self.inbox.record_many([item for item, _ in batch])
            except BaseException as exc:  # nothing of this batch was committed: every sender gets an error
                log.exception("inbox commit of %d webhook(s) failed", len(batch))
                _settle([target for _, target in batch], [exc] * len(batch), failed=True)
                continue
            _settle([target for _, target in batch], results, failed=False)


def _settle(targets: list[_Target], outcomes: list[Any], failed: bool) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Result], Any]]] = {}
    for target, outcome in zip(targets, outcomes, strict=True):
        if isinstance(target, Future):
            if failed:
                target.set_exception(outcome)
            else:
                target.set_result(outcome)
        else:
            by_loop.setdefault(target[0], []).append((target[1], outcome))
    for loop, pairs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting any more
            loop.call_soon_threadsafe(_resolve, pairs, failed)


def _resolve(pairs: list[tuple[asyncio.Future[Result], Any]], failed: bool) -> None:
    for future, outcome in pairs:
        if future.done():  # the request was cancelled (client gone); the row stands
            continue
        if failed:
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
