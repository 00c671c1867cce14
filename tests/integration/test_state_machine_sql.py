"""The same Hypothesis state machine as tests/unit/test_state_machine.py — orders,
cancellations, receipts, adjustments, shipments and duplicate deliveries, with every invariant
checked after each step — run against the real SQL store on SQLite (a file, WAL)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import settings
from sqlalchemy import func, select
from tests.db_reset import empty_core_tables
from tests.unit.test_state_machine import build_machine

from backorder.services.ports import SystemClock
from backorder.store import tables as t
from backorder.store.engine import build_engine
from backorder.store.migrate import upgrade
from backorder.store.unit_of_work import SqlUnitOfWork

_folder = Path(tempfile.mkdtemp(prefix="backorder-sm-"))
_engine = None


def _store() -> Any:
    global _engine
    if _engine is None:  # built on first use, not at import
        _engine = build_engine(f"sqlite:///{_folder / 'sm.db'}")
        upgrade(_engine)
    return _engine


def _reset() -> None:
    empty_core_tables(_store())


def _outbox() -> Any:
    with _store().connect() as conn:
        return conn.execute(select(func.count()).select_from(t.outbox)).scalar_one()


TestBackorderStateMachineOnSqlite = build_machine(
    lambda: SqlUnitOfWork(_store(), SystemClock()), _reset, extra_snapshot=_outbox
).TestCase
TestBackorderStateMachineOnSqlite.settings = settings(max_examples=80, stateful_step_count=25, deadline=None)
