"""A number's history: its events, newest first, a page per number in one query.

Each event records the pool the number was in once it happened. A viewer reads only
the events of pools in its subtree: a number a partner moves from one customer to
its sibling brings none of the first customer's remarks and token names along.
"""

from collections import defaultdict
from collections.abc import Sequence
from typing import TypeVarTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from models import NumberEvent, Organization

Row = TypeVarTuple("Row")


def _seen_from(query: sa.Select[*Row], within: str | None) -> sa.Select[*Row]:
    """Only events in pools under the path `within` (None: every event)."""
    if within is None:
        return query
    pool = sa.select(Organization.id).where(Organization.path.startswith(within))
    return query.where(NumberEvent.organization_id.in_(pool))


async def pages(
    session: AsyncSession,
    number_ids: Sequence[int],
    first: int,
    before_id: int | None,
    within: str | None,
) -> dict[int, list[NumberEvent]]:
    """Up to first + 1 events per number, newest first, older than `before_id` if given."""
    rank = (
        sa.func.row_number()
        .over(partition_by=NumberEvent.number_id, order_by=NumberEvent.id.desc())
        .label("rank")
    )
    ranked = _seen_from(
        sa.select(NumberEvent, rank).where(NumberEvent.number_id.in_(number_ids)), within
    )
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


async def counts(
    session: AsyncSession, number_ids: Sequence[int], within: str | None
) -> dict[int, int]:
    query = _seen_from(
        sa.select(NumberEvent.number_id, sa.func.count()).where(
            NumberEvent.number_id.in_(number_ids)
        ),
        within,
    ).group_by(NumberEvent.number_id)
    return {number_id: count for number_id, count in await session.execute(query)}
