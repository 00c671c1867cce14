"""Persistence: SQLAlchemy Core tables, repositories implementing the service ports, the unit
of work, outbox/inbox queues and Alembic migrations. One schema for SQLite and PostgreSQL."""
