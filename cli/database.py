"""Getting a database ready: migrations, then the root organization and its first token."""

from domain import organizations, tokens
from domain.clock import SystemClock
from migrations import upgrade_async
from models import Role
from models.database import Database
from settings import Settings

FIRST_TOKEN_NAME = "bootstrap admin"


async def prepare(settings: Settings) -> str | None:
    """Migrate and make sure the root exists; return an ADMIN token if the root is new."""
    await upgrade_async(settings.database_url)
    db = Database(settings.database_url, pool_size=1)
    clock = SystemClock()
    try:
        async with db.write() as session:
            root, created = await organizations.ensure_root(session, settings.provider_name, clock)
            if not created:
                return None
            return await tokens.issue(session, root, FIRST_TOKEN_NAME, Role.ADMIN, clock)
    finally:
        await db.dispose()


async def root_exists(settings: Settings) -> bool:
    db = Database(settings.database_url, pool_size=1)
    try:
        async with db.read() as session:
            return await organizations.get_root(session) is not None
    finally:
        await db.dispose()
