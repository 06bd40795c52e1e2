"""Getting a database ready (migrations, then the root organization and its first token), and
making sure there is one before a command uses it."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

from cli.failures import Failure, first_line
from domain import organizations, tokens
from domain.clock import SystemClock
from migrations import alembic_config, upgrade_async
from models import Role
from models.database import Database
from settings import Settings

FIRST_TOKEN_NAME = "bootstrap admin"
HOW_TO_FIX = "create it with `numbra migrate`, or point NUMBRA_DATABASE_URL at yours"


async def prepare(settings: Settings) -> str | None:
    """Migrate and make sure the root exists; return an ADMIN token if the root is new."""
    url = sa.make_url(settings.database_url)
    path = _sqlite_path(url)
    if path is not None and not path.parent.is_dir():
        raise Failure(
            f"Cannot create the database at {_shown(url)}: there is no folder {path.parent}; "
            "create it, or point NUMBRA_DATABASE_URL elsewhere."
        )
    with _reaching(settings.database_url):
        await upgrade_async(settings.database_url)
    db = Database(settings.database_url, pool_size=1)
    clock = SystemClock()
    try:
        # A migration may have made tables or indexes anew: plans need their statistics.
        await db.refresh_statistics()
        async with db.write() as session:
            root, created = await organizations.ensure_root(session, settings.provider_name, clock)
            if not created:
                return None
            return await tokens.issue(session, root, FIRST_TOKEN_NAME, Role.ADMIN, clock)
    finally:
        await db.dispose()


async def require_migrated(settings: Settings) -> None:
    """Fail, in one line, unless NUMBRA_DATABASE_URL names a database migrated to this version.

    A SQLite file that is not there stays so: connecting would create an empty one.
    """
    url = sa.make_url(settings.database_url)
    shown = _shown(url)
    path = _sqlite_path(url)
    if path is not None and not path.is_file():
        raise Failure(f"No Numbra database at {shown} (no file {path}): {HOW_TO_FIX}.")
    with _reaching(settings.database_url):
        current = await _current_revision(url)
    if current is None:
        raise Failure(f"No Numbra database at {shown} (it has no Numbra tables): {HOW_TO_FIX}.")
    head = ScriptDirectory.from_config(alembic_config(settings.database_url)).get_current_head()
    if current != head:
        raise Failure(
            f"The database at {shown} is at migration {current}; this Numbra needs {head}: "
            "run `numbra migrate`."
        )


async def root_exists(settings: Settings) -> bool:
    db = Database(settings.database_url, pool_size=1)
    try:
        async with db.read() as session:
            return await organizations.get_root(session) is not None
    finally:
        await db.dispose()


def _sqlite_path(url: sa.URL) -> Path | None:
    """The file of a SQLite database, None for another database or one in memory."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).resolve()


def _shown(url: sa.URL) -> str:
    return url.render_as_string(hide_password=True)


async def _current_revision(url: sa.URL) -> str | None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_read_revision)
    finally:
        await engine.dispose()


def _read_revision(connection: sa.Connection) -> str | None:
    """Alembic's record of the migration applied last; None if it never ran here."""
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    revision: str | None = connection.execute(
        sa.text("SELECT version_num FROM alembic_version")
    ).scalar()
    return revision


@contextmanager
def _reaching(database_url: str) -> Iterator[None]:
    """A database that cannot be reached or used, said in one line that names it."""
    try:
        yield
    except (OSError, sa.exc.DBAPIError) as error:
        shown = _shown(sa.make_url(database_url))
        cause = error.orig if isinstance(error, sa.exc.DBAPIError) and error.orig else error
        reason = first_line(cause)
        raise Failure(f"Cannot use the database at {shown}: {reason}", exit_code=1) from error
