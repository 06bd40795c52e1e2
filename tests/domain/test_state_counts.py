"""The per-pool state counters that triggers keep (migration 0005), and the per-pool
quick-filter counters (migration 0015), stay exact.

numberCounts, Organization.numberCounts and quickFilterCounts answer from them, so after
any mix of lifecycle moves, allocations, withdrawals, imports and sweeps they must equal
a count of the numbers themselves (the tabs as domain/quick_filters.py states them).
"""

import asyncio
import io
import random
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain import allocation, inventory, numbers, quick_filters, series
from domain.clock import ManualClock
from domain.csv import imports
from domain.details import NumberDetails
from domain.notices import NoticeRules
from domain.sweep import sweep
from models import Number, NumberState, Organization, OrganizationKind, QuickFilter
from models.database import Database
from models.numbers import NumberQuickFilterCount, NumberStateCount
from tests.support.api import Api, gid
from tests.support.lifecycle import ACTIONS, Actions, attempt
from tests.support.world import World

NUMBERS = [f"+65610000{i:02d}" for i in range(24)]
IMPORTED = "number,vendor,country,sku,state\n+6561000100,V,SG,sku-1,AVAILABLE\n"
IMPORTED += "+6561000101,V,SG,sku-1,LOCKED\n+6561000102-+6561000104,V,SG,sku-1,\n"
MOVES = [*ACTIONS, "allocate", "withdraw", "assign_with_term", "route"]
COUNTS = "query($filter: NumberFilter) { numberCounts(filter: $filter) { state count } }"
TABS = "query($filter: NumberFilter) { quickFilterCounts(filter: $filter) { quickFilter count } }"


async def tab_counters_and_numbers(
    db: Database,
) -> tuple[dict[object, int], dict[object, int]]:
    """(organization, quick filter) → count, from the counters and from the numbers."""
    async with db.read() as session:
        kept = await session.execute(
            sa.select(
                NumberQuickFilterCount.organization_id,
                NumberQuickFilterCount.quick_filter,
                NumberQuickFilterCount.total(),
            ).group_by(NumberQuickFilterCount.organization_id, NumberQuickFilterCount.quick_filter)
        )
        counted: dict[object, int] = {}
        for tab in QuickFilter:
            rows = await session.execute(
                sa.select(Number.organization_id, sa.func.count())
                .where(quick_filters.condition(tab))
                .group_by(Number.organization_id)
            )
            counted.update({(org, tab): n for org, n in rows})
        return {(org, tab): n for org, tab, n in kept if n}, counted


async def counters_and_numbers(db: Database) -> tuple[dict[object, int], dict[object, int]]:
    """(organization, state) → count, from the counters and from the numbers."""
    async with db.read() as session:
        kept = await session.execute(
            sa.select(
                NumberStateCount.organization_id, NumberStateCount.state, NumberStateCount.total()
            ).group_by(NumberStateCount.organization_id, NumberStateCount.state)
        )
        counted = await session.execute(
            sa.select(Number.organization_id, Number.state, sa.func.count()).group_by(
                Number.organization_id, Number.state
            )
        )
        return (
            {(org, state): n for org, state, n in kept if n},
            {(org, state): n for org, state, n in counted},
        )


async def move(actions: Actions, name: str, e164: str) -> None:
    """One move on one number; a move its state forbids fails and changes nothing."""
    if name == "route":
        await attempt(actions.world.edit([e164], NumberDetails(routing="sip:route")))
    elif name in ("allocate", "withdraw"):
        request = allocation.Request(gid(actions.customer), None, None, [e164], None)
        operation = allocation.allocate if name == "allocate" else allocation.withdraw
        await attempt(actions.world.run(operation, request))
    else:
        await attempt(getattr(actions, name)(e164))


async def customer_with(db: Database, clock: ManualClock, added: list[str]) -> Actions:
    """A customer below the root; `added` AVAILABLE numbers in the root's pool, of the
    series +656100 (the imported ones too)."""
    world = await World.create(db, clock)
    async with db.write() as session:
        await series.create(
            session, world.caller.viewer, clock, name="SG 6100", prefix="+656100", country="SG"
        )
    actions = Actions(world, await world.org("Customer", OrganizationKind.CUSTOMER))
    await world.add_named(added)
    return actions


