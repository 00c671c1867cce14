"""Engines for both dialects. SQLite is the embedded default (WAL, a busy timeout, and
``BEGIN IMMEDIATE`` for every writing transaction so writers queue instead of failing);
PostgreSQL (psycopg 3) is the engine for several processes."""

from __future__ import annotations

import re
import sqlite3
import time
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import NullPool

READ_ONLY = {"backorder_read_only": True}
"""Pass as ``conn.execution_options(**READ_ONLY)`` for transactions that only read."""


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` as psycopg 3 URLs."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


_PASSWORD_IN_URL = re.compile(r"([^\s/:@]+):[^\s@/]*@")
"""``user:secret@`` in anything that looks like a URL (parsable or not)."""


def mask_url(url: str) -> str:
    """``url`` with any password shown as ``***`` (``user:secret@`` → ``user:***@``)."""
    try:
        masked = make_url(url).render_as_string(hide_password=True)
    except Exception:  # not parsable: mask by pattern
        masked = url
    return _PASSWORD_IN_URL.sub(r"\1:***@", masked)


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be used right now (down, unreachable, a dropped
    connection, a busy pool or a locked SQLite file): worth a retry later, not a bug."""
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError)):
        return True
    if isinstance(exc, sa_exc.TimeoutError):  # the pool had no connection to give
        return True
    return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated


def driver_reason(exc: BaseException) -> str:
    """The driver's own one-line reason for ``exc`` (SQLAlchemy's text adds the statement and a
    link; psycopg adds hints on further lines)."""
    cause = getattr(exc, "orig", None) or exc
    for line in str(cause).splitlines():
        if line.strip():
            return line.strip()
    return type(cause).__name__


def build_engine(url: str, *, pool_size: int = 10) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size * 2, future=True)
    _ping_when_idle(engine)
    return engine


IDLE_PING_SECONDS = 10.0
"""A pooled PostgreSQL connection idle at least this long is pinged before use."""


def _ping_when_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling without a round trip per command: SQLAlchemy's
    ``pool_pre_ping`` pings on every checkout (one ``SELECT 1`` per command, ~0.1–0.3 ms of a
    5 ms receipt); a connection reused within ``IDLE_PING_SECONDS`` was just working, so only
    one that sat idle (a server restart, an idle timeout, a firewall) is pinged, and a dead one
    is replaced before the command starts."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["backorder_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("backorder_idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("pooled connection was closed while idle") from exc


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    memory = parsed.database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {"connect_args": {"timeout": 30, "check_same_thread": False}}
    if memory:
        from sqlalchemy.pool import StaticPool

        kwargs["poolclass"] = StaticPool
    else:
        kwargs["poolclass"] = NullPool if parsed.query.get("nullpool") else None
        if kwargs["poolclass"] is None:
            del kwargs["poolclass"]
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("backorder_read_only"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
