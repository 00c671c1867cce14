"""Alembic environment: runs on the connection handed over by ``backorder.store.migrate``."""

from __future__ import annotations

from alembic import context

from backorder.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only via `alembic` CLI without our wrapper
    raise RuntimeError("run migrations with `backorder db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
