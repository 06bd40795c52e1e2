"""What the `numbra` commands share: the error console, settings-driven set-up, and
naming an organization on the command line."""

import asyncio
from uuid import UUID

from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession

from cli import database
from domain import ids, organizations
from models import Organization
from settings import get_settings
from web.logging import configure_logging

err = Console(stderr=True)

ORG_METAVAR = "ROOT|UUID|ID"
ORG_HELP = "ROOT, or an organization's UUID or global id."


def configure() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)


def require_database() -> None:
    asyncio.run(database.require_migrated(get_settings()))


async def find_organization(session: AsyncSession, ref: str) -> Organization | None:
    """The organization `ref` names: ROOT, its UUID or its global id."""
    if ref.upper() == "ROOT":
        return await organizations.get_root(session)
    key = ids.decode_uuid(ref, organizations.TYPE_NAME) or _parse_uuid(ref)
    return await organizations.find_by_uuid(session, key) if key else None


def _parse_uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None
