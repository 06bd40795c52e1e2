"""When a subscription, cancellation or swap hold lapses, the sweep moves the number to its
after-hold state: the number's own, else its pool's policy. Manual reservations always
lapse to AVAILABLE."""

from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest

from domain import number_policy, subscriptions
from domain.clock import ManualClock
from domain.details import NumberDetails
from domain.notices import NoticeRules
from domain.policy import Policy
from domain.sweep import sweep
from models import (
    AfterHold,
    DeletionReason,
    Number,
    NumberState,
    Organization,
    OrganizationKind,
)
from models.database import Database
from tests.support.api import gid
from tests.support.lifecycle import state_problems
from tests.support.world import World

DAY = timedelta(days=1)
RULES = NoticeRules()
LOCK_DAYS = 30


async def set_policy(world: World, org: Organization, **changes: Any) -> None:
    async with world.db.write() as session:
        await number_policy.set_policy(session, world.caller.viewer, Policy(), gid(org), changes)


async def held(world: World, pool: Organization, count: int = 1) -> list[str]:
    """Numbers in `pool` held after their subscription expired (the 56-day default hold)."""
    e164s = await world.add(count, pool=pool)
    await world.hold_for_expired_subscription(e164s)
    return e164s


@pytest.fixture
async def world(db: Database, clock: ManualClock) -> World:
    return await World.create(db, clock)


async def test_each_after_hold_state_by_pool_policy_or_the_numbers_own(
    world: World, clock: ManualClock
) -> None:
    locking = await world.org("Locking", OrganizationKind.PARTNER)
    retiring = await world.org("Retiring", OrganizationKind.PARTNER)
    plain = await world.org("Plain", OrganizationKind.PARTNER)
    await set_policy(world, locking, after_hold=AfterHold.LOCKED, lock_days=LOCK_DAYS)
    await set_policy(world, retiring, after_hold=AfterHold.DELETED)

    to_lock = await held(world, locking, 2)
    to_retire = await held(world, retiring, 2)
    to_free = await held(world, plain)
    # A number's own afterHold overrides its pool's.
    own_available = await world.add(1, pool=locking)
    own_locked = await world.add(1, pool=plain)
    await world.edit(
        own_available, NumberDetails(after_hold=AfterHold.AVAILABLE, after_hold_given=True)
    )
    await world.edit(own_locked, NumberDetails(after_hold=AfterHold.LOCKED, after_hold_given=True))
    await world.hold_for_expired_subscription(own_available + own_locked)
    # Manual reservations always lapse to AVAILABLE, whatever the policy.
    manual = await world.add(1, pool=retiring)
    await world.reserve(manual, retiring, clock.now() + DAY)

    clock.advance(56 * DAY)
    report = await sweep(world.db, clock, RULES)

    assert report.lapsed_reservations == 8
    for e164 in to_lock + own_locked:
        row = await world.row(e164)
        assert (row.state, row.lock_remark, row.locked_at) == (
            NumberState.LOCKED,
            "after hold",
            clock.now(),
        )
        [event] = await world.events(e164, "LOCKED_AFTER_HOLD")
        assert (event.actor, event.from_state, event.to_state, event.remark) == (
            "system",
            NumberState.RESERVED,
            NumberState.LOCKED,
            "after hold",
        )
    # The lock period is the pool's: the plain pool's is the settings' 90 days.
    assert [(await world.row(e)).expires_at for e in to_lock + own_locked] == [
        clock.now() + LOCK_DAYS * DAY,
        clock.now() + LOCK_DAYS * DAY,
        clock.now() + Policy().lock,
    ]
    for e164 in to_retire:
        row = await world.row(e164)
        assert (row.state, row.deletion_reason) == (NumberState.DELETED, DeletionReason.RETIRED)
        [event] = await world.events(e164, "RETIRED")
        assert event.to_state is NumberState.DELETED
    for e164 in to_free + own_available + manual:
        assert (await world.row(e164)).state is NumberState.AVAILABLE
        assert len(await world.events(e164, "EXPIRED")) == 1
    for e164 in to_lock + to_retire + to_free + own_available + own_locked + manual:
        assert state_problems(await world.row(e164)) == []

    # A lock after the hold lapses in turn at its end.
    clock.advance(LOCK_DAYS * DAY)
    assert (await sweep(world.db, clock, RULES)).lapsed_locks == 2
    assert [(await world.row(e)).state for e in to_lock] == [NumberState.AVAILABLE] * 2


async def test_swap_and_termination_holds_lapse_by_policy_too(
    world: World, clock: ManualClock
) -> None:
    retiring = await world.org("Retiring", OrganizationKind.PARTNER)
    await set_policy(world, retiring, after_hold=AfterHold.DELETED)
    old, new, ended = await world.add(3, pool=retiring)
    subscription, other = uuid4(), uuid4()
    await world.assign([old], subscription)
    await world.run(subscriptions.swap, subscription, old, new, None)
    await world.assign([ended], other)
    await world.terminate_subscription(other)

    clock.advance(28 * DAY)
    await sweep(world.db, clock, RULES)

    assert [(await world.row(e)).deletion_reason for e in (old, ended)] == [
        DeletionReason.RETIRED
    ] * 2
    assert (await world.row(new)).state is NumberState.ASSIGNED


async def test_the_policy_at_the_lapse_decides_and_a_second_sweep_does_nothing(
    world: World, clock: ManualClock
) -> None:
    pool = await world.org("Pool", OrganizationKind.PARTNER)
    await held(world, pool, 3)
    await set_policy(world, pool, after_hold=AfterHold.DELETED)

    clock.advance(56 * DAY)
    first = await sweep(world.db, clock, RULES)
    second = await sweep(world.db, clock, RULES)

    assert (first.lapsed_reservations, second.lapsed_reservations) == (3, 0)
    assert await world.count(Number.deletion_reason == DeletionReason.RETIRED) == 3
    assert await world.count_events("RETIRED") == 3
