"""Tags in use: on numbers and on their reservations, counted over the viewer's pools."""

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.access import Viewer
from domain.errors import DomainError, ErrorCode
from domain.organizations import subtree_clause
from models import Number, Organization


@dataclass(frozen=True)
class TagCount:
    tag: str
    count: int


async def counts(
    session: AsyncSession, viewer: Viewer, prefix: str | None, first: int, max_first: int
) -> list[TagCount]:
    """Most used first (then by tag); a number carrying a tag twice counts once for it."""
    if first < 0 or first > max_first:
        raise DomainError.one(
            ErrorCode.VALIDATION, f"first must be between 0 and {max_first}", ["first"]
        )
    scoped: list[sa.ColumnElement[bool]] = []
    if not viewer.at_root:
        pools = sa.select(Organization.id).where(subtree_clause(viewer.org_path))
        scoped.append(Number.organization_id.in_(pools.scalar_subquery()))
    tagged = sa.union(
        *(
            sa.select(Number.id.label("number_id"), column.label("tag")).where(
                column.is_not(None), *scoped
            )
            for column in (Number.tag, Number.reservation_tag)
        )
    ).subquery()
    query = sa.select(tagged.c.tag, sa.func.count().label("uses")).group_by(tagged.c.tag)
    if prefix:
        # The same on both databases: LIKE ignores case on SQLite only.
        query = query.where(sa.func.substr(tagged.c.tag, 1, len(prefix)) == prefix)
    query = query.order_by(sa.desc("uses"), tagged.c.tag).limit(first)
    return [TagCount(tag=tag, count=uses) for tag, uses in await session.execute(query)]
