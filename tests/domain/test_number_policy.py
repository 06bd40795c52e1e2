"""Every period is the policy of the pool that holds the number when the move starts it.

A partner and its customer set different periods; one move over numbers of both pools
gives each its own pool's period, and a later change of policy moves no running end.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest

from domain import number_policy, subscriptions
from domain.clock import ManualClock
from domain.errors import DomainError, ErrorCode
from domain.notices import NoticeRules
from domain.policy import Policy
from domain.sweep import sweep
from models import NoticeKind, Organization, OrganizationKind
from models.database import Database
from tests.support.api import gid
from tests.support.world import World

DAY = timedelta(days=1)
# (pool A's, pool B's) days for each period.
A = {"free": 9, "expired": 40, "terminated": 20, "swap": 3, "lock": 60, "notice": 2}
B = {"free": 5, "expired": 50, "terminated": 10, "swap": 6, "lock": 120, "notice": 10}


@dataclass(frozen=True)
class Pools:
    world: World
    a: Organization
    b: Organization

    async def set(self, org: Organization, **changes: Any) -> None:
        async with self.world.db.write() as session:
            await number_policy.set_policy(
                session, self.world.caller.viewer, Policy(), gid(org), changes
            )

    async def one_in_each(self) -> tuple[str, str]:
        [a] = await self.world.add(1, pool=self.a)
        [b] = await self.world.add(1, pool=self.b)
        return a, b

    async def ends(self, *e164s: str) -> list[timedelta]:
        now = self.world.clock.now()
        found = []
        for e164 in e164s:
            expires_at = (await self.world.row(e164)).expires_at
            assert expires_at is not None
            found.append(expires_at - now)
        return found


def _policy(days: dict[str, int]) -> dict[str, int]:
    return {
        "free_reservation_days": days["free"],
        "expired_hold_days": days["expired"],
        "terminated_hold_days": days["terminated"],
        "swap_hold_days": days["swap"],
        "lock_days": days["lock"],
        "notice_days": days["notice"],
    }


@pytest.fixture
async def pools(db: Database, clock: ManualClock) -> Pools:
    world = await World.create(db, clock)
    partner = await world.org("A", OrganizationKind.PARTNER)
    found = Pools(world, partner, await world.org("B", OrganizationKind.CUSTOMER, partner))
    await found.set(world.root, free_reservation_days=30)  # the ceiling above both
    await found.set(found.a, **_policy(A))
    await found.set(found.b, **_policy(B))
    return found


async def test_free_reservation_is_the_pools_and_later_changes_move_no_end(pools: Pools) -> None:
    a, b = await pools.one_in_each()
    world = pools.world

    await world.reserve([a, b], pools.b)

    assert await pools.ends(a, b) == [A["free"] * DAY, B["free"] * DAY]
    await pools.set(pools.a, free_reservation_days=1)
    assert await pools.ends(a) == [A["free"] * DAY]


async def test_a_given_end_is_judged_by_each_numbers_pool(pools: Pools) -> None:
    a, b = await pools.one_in_each()
    world = pools.world
    ends = world.clock.now() + 7 * DAY

    with pytest.raises(DomainError) as refused:
        await world.reserve([a, b], pools.b, ends)
    assert [(p.code, p.number) for p in refused.value.problems] == [(ErrorCode.VALIDATION, b)]
    assert (await world.row(a)).expires_at is None

    await world.reserve([a], pools.b, ends)
    assert await pools.ends(a) == [7 * DAY]


async def test_expired_hold_is_the_pools(pools: Pools) -> None:
    a, b = await pools.one_in_each()
    subscription = uuid4()
    await pools.world.assign([a, b], subscription)
    await pools.world.expire_subscription(subscription)
    assert await pools.ends(a, b) == [A["expired"] * DAY, B["expired"] * DAY]


async def test_terminated_hold_is_the_pools(pools: Pools) -> None:
    a, b = await pools.one_in_each()
    subscription = uuid4()
    await pools.world.assign([a, b], subscription)
    await pools.world.terminate_subscription(subscription)
    assert await pools.ends(a, b) == [A["terminated"] * DAY, B["terminated"] * DAY]


async def test_swap_hold_is_the_old_numbers_pool(pools: Pools) -> None:
    world = pools.world
    for old_pool, days in ((pools.a, A), (pools.b, B)):
        [old] = await world.add(1, pool=old_pool)
        [new] = await world.add(1, pool=old_pool)
        subscription = uuid4()
        await world.assign([old], subscription)
        await world.run(subscriptions.swap, subscription, old, new, None)
        assert await pools.ends(old) == [days["swap"] * DAY]


async def test_lock_period_is_the_pools(pools: Pools) -> None:
    a, b = await pools.one_in_each()
    await pools.world.lock([a, b])
    assert await pools.ends(a, b) == [A["lock"] * DAY, B["lock"] * DAY]


async def test_a_child_inherits_its_pools_periods_from_the_nearest_ancestor(
    pools: Pools,
) -> None:
    world = pools.world
    customer = await world.org("A's customer", OrganizationKind.CUSTOMER, pools.a)
    department = await world.org("its department", OrganizationKind.DEPARTMENT, customer)
    await pools.set(customer, lock_days=7)
    [e164] = await world.add(1, pool=department)
    await world.lock([e164])
    assert await pools.ends(e164) == [7 * DAY]
    await pools.set(customer, lock_days=None)
    [e164] = await world.add(1, pool=department)
    await world.lock([e164])
    assert await pools.ends(e164) == [A["lock"] * DAY]


async def test_notice_lead_is_the_pools(pools: Pools, clock: ManualClock) -> None:
    a, b = await pools.one_in_each()
    world = pools.world
    await world.reserve([a, b], pools.b, clock.now() + 5 * DAY)

    # B's lead is 10 days: due at once; A's is 2 days: not yet.
    await sweep(world.db, clock, NoticeRules())
    lapsing = [n for n in await world.notices() if n.kind is NoticeKind.RESERVATION_LAPSING]
    assert [n.number_id for n in lapsing] == [(await world.row(b)).id]
    assert lapsing[0].due_at == clock.now() + 5 * DAY - B["notice"] * DAY

    clock.advance(3 * DAY)
    await sweep(world.db, clock, NoticeRules())
    [notice] = await world.notices(a)
    assert notice.due_at == clock.now()
