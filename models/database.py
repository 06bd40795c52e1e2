"""Engines and sessions for SQLite (aiosqlite) and PostgreSQL (asyncpg).

Reads and writes get separate session factories. On SQLite reads go through an
inline connection (models/sqlite_inline.py) and a write transaction
starts with BEGIN IMMEDIATE, so concurrent writers (several processes included)
queue on the database lock up front instead of failing half-way on an upgrade.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from models.sqlite_inline import inline_creator

# What a plain SELECT runs on: a session, or a connection where the ORM has no part.
Reads = AsyncSession | AsyncConnection

_WRITE_OPTION = "numbra_write"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Rows ANALYZE reads per index on SQLite (the value PRAGMA optimize uses is 400).
_SQLITE_ANALYSIS_LIMIT = 1_000
# Imports of at least this many numbers refresh the planner's statistics.
BULK_ROWS = 1_000
# SQLITE_FULL; PostgreSQL's disk_full condition.
_SQLITE_FULL = 13
_PG_DISK_FULL = "53100"
# SQLSTATE classes of a PostgreSQL that is not there: connection exceptions, and
# operator intervention (shutting down, starting up).
_PG_GONE = ("08", "57P")


class Database:
    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = sa.make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            # Every write transaction ends in an explicit COMMIT or ROLLBACK, and reads
            # run without one (below), so a connection comes back clean: skip the reset,
            # a thread round trip per checkout with aiosqlite.
            kwargs["pool_reset_on_return"] = None
        else:
            # No pre-ping: it costs a round trip per checkout (~0.7 ms a request, measured).
            # A connection that a database restart broke fails its one request instead,
            # and that disconnect invalidates the whole pool, so the next get new ones.
            kwargs |= {"pool_size": pool_size, "max_overflow": pool_size}
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        self.read_engine = self.engine
        if self.is_sqlite:
            _configure_sqlite(self.engine)
            if self.url.database and self.url.database != ":memory:":
                self.read_engine = create_async_engine(
                    self.url, async_creator=inline_creator(self.url.database), **kwargs
                )
                _configure_sqlite(self.read_engine)
        self._read = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self._read_statements = self._read
        self._read_connections = self.read_engine
        if not self.is_sqlite:
            autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            self._read_statements = async_sessionmaker(autocommit, expire_on_commit=False)
            self._read_connections = autocommit
        self._write = async_sessionmaker(
            self.engine.execution_options(**{_WRITE_OPTION: True}), expire_on_commit=False
        )

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A short session for reads; nothing it does is committed."""
        async with self._read() as session:
            yield session

    @asynccontextmanager
    async def read_statements(self) -> AsyncIterator[AsyncSession]:
        """A session for plain SELECTs, each statement on its own: no BEGIN and ROLLBACK
        round trips around them (PostgreSQL's autocommit; SQLite reads skip them anyway).

        Under READ COMMITTED each statement of a transaction reads a snapshot of its own
        already, so a few SELECTs see what they would in one. Not for server-side
        cursors (streaming) or anything that writes: those take read() or write().

        The session is closed in place. SQLAlchemy's own `async with` closes it in a task
        of its own (so a cancellation cannot abandon a ROLLBACK half-way): a trip round the
        event loop per session, during which other requests take connections of their own,
        until the pool overflows and opens (and closes) one per request; 8 concurrent
        searches on SQLite cost 60% more CPU a request for it. These sessions never hold a
        transaction, so their close is a check-in with no I/O to abandon.
        """
        session = self._read_statements()
        try:
            yield session
        finally:
            await session.close()

    @asynccontextmanager
    async def read_connection(self) -> AsyncIterator[AsyncConnection]:
        """A connection for a plain SELECT, as read_statements() but without a session
        (a third less Python for a statement the ORM has no part in: the token lookup
        every request makes). Closed in place, for the same reason."""
        connection = self._read_connections.connect()
        await connection.start()
        try:
            yield connection
        finally:
            await connection.close()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        async with self._write() as session, session.begin():
            yield session

    async def refresh_statistics(self) -> None:
        """Bring the planner's statistics up to date, as after a bulk load or a migration.

        SQLite: ANALYZE over a sample of each index (analysis_limit, as PRAGMA optimize
        does: milliseconds at a million rows), then PRAGMA optimize. PostgreSQL: ANALYZE,
        which samples a fixed number of rows whatever the table's size.
        """
        async with self.engine.connect() as connection:
            if self.is_sqlite:
                await connection.exec_driver_sql(f"PRAGMA analysis_limit={_SQLITE_ANALYSIS_LIMIT}")
                await connection.exec_driver_sql("ANALYZE")
                await connection.exec_driver_sql("PRAGMA optimize")
            else:
                await connection.exec_driver_sql("ANALYZE")
            await connection.commit()

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        if self.read_engine is self.engine:
            return (self.engine,)
        return (self.engine, self.read_engine)

    async def dispose(self) -> None:
        for engine in self.engines:
            await engine.dispose()


def is_storage_full(error: BaseException) -> bool:
    """Whether the database refused a write because its disk is full."""
    if not isinstance(error, sa.exc.DBAPIError):
        return False
    cause = error.orig
    return (
        getattr(cause, "sqlite_errorcode", None) == _SQLITE_FULL
        or getattr(cause, "sqlstate", None) == _PG_DISK_FULL
    )


def is_unavailable(error: BaseException) -> bool:
    """Whether the database could not be reached or went away (a restart, a crash)."""
    if isinstance(error, ConnectionError):
        # Refused or reset before the driver had a connection to wrap the error in.
        return True
    if not isinstance(error, sa.exc.DBAPIError):
        return False
    return error.connection_invalidated or str(getattr(error.orig, "sqlstate", "")).startswith(
        _PG_GONE
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @sa.event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @sa.event.listens_for(sync_engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # Writes take the database lock up front. Reads start no transaction: in WAL
        # mode each statement reads a consistent snapshot by itself.
        if connection.get_execution_options().get(_WRITE_OPTION, False):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
