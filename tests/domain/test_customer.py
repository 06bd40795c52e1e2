"""Blocks through the domain layer on both databases: the sweep lifts each block once."""

import asyncio
from datetime import timedelta
from uuid import uuid4

import sqlalchemy as sa

from domain import customer
from domain.clock import ManualClock
from models import BlockReason, NumberEvent, NumberState
from models.database import Database
from tests.support.lifecycle import state_problems
from tests.support.world import World


async def test_two_sweeps_at_once_lift_each_block_once(db: Database, clock: ManualClock) -> None:
    world = await World.create(db, clock)
    e164s = await world.add(30)
    await world.assign(e164s, uuid4())
    ends = clock.now() + timedelta(hours=1)
    await world.run(customer.block, e164s[:20], reason=BlockReason.FRAUD, until=ends, remark=None)
    await world.run(customer.block, e164s[20:], reason=BlockReason.OTHER, until=None, remark=None)
    clock.advance(timedelta(hours=2))

    lifted = await asyncio.gather(
        customer.sweep_blocks(db, clock.now()), customer.sweep_blocks(db, clock.now())
    )

    assert sum(lifted) == 20
    async with db.read() as session:
        events = await session.scalar(
            sa.select(sa.func.count()).where(NumberEvent.action == "UNBLOCKED")
        )
    assert events == 20
    for e164 in e164s:
        row = await world.row(e164)
        expected = NumberState.ASSIGNED if e164 in e164s[:20] else NumberState.BLOCKED
        assert row.state is expected
        assert state_problems(row) == []
        assert row.subscription_uuid is not None
