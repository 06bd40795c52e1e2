"""A port-out racing an allocation, a reservation or another port order on the same
numbers, over two connections: no number ends in two open orders or in a state the
table does not allow, and whatever loses is refused whole.

The first transaction holds its row locks until the second is known to wait for them
(PostgreSQL: a backend waiting on a lock in pg_stat_activity), then commits; SQLite
writes one transaction at a time, so the second goes after the first. A second part
lets many such pairs run freely at once and checks the invariants after each round.
"""

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa

from domain import allocation, ids, numbers, porting
from domain.access import Caller
from domain.clock import ManualClock
from domain.errors import DomainError, ErrorCode
from models import (
    Number,
    NumberState,
    Organization,
    OrganizationKind,
    PortOrder,
    PortOrderNumber,
)
from models.database import Database
from tests.support import invariants
from tests.support.api import gid
from tests.support.world import World

pytestmark = pytest.mark.slow

POLLS = 500
Operation = Callable[[Any, Caller], Awaitable[object]]


async def _until_waiting_on_a_lock(db: Database, task: "asyncio.Task[object]") -> None:
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(POLLS):
        assert not task.done(), task.result()
        async with db.read() as session:
            if await session.scalar(query):
                return
        await asyncio.sleep(0.01)
    pytest.fail("the second transaction never waited for the first's row locks")


def _port_out(named: list[str]) -> Operation:
    async def run(session: Any, caller: Caller) -> object:
        return await porting.create_port_out(
            session, caller, named, carrier="Gaining", reference=None, remark=None
        )

    return run


def _reserve(named: list[str], holder: Organization) -> Operation:
    async def run(session: Any, caller: Caller) -> object:
        return await numbers.reserve(
            session,
            caller,
            named,
            reserved_for_id=gid(holder),
            expires_at=None,
            tag=None,
            remark=None,
        )

    return run


def _allocate(named: list[str], child: Organization) -> Operation:
    async def run(session: Any, caller: Caller) -> object:
        request = allocation.Request(gid(child), None, None, named, None)
        return await allocation.allocate(session, caller, request)

    return run


async def _open_orders_per_number(db: Database) -> dict[int, int]:
    async with db.read() as session:
        rows = await session.execute(
            sa.select(PortOrderNumber.number_id, sa.func.count())
            .where(PortOrderNumber.closed_at.is_(None))
            .group_by(PortOrderNumber.number_id)
        )
        return {number_id: count for number_id, count in rows}


async def _states(db: Database, named: list[str]) -> dict[str, NumberState]:
    async with db.read() as session:
        rows = await session.execute(
            sa.select(Number.e164, Number.state).where(Number.e164.in_(named))
        )
        return {e164: state for e164, state in rows}


@pytest.mark.parametrize("rival", ["port_out", "reserve", "allocate"])
async def test_a_port_out_holding_the_numbers_wins_and_the_rival_is_refused_whole(
    db: Database, clock: ManualClock, rival: str
) -> None:
    world = await World.create(db, clock)
    child = await world.org("Customer", OrganizationKind.CUSTOMER)
    named = await world.add(3)
    second: Operation = {
        "port_out": _port_out(named),
        "reserve": _reserve(named, child),
        "allocate": _allocate(named, child),
    }[rival]

    async with db.write() as session:
        await _port_out(named)(session, world.caller)
        task = asyncio.create_task(world.run(second))
        if not db.is_sqlite:
            await _until_waiting_on_a_lock(db, task)
    with pytest.raises(DomainError) as refused:
        await task
    assert {p.code for p in refused.value.problems} <= {
        ErrorCode.INVALID_TRANSITION,
        ErrorCode.CONFLICT,
    }
    assert set((await _states(db, named)).values()) == {NumberState.PORTING_OUT}
    assert set((await _open_orders_per_number(db)).values()) == {1}
    assert await invariants.check(db) == []


@pytest.mark.parametrize("rival", ["reserve", "allocate"])
async def test_a_port_out_waiting_on_a_rival_takes_the_numbers_as_the_rival_left_them(
    db: Database, clock: ManualClock, rival: str
) -> None:
    world = await World.create(db, clock)
    child = await world.org("Customer", OrganizationKind.CUSTOMER)
    named = await world.add(3)
    first = _reserve(named, child) if rival == "reserve" else _allocate(named, child)

    async with db.write() as session:
        await first(session, world.caller)
        task = asyncio.create_task(world.run(_port_out(named)))
        if not db.is_sqlite:
            await _until_waiting_on_a_lock(db, task)
    outcomes: list[object] = await asyncio.gather(task, return_exceptions=True)
    outcome = outcomes[0]
    if isinstance(outcome, DomainError):
        # An allocation moved the numbers to the child's pool: the waiting port-out may
        # find them changed under it. It is refused whole; the numbers are as left.
        assert {p.code for p in outcome.problems} <= {ErrorCode.CONFLICT}
        assert set((await _states(db, named)).values()) <= {
            NumberState.RESERVED,
            NumberState.AVAILABLE,
        }
    else:
        assert not isinstance(outcome, BaseException), outcome
        assert set((await _states(db, named)).values()) == {NumberState.PORTING_OUT}
    assert all(count == 1 for count in (await _open_orders_per_number(db)).values())
    assert await invariants.check(db) == []


async def test_many_port_orders_reservations_and_allocations_at_once_stay_legal(
    db: Database, clock: ManualClock
) -> None:
    world = await World.create(db, clock)
    child = await world.org("Customer", OrganizationKind.CUSTOMER)
    pool = await world.add(12)
    chance = random.Random(18)
    for _ in range(6):
        picks = [chance.sample(pool, 3) for _ in range(4)]
        operations = [
            _port_out(picks[0]),
            _port_out(picks[1]),
            _reserve(picks[2], child),
            _allocate(picks[3], child),
        ]
        results = await asyncio.gather(
            *(world.run(op) for op in operations), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                assert isinstance(result, DomainError), result
        assert all(count == 1 for count in (await _open_orders_per_number(db)).values())
        assert await invariants.check(db) == []
        # Cancel the orders made, so the next round has numbers to race for.
        async with db.read() as session:
            keys = list(
                await session.scalars(
                    sa.select(PortOrder.uuid).where(PortOrder.closed_at.is_(None))
                )
            )
        for key in keys:
            order = ids.encode(porting.TYPE_NAME, key)
            await world.run(porting.act, order, porting.OrderAction.CANCEL, remark=None)
        assert await invariants.check(db) == []
