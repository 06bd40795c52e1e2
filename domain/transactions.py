"""One write transaction, with database constraint races reported as CONFLICT, and what a
refused request keeps (DomainError.keep) written after its rollback."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import DomainError, ErrorCode
from models.database import Database


@asynccontextmanager
async def write(db: Database) -> AsyncIterator[AsyncSession]:
    try:
        async with db.write() as session:
            yield session
    except IntegrityError as exc:
        # Validation found nothing wrong, so a concurrent request got there first.
        raise DomainError.one(
            ErrorCode.CONFLICT, "a concurrent change conflicts with this one; try again"
        ) from exc
    except DomainError as error:
        if error.keep is not None:
            async with db.write() as session:
                await error.keep(session)
        raise
