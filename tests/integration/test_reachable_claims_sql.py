"""The truncated queue read of tests/unit/test_reachable_claims.py against the real SQL store,
on SQLite and PostgreSQL: the same grants, rows and events as reading every waiting line."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import Engine
from tests.db_reset import empty_core_tables
from tests.unit.test_reachable_claims import World, check_same_grants, check_same_run, store, worlds

from backorder.services.ports import SystemClock, UnitOfWork
from backorder.store.engine import build_engine
from backorder.store.migrate import upgrade
from backorder.store.unit_of_work import SqlUnitOfWork


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    built = build_engine(database_url)
    upgrade(built)
    try:
        yield built
    finally:
        built.dispose()


def _stored(engine: Engine, world: World) -> Callable[[], UnitOfWork]:
    empty_core_tables(engine)
    store(SqlUnitOfWork(engine, SystemClock()), world)
    return lambda: SqlUnitOfWork(engine, SystemClock())


SQL_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SQL_SETTINGS
@given(world=worlds())
def test_the_truncated_read_grants_exactly_what_reading_every_waiting_line_grants(engine: Engine, world: World) -> None:
    check_same_grants(_stored(engine, world), world)


@SQL_SETTINGS
@given(world=worlds())
def test_allocating_from_the_truncated_read_changes_the_same_rows_and_records_the_same_events(
    engine: Engine, world: World
) -> None:
    check_same_run(_stored(engine, world), world)
