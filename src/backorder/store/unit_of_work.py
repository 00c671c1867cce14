"""The SQL unit of work: one connection, one transaction, the repositories bound to it.

Store errors are translated at this edge: lock timeouts, deadlocks and serialisation
failures become ``TransientConflict`` (the bus retries the whole command)."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from backorder.services.messagebus import TransientConflict
from backorder.services.ports import Clock, UnitOfWork
from backorder.store.bulk import SqlBulkAllocation
from backorder.store.repositories import SqlCatalog, SqlOrders, SqlOutbox, SqlPurchasing, SqlStock
from backorder.store.statements import PG_ADD_OUTBOX

_TRANSIENT_PG_CODES = {"40001", "40P01", "55P03"}


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError) and "database is locked" in str(exc):
        return True
    if isinstance(exc, DBAPIError):
        code = getattr(exc.orig, "sqlstate", None)
        return code in _TRANSIENT_PG_CODES
    # a driver error from a statement sent on the driver connection itself (a pipeline, COPY)
    return getattr(exc, "sqlstate", None) in _TRANSIENT_PG_CODES


class SqlUnitOfWork(UnitOfWork):
    def __init__(self, engine: Engine, clock: Clock) -> None:
        super().__init__()
        self._engine = engine
        self._clock = clock
        self._conn: Connection | None = None

    def __enter__(self) -> Self:
        super().__enter__()
        self._conn = self._engine.connect()
        self._conn.begin()
        conn = self._conn
        self.catalog = SqlCatalog(conn)
        self.stock = SqlStock(conn, self.catalog)
        self.orders = SqlOrders(conn, self._clock.now)
        self.purchasing = SqlPurchasing(conn)
        self.outbox = SqlOutbox(conn, self._clock.now, defer=conn.dialect.name == "postgresql")
        self.bulk = SqlBulkAllocation(conn, self.orders)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.rollback()
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        if exc is not None and is_transient(exc):
            raise TransientConflict(str(exc).splitlines()[0]) from exc

    @property
    def connection(self) -> Connection:
        assert self._conn is not None, "unit of work not entered"
        return self._conn

    def commit(self) -> None:
        """Commit; on PostgreSQL the outbox rows the bus added last (kept back by ``SqlOutbox``)
        go in the same round trip as the COMMIT (a pipeline: the INSERT, then COMMIT, then one
        sync; an error in either fails the commit and nothing is kept)."""
        pending = self.outbox.take_pending() if isinstance(self.outbox, SqlOutbox) else None
        try:
            if pending is None:
                self.connection.commit()
                return
            raw = self.connection.connection.driver_connection
            assert raw is not None
            with raw.pipeline():
                raw.execute(PG_ADD_OUTBOX, pending)
                self.connection.commit()
        except DBAPIError as exc:
            if is_transient(exc):
                raise TransientConflict(str(exc).splitlines()[0]) from exc
            raise
        except Exception as exc:  # a driver error from the pipeline itself
            if is_transient(exc):
                raise TransientConflict(str(exc).splitlines()[0]) from exc
            raise

    def rollback(self) -> None:
        if self._conn is not None and self._conn.in_transaction():
            self._conn.rollback()


def uow_factory(engine: Engine, clock: Clock) -> Callable[[], SqlUnitOfWork]:
    return lambda: SqlUnitOfWork(engine, clock)
