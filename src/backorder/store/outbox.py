"""The outbox as a work queue. Rows are claimed with a lease (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, the database write lock on SQLite); a worker that dies leaves its rows to be
claimed again once the lease expires. Every attempt is a ``delivery_attempts`` row."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, insert, or_, select, update

from backorder.store import tables as t


@dataclass(frozen=True)
class ClaimedDelivery:
    id: int
    action: str
    target: str
    payload: dict[str, Any]
    attempt: int
    claim: str
    parent_id: int | None


@dataclass(frozen=True)
class AttemptOutcome:
    outcome: str  # sent | retry | dead | skipped | deferred
    detail: str
    status_code: int | None = None
    provider_ref: str | None = None
    next_attempt_at: datetime | None = None


class OutboxQueue:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim(self, now: datetime, limit: int, lease: timedelta, worker: str | None = None) -> list[ClaimedDelivery]:
        token = worker or uuid.uuid4().hex[:16]
        o = t.outbox.c
        due = and_(
            o.next_attempt_at <= now,
            or_(o.status == "pending", and_(o.status == "in_flight", o.lease_until < now)),
        )
        with self.engine.begin() as conn:
            q = select(o.id).where(due).order_by(o.next_attempt_at, o.id).limit(limit)
            if conn.dialect.name == "postgresql":
                q = q.with_for_update(skip_locked=True)
            ids = list(conn.execute(q).scalars())
            if not ids:
                return []
            conn.execute(
                update(t.outbox)
                .where(o.id.in_(ids))
                .values(
                    status="in_flight",
                    lease_until=now + lease,
                    claimed_by=token,
                    attempts=o.attempts + 1,
                    updated_at=now,
                )
            )
            rows = conn.execute(
                select(o.id, o.action, o.target, o.payload, o.attempts, o.parent_id).where(o.id.in_(ids)).order_by(o.id)
            ).all()
        return [ClaimedDelivery(r.id, r.action, r.target, r.payload, r.attempts, token, r.parent_id) for r in rows]

    def finish(
        self,
        delivery: ClaimedDelivery,
        outcome: AttemptOutcome,
        connector: str,
        started_at: datetime,
        finished_at: datetime,
        children: list[tuple[str, str, dict[str, Any]]] | None = None,
    ) -> bool:
        """Record the attempt and the row's new state, only if our claim still holds (a
        worker whose lease ran out must not overwrite the next one's result)."""
        o = t.outbox.c
        values: dict[str, Any] = {"updated_at": finished_at, "lease_until": None, "claimed_by": None}
        if outcome.outcome == "sent":
            values.update(status="sent", provider_ref=outcome.provider_ref, last_error=None)
        elif outcome.outcome == "skipped":
            # why nothing was sent (e.g. no SMS consent) stays on the row, for `outbox list`
            values.update(status="skipped", provider_ref=outcome.provider_ref, last_error=outcome.detail or None)
        elif outcome.outcome == "dead":
            values.update(status="dead", last_error=outcome.detail)
        elif outcome.outcome == "deferred":
            values.update(status="pending", next_attempt_at=outcome.next_attempt_at, attempts=o.attempts - 1)
        else:
            values.update(status="pending", next_attempt_at=outcome.next_attempt_at, last_error=outcome.detail)
        with self.engine.begin() as conn:
            done = conn.execute(
                update(t.outbox)
                .where(o.id == delivery.id, o.claimed_by == delivery.claim, o.status == "in_flight")
                .values(**values)
            )
            if done.rowcount != 1:
                return False
            if outcome.outcome != "deferred":
                conn.execute(
                    insert(t.delivery_attempts).values(
                        outbox_id=delivery.id,
                        attempt=delivery.attempt,
                        connector=connector,
                        started_at=started_at,
                        finished_at=finished_at,
                        outcome=outcome.outcome,
                        status_code=outcome.status_code,
                        detail=outcome.detail[:4000],
                    )
                )
            if children:
                conn.execute(
                    insert(t.outbox),
                    [
                        {
                            "action": action,
                            "target": target,
                            "payload": payload,
                            "status": "pending",
                            "attempts": 0,
                            "next_attempt_at": finished_at,
                            "created_at": finished_at,
                            "updated_at": finished_at,
                            "parent_id": delivery.id,
                        }
                        for action, target, payload in children
                    ],
                )
        return True

    def first_unsent_elsewhere(
        self, claimed: Sequence[ClaimedDelivery], actions: Sequence[str], now: datetime
    ) -> dict[str, int]:
        """For the orders of the claimed messages of ``actions``: the first message of that order
        (of ``actions``) still to go that is not in this claim, written before one of them: held by
        another worker, or due and not claimed. A message waiting for a later attempt (a retry's
        back-off, a debounced ETA notice) does not count. Order id → that message's id."""
        mine = [d for d in claimed if d.action in actions and d.payload.get("order_id")]
        if not mine:
            return {}
        o = t.outbox.c
        order_of = o.payload["order_id"].as_string()
        token = mine[0].claim
        q = (
            select(order_of, func.min(o.id))
            .where(
                o.action.in_(list(actions)),
                o.id < max(d.id for d in mine),
                o.id.not_in([d.id for d in claimed]),
                or_(
                    and_(o.status == "in_flight", o.claimed_by != token),
                    and_(o.status == "pending", o.next_attempt_at <= now),
                ),
                order_of.in_(sorted({str(d.payload["order_id"]) for d in mine})),
            )
            .group_by(order_of)
        )
        with self.engine.connect() as conn:
            return {str(r[0]): int(r[1]) for r in conn.execute(q)}

    def renew(self, ids: Sequence[int], claim: str, until: datetime) -> set[int]:
        """Extend the lease of the rows of ``ids`` that ``claim`` still holds; returns their ids
        (a row missing from the answer was finished, or claimed by another worker after its lease
        ran out, and must not be delivered by this one)."""
        if not ids:
            return set()
        o = t.outbox.c
        held = and_(o.id.in_(list(ids)), o.claimed_by == claim, o.status == "in_flight")
        with self.engine.begin() as conn:
            conn.execute(update(t.outbox).where(held).values(lease_until=until))
            return set(conn.execute(select(o.id).where(held)).scalars())

    def enqueue(self, action: str, target: str, payload: dict[str, Any], now: datetime) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                insert(t.outbox).values(
                    action=action,
                    target=target,
                    payload=payload,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
            return int(result.inserted_primary_key[0])

    def retry(self, ids: list[int], now: datetime, *, dead_only: bool) -> int:
        """Make rows due now again: ``dead_only`` replays dead letters (attempts restart)."""
        o = t.outbox.c
        statuses = ["dead"] if dead_only else ["pending", "dead"]
        with self.engine.begin() as conn:
            done = conn.execute(
                update(t.outbox)
                .where(o.id.in_(ids), o.status.in_(statuses))
                .values(
                    status="pending",
                    next_attempt_at=now,
                    attempts=0,
                    updated_at=now,
                    lease_until=None,
                    claimed_by=None,
                )
            )
            return int(done.rowcount)

    def counts(self) -> dict[str, int]:
        o = t.outbox.c
        with self.engine.connect() as conn:
            return {r[0]: int(r[1]) for r in conn.execute(select(o.status, func.count()).group_by(o.status))}

    def list(
        self, status: str | None = None, limit: int = 50, *, ids: Sequence[int] | None = None
    ) -> list[dict[str, Any]]:
        """Rows, newest first; ``ids``: only those rows (``limit`` still applies). ``last_error``
        holds the last failure, or for a skipped row why it was skipped."""
        o = t.outbox.c
        q = select(t.outbox).order_by(o.id.desc()).limit(limit)
        if status:
            q = q.where(o.status == status)
        if ids is not None:
            q = q.where(o.id.in_(sorted(set(ids))))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def attempts(self, outbox_id: int) -> list[dict[str, Any]]:
        a = t.delivery_attempts.c
        with self.engine.connect() as conn:
            return [
                dict(r._mapping)
                for r in conn.execute(select(t.delivery_attempts).where(a.outbox_id == outbox_id).order_by(a.id))
            ]
