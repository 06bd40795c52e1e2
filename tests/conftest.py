"""Test harness: every database test runs on SQLite and on PostgreSQL, over real connections.

PostgreSQL gets a fresh database per run (tests/support/databases.py says where, and
what happens when it cannot be reached).
"""

import contextlib
import shutil
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain import organizations, tokens
from domain.clock import ManualClock
from migrations import upgrade
from models import Organization, Role
from models.database import Database
from settings import Settings
from tests.support import differential, shared_dialects
from tests.support.api import Api
from tests.support.databases import BACKENDS, StatementCounter, empty_postgresql, pg_database

shared_dialects.install()

if differential.enabled():
    # Every query the suite sends also runs the plain graphql-core way, compared.
    differential.install()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if differential.enabled():
        differential.report()


@pytest.fixture(autouse=True)
def _fast_path_equals_graphql_core() -> Iterator[None]:
    """With NUMBRA_DIFFERENTIAL=1: a test fails if any query it sent was answered
    differently by the fast path and by graphql-core (tests/support/differential.py)."""
    yield
    found = differential.take_mismatches()
    assert not found, "\n\n".join(str(mismatch) for mismatch in found)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with pg_database("numbra_test") as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "numbra.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    # In WAL mode already, as every connection puts it: a copy's first connection does
    # not convert it (~2 ms a test).
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
    return path


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "numbra.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=5)
    try:
        yield database
    finally:
        await database.dispose()
        if not database.is_sqlite:
            await empty_postgresql(database_url)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(_env_file=None, database_url=database_url)


@pytest.fixture
async def root(db: Database, clock: ManualClock) -> Organization:
    async with db.write() as session:
        org, _ = await organizations.ensure_root(session, "Provider", clock)
    return org


@pytest.fixture
async def root_token(db: Database, root: Organization, clock: ManualClock) -> str:
    async with db.write() as session:
        return await tokens.issue(session, root, "root admin", Role.ADMIN, clock)


@pytest.fixture
async def api(
    db: Database, settings: Settings, clock: ManualClock, root_token: str
) -> AsyncIterator[Api]:
    from web.app import create_app

    async with Api.open(create_app(settings, db=db, clock=clock), root_token, db, clock) as client:
        yield client


@pytest.fixture
def statements(db: Database) -> Iterator[StatementCounter]:
    counter = StatementCounter(db)
    try:
        yield counter
    finally:
        counter.close()
