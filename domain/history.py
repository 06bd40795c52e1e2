"""A number's history: its events, newest first, a page per number in one query."""

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from models import NumberEvent


async def pages(
    session: AsyncSession, number_ids: Sequence[int], first: int, before_id: int | None
) -> dict[int, list[NumberEvent]]:
    """Up to first + 1 events per number, newest first, older than `before_id` if given."""
    rank = (
        sa.func.row_number()
        .over(partition_by=NumberEvent.number_id, order_by=NumberEvent.id.desc())
        .label("rank")
    )
    ranked = sa.select(NumberEvent, rank).where(NumberEvent.number_id.in_(number_ids))
    if before_id is not None:
        ranked = ranked.where(NumberEvent.id < before_id)
    subquery = ranked.subquery()
    event = aliased(NumberEvent, subquery)
    query = (
        sa.select(event)
        .where(subquery.c.rank <= first + 1)
        .order_by(subquery.c.number_id, subquery.c.id.desc())
    )
    found: dict[int, list[NumberEvent]] = defaultdict(list)
    for row in await session.scalars(query):
        found[row.number_id].append(row)
    return found


async def counts(session: AsyncSession, number_ids: Sequence[int]) -> dict[int, int]:
    query = (
        sa.select(NumberEvent.number_id, sa.func.count())
        .where(NumberEvent.number_id.in_(number_ids))
        .group_by(NumberEvent.number_id)
    )
    return {number_id: count for number_id, count in await session.execute(query)}
