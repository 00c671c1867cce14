"""The ingress's group-commit writer, with a fake inbox: what arrives within one event-loop
iteration is committed together, every sender gets the answer for its own row, a failed commit
fails every sender of that batch (and only them), and closing the writer stops its thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from backorder.channels.ingest import InboxWriter

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class FakeInbox:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.fail_next = False
        self.closed = False
        self.keys: dict[str, int] = {}

    def record_many(self, items: Sequence[tuple[Any, ...]]) -> list[tuple[int | None, bool]]:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("disk full")
        self.batches.append([item[2] for item in items])
        out: list[tuple[int | None, bool]] = []
        for item in items:
            created = item[2] not in self.keys
            row = self.keys.setdefault(item[2], len(self.keys) + 1)
            out.append((row, created))
        return out

    def close(self) -> None:
        self.closed = True


def item(key: str) -> tuple[Any, ...]:
    return ("shopify", "web", key, "orders/create", {}, b"{}", NOW)


def test_what_arrives_in_one_loop_iteration_is_one_commit_with_an_answer_each() -> None:
    inbox = FakeInbox()
    writer = InboxWriter(inbox)  # type: ignore[arg-type]

    async def main() -> list[tuple[int | None, bool]]:
        return list(await asyncio.gather(*(writer.record(item(f"k{n}")) for n in range(10))))

    try:
        answers = asyncio.run(main())
    finally:
        writer.close()
    assert inbox.batches == [[f"k{n}" for n in range(10)]]
    assert answers == [(n + 1, True) for n in range(10)]


def test_a_failed_commit_fails_only_the_senders_of_that_batch() -> None:
    inbox = FakeInbox()
    writer = InboxWriter(inbox)  # type: ignore[arg-type]

    async def main() -> tuple[list[Any], tuple[int | None, bool]]:
        inbox.fail_next = True
        failed = await asyncio.gather(*(writer.record(item(f"a{n}")) for n in range(3)), return_exceptions=True)
        after = await writer.record(item("b"))
        return list(failed), after

    try:
        failed, after = asyncio.run(main())
    finally:
        writer.close()
    assert [type(x) for x in failed] == [RuntimeError] * 3
    assert after == (1, True)
    assert inbox.batches == [["b"]]


def test_a_duplicate_key_is_answered_as_such() -> None:
    inbox = FakeInbox()
    writer = InboxWriter(inbox)  # type: ignore[arg-type]
    try:
        first = writer.submit(item("same")).result(timeout=10)
        second = writer.submit(item("same")).result(timeout=10)
    finally:
        writer.close()
    assert (first, second) == ((1, True), (1, False))


def test_closing_the_writer_stops_its_thread_and_releases_the_inbox() -> None:
    inbox = FakeInbox()
    writer = InboxWriter(inbox)  # type: ignore[arg-type]
    writer.submit(item("x")).result(timeout=10)
    thread = writer._thread
    assert isinstance(thread, threading.Thread) and thread.is_alive()
    writer.close()
    assert not thread.is_alive()
    assert inbox.closed


def test_requests_from_several_event_loops_each_get_their_answer() -> None:
    loops = 2
    inbox = FakeInbox()
    writer = InboxWriter(inbox)  # type: ignore[arg-type]
    answers: dict[int, list[tuple[int | None, bool]]] = {}

    def run(k: int) -> None:
        async def main() -> list[tuple[int | None, bool]]:
            return list(await asyncio.gather(*(writer.record(item(f"l{k}-{n}")) for n in range(5))))

        answers[k] = asyncio.run(main())

    threads = [threading.Thread(target=run, args=(k,)) for k in range(loops)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    writer.close()
    for k in range(loops):
        assert [inbox.keys[f"l{k}-{n}"] for n in range(5)] == [row for row, _ in answers[k]]
        assert all(created for _, created in answers[k])
