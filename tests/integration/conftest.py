"""Integration fixtures: every test that asks for ``database_url`` (or ``app``) runs on SQLite and
on PostgreSQL.

SQLite is a real file in ``tmp_path`` (WAL, as production runs it). PostgreSQL is
``BACKORDER_TEST_POSTGRES_URL`` when set, else the local server on 127.0.0.1:5432 when one
answers; without either the postgres parameter is skipped, unless ``BACKORDER_REQUIRE_POSTGRES=1``
(CI) makes that a failure. Each PostgreSQL test gets a schema of its own, selected with libpq's
``options=-csearch_path=<schema>`` and dropped afterwards.

Fixtures other test modules use: ``database_url``, ``app`` (the real composition root on that
database, sandbox connectors everywhere), ``clock`` (a :class:`SettableClock` the app reads),
``db`` (:class:`Db` read helpers) and ``postgres_schema_url`` (PostgreSQL only).
"""

from __future__ import annotations

import os
import random
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, Table, create_engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from backorder.bootstrap import Application, bootstrap, read_config
from backorder.services.ports import Clock
from backorder.store import tables as t
from backorder.store.engine import READ_ONLY, normalise_url

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
"""A Monday morning: the clock every integration test starts at."""


class SettableClock(Clock):
    """A clock the test moves by hand; safe to read from many threads."""

    def __init__(self, at: datetime = START) -> None:
        self._lock = threading.Lock()
        self._now = at

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("the clock keeps timezone-aware UTC time")
        with self._lock:
            self._now = at.astimezone(UTC)

    def advance(self, **delta: float) -> datetime:
        with self._lock:
            self._now += timedelta(**delta)
            return self._now


# --- which PostgreSQL --------------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresTarget:
    url: str | None
    reason: str
    explicit: bool


def _server_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_target() -> PostgresTarget:
    configured = os.environ.get("BACKORDER_TEST_POSTGRES_URL", "").strip()
    if configured:
        return PostgresTarget(normalise_url(configured), "from BACKORDER_TEST_POSTGRES_URL", explicit=True)
    if _server_answers("127.0.0.1", 5432):
        return PostgresTarget(DEFAULT_POSTGRES_URL, "a server answers on 127.0.0.1:5432", explicit=False)
    return PostgresTarget(
        None, "no PostgreSQL: set BACKORDER_TEST_POSTGRES_URL or run a server on 127.0.0.1:5432", explicit=False
    )


def _postgres_required() -> bool:
    return os.environ.get("BACKORDER_REQUIRE_POSTGRES", "").strip() == "1"


def _unavailable(reason: str) -> None:
    if _postgres_required():
        pytest.fail(f"BACKORDER_REQUIRE_POSTGRES=1 but PostgreSQL cannot be used: {reason}", pytrace=False)
    pytest.skip(reason)


def _with_schema(base: str, schema: str) -> str:
    url = make_url(base)
    existing = url.query.get("options")
    if isinstance(existing, tuple):
        existing = " ".join(existing)
    # synchronous_commit=off: commits return before the WAL reaches disk. Locking and
    # visibility are unchanged; only crash durability (irrelevant to a throwaway schema) is.
    ours = f"-csearch_path={schema} -csynchronous_commit=off"
    options = f"{existing} {ours}" if existing else ours
    return url.update_query_dict({"options": options}).render_as_string(hide_password=False)


@pytest.fixture
def postgres_schema_url(postgres_target: PostgresTarget) -> Iterator[str]:
    """A fresh, empty schema on the PostgreSQL server; dropped with everything in it afterwards."""
    if postgres_target.url is None:
        _unavailable(postgres_target.reason)
    assert postgres_target.url is not None
    admin = create_engine(postgres_target.url, poolclass=NullPool)
    schema = f"bo_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except Exception as exc:
        admin.dispose()
        if postgres_target.explicit or _postgres_required():
            pytest.fail(f"cannot create a schema on {postgres_target.reason}: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 cannot be used: {str(exc).splitlines()[0]}")
    try:
        yield _with_schema(postgres_target.url, schema)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql("SET LOCAL lock_timeout = '20s'")
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'backorder.db'}"
    return str(request.getfixturevalue("postgres_schema_url"))


# --- the application ------------------------------------------------------------------------


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def app(database_url: str, clock: SettableClock) -> Iterator[Application]:
    # environ={}: no BACKORDER_CONFIG from the developer's shell; defaults mean sandbox everywhere.
    application = bootstrap(
        read_config(None, environ={}),
        database_url=database_url,
        sandbox_folder=False,
        clock=clock,
        rng=random.Random(7),
    )
    try:
        yield application
    finally:
        application.close()


class Db:
    """Small read helpers over the store's tables for assertions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _connect(self) -> Connection:
        return self.engine.connect().execution_options(**READ_ONLY)  # SQLite: no write lock for reads

    def rows(self, table: Table, *where: Any, order_by: Any = None) -> list[dict[str, Any]]:
        q = select(table).where(*where)
        if order_by is not None:
            q = q.order_by(*(order_by if isinstance(order_by, (list, tuple)) else [order_by]))
        with self._connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def count(self, table: Table, *where: Any) -> int:
        with self._connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())

    def line(self, order_id: str, line_no: int = 1) -> dict[str, Any]:
        c = t.order_lines.c
        (row,) = self.rows(t.order_lines, c.order_id == order_id, c.line_no == line_no)
        return row

    def level(self, sku: str, location: str) -> dict[str, Any]:
        s = t.stock_levels.c
        (row,) = self.rows(t.stock_levels, s.sku == sku, s.location == location)
        return row

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, in a stable order: equal snapshots mean nothing changed."""
        result: dict[str, list[tuple[Any, ...]]] = {}
        with self._connect() as conn:
            for table in t.metadata.sorted_tables:
                rows = conn.execute(select(table)).all()
                result[table.name] = sorted((tuple(r) for r in rows), key=repr)
        return result

    def counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.snapshot().items()}


@pytest.fixture
def db(app: Application) -> Db:
    return Db(app.engine)
