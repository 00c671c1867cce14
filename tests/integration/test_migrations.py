"""Alembic migrations on SQLite and PostgreSQL: an empty database upgraded to head has exactly
the schema ``backorder.store.tables`` declares, and upgrading again changes nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect
from sqlalchemy.engine import make_url

from backorder.store.engine import build_engine
from backorder.store.migrate import alembic_config, current_revision, is_current, upgrade
from backorder.store.tables import metadata


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    built = build_engine(database_url)
    try:
        yield built
    finally:
        built.dispose()


def _unquoted(default: str | None) -> str | None:
    """SQLite reflects ``DEFAULT ''`` as ``('')`` and ``DEFAULT 0`` as ``'0'``; alembic's own
    SQLite comparison strips one layer only and reports empty strings as changed."""
    if default is None:
        return None
    text = default.strip()
    while True:
        stripped = re.sub(r"^\((.*)\)$", r"\1", text)
        stripped = re.sub(r"^'(.*)'$", r"\1", stripped)
        if stripped == text:
            return text
        text = stripped


def _compare_default(
    context: Any,
    inspected_column: Any,
    metadata_column: Any,
    inspected: str | None,
    metadata_default: Any,
    rendered_metadata: str | None,
) -> bool | None:
    if context.dialect.name != "sqlite":
        return None  # alembic's comparison is exact on PostgreSQL
    return _unquoted(inspected) != _unquoted(rendered_metadata)


def schema_differences(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": _compare_default}
        )
        return list(compare_metadata(context, metadata))


def schema_dump(engine: Engine) -> dict[str, Any]:
    inspector = inspect(engine)
    dump: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        dump[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], c.get("default")) for c in inspector.get_columns(table)
            ],
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(table)
            ),
            "pk": inspector.get_pk_constraint(table)["constrained_columns"],
            "fks": sorted(fk["name"] or "" for fk in inspector.get_foreign_keys(table)),
        }
    return dump


def test_an_empty_database_upgraded_to_head_matches_the_declared_tables(engine: Engine) -> None:
    assert inspect(engine).get_table_names() == []
    upgrade(engine)
    assert schema_differences(engine) == []
    assert set(inspect(engine).get_table_names()) == {*metadata.tables, "alembic_version"}
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert current_revision(engine) == head
    assert is_current(engine)


def test_upgrading_twice_changes_nothing(engine: Engine) -> None:
    upgrade(engine)
    before = schema_dump(engine)
    upgrade(engine)
    assert schema_dump(engine) == before
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM alembic_version").scalar_one() == 1


def test_on_postgresql_every_table_lands_in_the_tests_own_schema(postgres_schema_url: str) -> None:
    options = make_url(postgres_schema_url).query["options"]
    assert isinstance(options, str)
    (schema,) = [o.removeprefix("-csearch_path=") for o in options.split() if o.startswith("-csearch_path=")]
    assert schema.startswith("bo_test_")
    engine = build_engine(postgres_schema_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT current_schema()").scalar_one() == schema
            placed = set(
                conn.exec_driver_sql(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %(schema)s",
                    {"schema": schema},
                ).scalars()
            )
    finally:
        engine.dispose()
    assert placed == {*metadata.tables, "alembic_version"}


def test_sqlite_runs_on_a_real_file_in_wal_mode(tmp_path: Any) -> None:
    engine = build_engine(f"sqlite:///{tmp_path / 'backorder.db'}")
    try:
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 30000
    finally:
        engine.dispose()
    assert (tmp_path / "backorder.db").is_file()
