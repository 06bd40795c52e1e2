"""Two allocations of the same named numbers at once: the one that waits gets a true answer.

The first allocation holds its transaction open until the second is known to be
waiting for the numbers' row locks (PostgreSQL: its backend waits on a lock in
pg_stat_activity), then commits. The waiting one must answer CONFLICT, or what a
serial order answers (the numbers are no longer in the parent's pool), never that the
numbers, still in the caller's subtree, are "not in your inventory".
SQLite writes one transaction at a time (BEGIN IMMEDIATE): the second simply goes
after the first, as a serial order does.
"""

import asyncio

import pytest
import sqlalchemy as sa

from domain import allocation
from domain.clock import ManualClock
from domain.errors import DomainError, ErrorCode
from models import Number, OrganizationKind
from models.database import Database
from tests.support.api import gid
from tests.support.world import World

# Polls of pg_stat_activity before giving up on the second allocation ever waiting.
POLLS = 500


async def _until_waiting_on_a_lock(db: Database, task: "asyncio.Task[object]") -> None:
    """Return once another backend of this database waits on a lock (PostgreSQL)."""
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(POLLS):
        assert not task.done(), task.result()
        async with db.read() as session:
            if await session.scalar(query):
                return
        # Polling, not papering over a race: the order is set by the lock, not the pause.
        await asyncio.sleep(0.01)
    pytest.fail("the second allocation never waited for the first's row locks")


async def test_an_allocation_waiting_on_another_of_the_same_numbers_is_never_not_found(
    db: Database, clock: ManualClock
) -> None:
    world = await World.create(db, clock)
    first_child = await world.org("Customer A", OrganizationKind.CUSTOMER)
    second_child = await world.org("Customer B", OrganizationKind.CUSTOMER)
    named = await world.add(3)

    def request(child_gid: str) -> allocation.Request:
        return allocation.Request(child_gid, None, None, named, None)

    async with db.write() as session:
        await allocation.allocate(session, world.caller, request(gid(first_child)))
        second = asyncio.create_task(world.run(allocation.allocate, request(gid(second_child))))
        if not db.is_sqlite:
            await _until_waiting_on_a_lock(db, second)
    with pytest.raises(DomainError) as refused:
        await second

    codes = {problem.code for problem in refused.value.problems}
    assert ErrorCode.NOT_FOUND not in codes, refused.value.problems
    if db.is_sqlite:
        # After the first, as a serial order has it: the numbers left the parent's pool.
        assert codes == {ErrorCode.INVALID_TRANSITION}, refused.value.problems
    else:
        assert codes == {ErrorCode.CONFLICT}, refused.value.problems
    async with db.read() as session:
        pools = set(await session.scalars(sa.select(Number.organization_id)))
    assert pools == {first_child.id}
