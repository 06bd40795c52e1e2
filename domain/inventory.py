"""What organizations hold: per-series allocations and per-state counts, for many at once."""

import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from domain.organizations import ORG_IDS
from domain.search import per_organization
from domain.series import SERIES_READ, SeriesRead
from models import NumberState, Series
from models.database import Reads
from models.numbers import NumberSeriesCount, NumberStateCount
from models.prepared import Prepared


@dataclass(frozen=True)
class AllocationRow:
    organization_id: int
    series_id: int
    allocated: int
    unused: int
    series: SeriesRead  # read with the counts: an allocation is always shown by its series


def _allocations_statement() -> sa.Select[Any]:
    counted = NumberSeriesCount
    allocated = sa.cast(sa.func.sum(counted.allocated), sa.BigInteger)
    unused = sa.cast(sa.func.sum(counted.unused), sa.BigInteger)
    sums = (
        sa.select(
            counted.organization_id,
            counted.series_id,
            allocated.label("allocated"),
            unused.label("unused"),
        )
        .where(counted.organization_id.in_(ORG_IDS))
        .group_by(counted.organization_id, counted.series_id)
        .having(allocated > 0)
        .subquery()
    )
    return (
        sa.select(sums, *SERIES_READ)
        .join(Series, Series.id == sums.c.series_id)
        .order_by(sums.c.organization_id, sums.c.series_id)
    )


_ALLOCATIONS = Prepared(_allocations_statement())


async def allocations(reads: Reads, org_ids: Sequence[int]) -> dict[int, list[AllocationRow]]:
    """Per organization, one row per series its own pool holds numbers of (not DELETED),
    summed from the counters the triggers keep, with the series' own facts."""
    found: dict[int, list[AllocationRow]] = defaultdict(list)
    for org_id, series_id, held, free, *facts in await _ALLOCATIONS.rows(
        reads, {"org_ids": list(org_ids)}
    ):
        found[org_id].append(AllocationRow(org_id, series_id, held, free, SeriesRead(*facts)))
    return found


@functools.cache
def _state_counts_statement(include_descendants: bool) -> Prepared:
    counted = NumberStateCount
    owner, source = per_organization(ORG_IDS, include_descendants, counted)
    query = source.with_only_columns(owner, counted.state, counted.total())
    if not include_descendants:
        query = query.where(counted.organization_id.in_(ORG_IDS))
    return Prepared(query.group_by(owner, counted.state))


async def state_counts(
    reads: Reads, org_ids: Sequence[int], include_descendants: bool
) -> dict[int, dict[NumberState, int]]:
    """Per organization, how many numbers of each state its pool (or subtree) holds,
    summed from the counters the triggers keep."""
    query = _state_counts_statement(include_descendants)
    found: dict[int, dict[NumberState, int]] = {
        org_id: dict.fromkeys(NumberState, 0) for org_id in org_ids
    }
    for org_id, state, count in await query.rows(reads, {"org_ids": list(org_ids)}):
        found[org_id][state] = count
    return found
