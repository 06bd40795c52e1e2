"""Databases for tests, benchmarks and load runs: scratch PostgreSQL databases of their own,
emptying the shared one between tests, and counting the statements a test runs.

PostgreSQL is the server on 127.0.0.1:5432 (NUMBRA_TEST_PG_URL to change it). If it
cannot be reached, its tests fail under CI=true and skip, saying why, on a developer's
machine.
"""

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from migrations import upgrade
from models import Base, Organization
from models.database import Database
from schema.fast_execution import PLAIN

PG_ADMIN_URL = os.environ.get(
    "NUMBRA_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# Every database test runs on both. PostgreSQL's half is slow (a server round trip for
# each statement, every table emptied after each test), so the fast loop runs SQLite's.
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)]


def service_unavailable(what: str, why: object) -> None:
    message = f"{what} is not reachable ({why})"
    if IN_CI:
        pytest.fail(message + "; CI needs it", pytrace=False)
    pytest.skip(message + "; start it to run these tests")


def pg_database(prefix: str) -> AbstractContextManager[str]:
    """A new, migrated PostgreSQL database, dropped after; fails (CI) or skips without one."""
    try:
        asyncio.run(ping(PG_ADMIN_URL))
    except (OSError, sa.exc.SQLAlchemyError) as exc:
        service_unavailable("PostgreSQL", exc)
    return scratch_database(PG_ADMIN_URL, prefix)


async def ping(url: str) -> None:
    """Connect and run one statement: raises if the database cannot be reached."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
    finally:
        await engine.dispose()


async def _pg_admin(server_url: str, statement: str) -> None:
    engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(statement)
    finally:
        await engine.dispose()


@contextmanager
def scratch_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new, migrated PostgreSQL database on the server `server_url` names, dropped after.

    It must not be called from a running event loop.
    """
    url = sa.make_url(server_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError(f"a scratch database needs PostgreSQL, not {url.get_backend_name()}")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(server_url, f'CREATE DATABASE "{name}"'))
    try:
        fresh = url.set(database=name).render_as_string(hide_password=False)
        upgrade(fresh)
        yield fresh
    finally:
        asyncio.run(_pg_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def empty(db: Database) -> None:
    """Delete every row of every table, on either database: the next world starts bare."""
    async with db.write() as session:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name == Organization.__tablename__:
                # Leaves first: a parent may not go before its children.
                await session.execute(sa.delete(Organization).where(Organization.depth > 0))
            await session.execute(sa.delete(table))


async def empty_postgresql(url: str) -> None:
    """Empty every table of the shared PostgreSQL test database, for the next test."""
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        await engine.dispose()


class StatementCounter:
    """Counts the SQL statements a database runs, and keeps their text (`sql`), since the
    last reset."""

    def __init__(self, db: Database) -> None:
        self._engines = [engine.sync_engine for engine in db.engines]
        self.count = 0
        self.sql: list[str] = []
        for engine in self._engines:
            sa.event.listen(engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, _connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The differential test's second run of a query (NUMBRA_DIFFERENTIAL=1) is not
        # the request's own work.
        if not PLAIN.get():
            self.count += 1
            self.sql.append(statement)

    def reset(self) -> None:
        self.count = 0
        self.sql = []

    def close(self) -> None:
        for engine in self._engines:
            sa.event.remove(engine, "before_cursor_execute", self._on_execute)
