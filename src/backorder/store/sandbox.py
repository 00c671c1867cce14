"""What the sandbox connector recorded: writes (through the sink wired in bootstrap) and reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select

from backorder.store import tables as t
from backorder.store.engine import READ_ONLY


def record_sandbox_message(
    engine: Engine,
    at: datetime,
    *,
    kind: str,
    template: str,
    recipient: str,
    subject: str,
    body: str,
    html: str | None,
    outbox_id: int | None,
) -> int:
    with engine.begin() as conn:
        result = conn.execute(
            insert(t.sandbox_messages).values(
                outbox_id=outbox_id,
                kind=kind,
                template=template,
                recipient=recipient,
                subject=subject,
                body=body,
                html=html,
                created_at=at,
            )
        )
        return int(result.inserted_primary_key[0])


def sandbox_messages(engine: Engine, kind: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    s = t.sandbox_messages.c
    q = select(t.sandbox_messages).order_by(s.id)
    if kind:
        q = q.where(s.kind == kind)
    if limit:
        q = q.limit(limit)
    with engine.connect().execution_options(**READ_ONLY) as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def sandbox_counts(engine: Engine) -> dict[tuple[str, str], int]:
    s = t.sandbox_messages.c
    with engine.connect().execution_options(**READ_ONLY) as conn:
        return {
            (r[0], r[1]): int(r[2])
            for r in conn.execute(select(s.kind, s.template, func.count()).group_by(s.kind, s.template))
        }
