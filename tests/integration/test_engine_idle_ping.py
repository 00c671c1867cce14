"""PostgreSQL pool: a connection that sat idle is pinged before use and replaced when the server
closed it; a connection reused at once is not pinged (no round trip per command)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from backorder.store import engine as engine_module
from backorder.store.engine import build_engine


def test_a_connection_reused_at_once_is_not_pinged(postgres_schema_url: str) -> None:
    engine = build_engine(postgres_schema_url, pool_size=1)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 41"))
        pings: list[Any] = []
        original = engine.dialect.do_ping
        engine.dialect.do_ping = lambda c: pings.append(c) or original(c)  # type: ignore[method-assign]
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 42")).scalar() == 42
        assert pings == []
    finally:
        engine.dispose()


def test_an_idle_connection_killed_by_the_server_is_replaced_before_the_command(
    postgres_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = build_engine(postgres_schema_url, pool_size=1)
    try:
        with engine.connect() as conn:
            victim = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        killer = build_engine(postgres_schema_url, pool_size=1)
        try:
            with killer.begin() as conn:
                assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim}).scalar() is True
        finally:
            killer.dispose()
        monkeypatch.setattr(engine_module, "IDLE_PING_SECONDS", 0.0)  # the pooled connection counts as idle
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 7")).scalar() == 7
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != victim
    finally:
        engine.dispose()