async def series_counters_and_numbers(
    db: Database,
) -> tuple[dict[tuple[int, int], tuple[int, int]], dict[tuple[int, int], tuple[int, int]]]:
    """(organization, series) → (allocated, unused), from the counters (migration 0019)
    and from the numbers."""
    async with db.read() as session:
        rows = await inventory.allocations(session, [org.id for org in await _pools(session)])
        kept = {
            (r.organization_id, r.series_id): (r.allocated, r.unused)
            for found in rows.values()
            for r in found
        }
        counted = await session.execute(
            sa.select(
                Number.organization_id,
                Number.series_id,
                sa.func.count(),
                sa.func.sum(sa.case((Number.state == NumberState.AVAILABLE, 1), else_=0)),
            )
            .where(Number.series_id.is_not(None), Number.state != NumberState.DELETED)
            .group_by(Number.organization_id, Number.series_id)
        )
        return kept, {(org, sid): (n, int(free)) for org, sid, n, free in counted}


async def _pools(session: AsyncSession) -> list[Organization]:
    return list((await session.scalars(sa.select(Organization))).all())


async def test_counters_equal_a_count_of_the_numbers_through_every_kind_of_change(
    api: Api, db: Database, clock: ManualClock
) -> None:
    actions = await customer_with(db, clock, NUMBERS)
    customer = actions.customer
    moves = random.Random(5)
    for step in range(120):
        await move(actions, moves.choice(MOVES), moves.choice(NUMBERS))
        if step % 20 == 19:
            kept, counted = await counters_and_numbers(db)
            assert kept == counted
            assert (tabs := await tab_counters_and_numbers(db))[0] == tabs[1]
            kept_series, counted_series = await series_counters_and_numbers(db)
            assert kept_series == counted_series
            assert counted_series  # the moves left numbers of the series somewhere
    report = await imports.import_csv(db, actions.world.caller, io.StringIO(IMPORTED))
    assert report.added == 5
    clock.advance(timedelta(days=800))
    await sweep(db, clock, NoticeRules())
    kept, counted = await counters_and_numbers(db)
    assert kept == counted
    kept_tabs, counted_tabs = await tab_counters_and_numbers(db)
    assert kept_tabs == counted_tabs
    kept_series, counted_series = await series_counters_and_numbers(db)
    assert kept_series == counted_series

    # The counters' answer and a count over the numbers (country forces one) agree.
    for pools in ({}, {"organizationId": gid(customer), "includeDescendants": True}):
        fast = await api.gql(COUNTS, {"filter": pools})
        slow = await api.gql(COUNTS, {"filter": pools | {"country": "SG"}})
        assert fast == slow
        fast = await api.gql(TABS, {"filter": pools})
        slow = await api.gql(TABS, {"filter": pools | {"country": "SG"}})
        assert fast == slow
    customer_token = await api.token_for(customer)
    fast = await api.gql(COUNTS, {"filter": {"states": ["AVAILABLE"]}}, token=customer_token)
    slow = await api.gql(
        COUNTS, {"filter": {"states": ["AVAILABLE"], "country": "SG"}}, token=customer_token
    )
    assert fast == slow
    total = sum(row["count"] for row in fast["numberCounts"])
    assert total == counted.get((customer.id, "AVAILABLE"), 0)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_on_postgresql_a_writer_never_waits_for_the_counters_of_another(
    db: Database, clock: ManualClock
) -> None:
    """Two transactions change numbers of the same pool and state: neither waits."""
    actions = await customer_with(db, clock, NUMBERS[:2])
    world = actions.world
    async with db.write() as session:
        # Still open: its counter changes are not committed while the other runs.
        await numbers.lock(session, world.caller, [NUMBERS[0]], remark=None, expires_at=None)
        await asyncio.wait_for(actions.lock(NUMBERS[1]), timeout=10)
    kept, counted = await counters_and_numbers(db)
    assert kept == counted == {(world.root.id, "LOCKED"): 2}
