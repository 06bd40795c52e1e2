"""The live-update hub: events handed on after commit only, scoped, bounded per token."""

import asyncio

import pytest

from domain import events, live, numbers
from domain.clock import ManualClock
from domain.details import NumberDetails
from domain.errors import DomainError, ErrorCode
from models import OrganizationKind
from models.database import Database
from tests.support.world import World

WITHIN_SECONDS = 10.0


class Refused(Exception):
    pass


@pytest.fixture
async def world(db: Database, clock: ManualClock) -> World:
    return await World.create(db, clock)


def _scope(path: str | None) -> events.Scope:
    return events.Scope(
        pool_path=path,
        pool_id=None,
        actions=None,
        actor=None,
        number_id=None,
        since=None,
        until=None,
    )


async def _add_then_roll_back(db: Database, world: World) -> None:
    """An event written, then the transaction rolled back."""
    async with db.write() as session:
        await numbers.add(
            session,
            world.caller,
            ["+6561000001"],
            vendor="V",
            country="SG",
            organization_id=None,
            details=NumberDetails(sku="sku"),
        )
        raise Refused


async def test_committed_events_reach_subscribers_of_their_subtree_only(
    db: Database, world: World
) -> None:
    c1 = await world.org("C1", OrganizationKind.CUSTOMER)
    c2 = await world.org("C2", OrganizationKind.CUSTOMER)
    hub = live.Hub(db, max_per_token=5)
    await hub.start(None)
    try:
        async with (
            hub.subscribe(1, _scope(c1.path)) as first,
            hub.subscribe(2, _scope(c2.path)) as second,
        ):
            with pytest.raises(Refused):
                await _add_then_roll_back(db, world)
            [one] = await world.add(1, c1)
            [two] = await world.add(1, c2)
            got = await asyncio.wait_for(first.next(), WITHIN_SECONDS)
            assert (got.action, got.e164, got.organization_path) == ("ADDED", one, c1.path)
            got = await asyncio.wait_for(second.next(), WITHIN_SECONDS)
            assert (got.action, got.e164) == ("ADDED", two)
            assert first.queue.empty()
    finally:
        await hub.stop()


async def test_subscriptions_are_bounded_per_token(db: Database) -> None:
    hub = live.Hub(db, max_per_token=2)
    async with hub.subscribe(7, _scope(None)), hub.subscribe(7, _scope(None)):
        with pytest.raises(DomainError) as refused:
            async with hub.subscribe(7, _scope(None)):
                pass
        assert refused.value.problems[0].code is ErrorCode.LIMIT_EXCEEDED
        async with hub.subscribe(8, _scope(None)):
            pass
    async with hub.subscribe(7, _scope(None)):
        assert hub.per_token[7] == 1
