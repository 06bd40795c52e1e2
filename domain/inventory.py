"""What organizations hold: per-series allocations and per-state counts, for many at once."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.search import per_organization
from models import NumberState
from models.numbers import NumberSeriesCount, NumberStateCount


@dataclass(frozen=True)
class AllocationRow:
    organization_id: int
    series_id: int
    allocated: int
    unused: int


async def allocations(
    session: AsyncSession, org_ids: Sequence[int]
) -> dict[int, list[AllocationRow]]:
    """Per organization, one row per series its own pool holds numbers of (not DELETED),
    summed from the counters the triggers keep."""
    counted = NumberSeriesCount
    allocated = sa.cast(sa.func.sum(counted.allocated), sa.BigInteger)
    unused = sa.cast(sa.func.sum(counted.unused), sa.BigInteger)
    query = (
        sa.select(counted.organization_id, counted.series_id, allocated, unused)
        .where(counted.organization_id.in_(org_ids))
        .group_by(counted.organization_id, counted.series_id)
        .having(allocated > 0)
        .order_by(counted.organization_id, counted.series_id)
    )
    found: dict[int, list[AllocationRow]] = defaultdict(list)
    for org_id, series_id, held, free in await session.execute(query):
        found[org_id].append(AllocationRow(org_id, series_id, held, free))
    return found


async def state_counts(
    session: AsyncSession, org_ids: Sequence[int], include_descendants: bool
) -> dict[int, dict[NumberState, int]]:
    """Per organization, how many numbers of each state its pool (or subtree) holds,
    summed from the counters the triggers keep."""
    counted = NumberStateCount
    owner, source = per_organization(org_ids, include_descendants, counted)
    total = counted.total()
    query = source.with_only_columns(owner, counted.state, total).group_by(owner, counted.state)
    if not include_descendants:
        query = query.where(counted.organization_id.in_(org_ids))
    found: dict[int, dict[NumberState, int]] = {
        org_id: dict.fromkeys(NumberState, 0) for org_id in org_ids
    }
    for org_id, state, count in await session.execute(query):
        found[org_id][state] = count
    return found
