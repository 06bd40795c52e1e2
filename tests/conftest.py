"""Test harness: every database test runs on SQLite and on PostgreSQL, over real connections.

PostgreSQL gets a fresh database per run on 127.0.0.1:5432 (NUMBRA_TEST_PG_URL to
change it). If it cannot be reached, its tests fail under CI=true and skip, saying
why, on a developer's machine.
"""

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from domain import organizations, tokens
from domain.clock import ManualClock
from migrations import scratch_database, upgrade
from models import Organization, Role
from models.database import Database
from settings import Settings
from tests.support import Api, StatementCounter, empty_postgresql

PG_ADMIN_URL = os.environ.get(
    "NUMBRA_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
BACKENDS = ["sqlite", "postgresql"]


def service_unavailable(what: str, why: object) -> None:
    message = f"{what} is not reachable ({why})"
    if IN_CI:
        pytest.fail(message + "; CI needs it", pytrace=False)
    pytest.skip(message + "; start it to run these tests")


def pg_database(prefix: str) -> AbstractContextManager[str]:
    """A new, migrated PostgreSQL database, dropped after; fails (CI) or skips without one."""
    try:
        asyncio.run(_ping(PG_ADMIN_URL))
    except (OSError, sa.exc.SQLAlchemyError) as exc:
        service_unavailable("PostgreSQL", exc)
    return scratch_database(PG_ADMIN_URL, prefix)


async def _ping(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with pg_database("numbra_test") as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "numbra.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
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
