"""The sweep: due reservations and locks lapse once, in the same pool, whoever sweeps."""

import asyncio
from datetime import timedelta

import pytest

from domain import sweep as sweeping
from domain.clock import ManualClock
from domain.lifecycle import STATE_COLUMNS
from domain.notices import NoticeRules
from domain.sweep import sweep
from models import NoticeKind, NoticeStatus, Number, NumberState, OrganizationKind
from models.database import Database
from tests.support.lifecycle import state_problems
from tests.support.world import World

RULES = NoticeRules()
DAY = timedelta(days=1)


@pytest.fixture
async def inventory(db: Database, clock: ManualClock) -> World:
    return await World.create(db, clock, support_email="noc@provider.test")


async def test_due_reservations_and_locks_lapse_to_available_in_their_pool(
    inventory: World, clock: ManualClock
) -> None:
    customer = await inventory.org("Acme", OrganizationKind.CUSTOMER, billing_email="b@acme.test")
    reserved, locked, endless, later = [[e] for e in await inventory.add(4, pool=customer)]
    await inventory.reserve(reserved, customer, clock.now() + 2 * DAY)
    await inventory.lock(locked, clock.now() + 2 * DAY)
    await inventory.lock_without_end(endless)
    await inventory.reserve(later, customer, clock.now() + 3 * DAY)

    clock.advance(2 * DAY)
    report = await sweep(inventory.db, clock, RULES)

    assert (report.lapsed_reservations, report.lapsed_locks) == (1, 1)
    for e164 in (*reserved, *locked):
        row = await inventory.row(e164)
        assert row.state is NumberState.AVAILABLE
        assert row.organization_id == customer.id
        assert row.state_changed_at == clock.now()
        assert state_problems(row) == []
        [event] = await inventory.events(e164, "EXPIRED")
        assert (event.actor, event.to_state) == ("system", NumberState.AVAILABLE)
    assert (await inventory.row(endless[0])).state is NumberState.LOCKED
    assert (await inventory.row(later[0])).state is NumberState.RESERVED
    [lapsed_notice] = [n for n in await inventory.notices() if n.kind is NoticeKind.LOCK_LAPSED]
    assert lapsed_notice.expires_at == clock.now()
    assert lapsed_notice.status is NoticeStatus.PENDING
    assert lapsed_notice.id in report.notices_due


async def test_a_lapse_clears_every_column_of_the_reservation_or_lock(
    inventory: World, clock: ManualClock
) -> None:
    customer = await inventory.org("Acme", OrganizationKind.CUSTOMER, billing_email="b@acme.test")
    extended, held, locked = [[e] for e in await inventory.add(3, pool=customer)]
    await inventory.reserve(extended, customer, clock.now() + DAY)
    await inventory.extend(extended, clock.now() + 30 * DAY)
    await inventory.hold_for_expired_subscription(held)
    await inventory.lock(locked, clock.now() + 30 * DAY)
    assert (await inventory.row(held[0])).held_for_subscription_uuid is not None

    clock.advance(60 * DAY)
    report = await sweep(inventory.db, clock, RULES)

    assert (report.lapsed_reservations, report.lapsed_locks) == (2, 1)
    for e164 in (*extended, *held, *locked):
        row = await inventory.row(e164)
        assert row.state is NumberState.AVAILABLE
        assert {column: getattr(row, column) for column in STATE_COLUMNS} == dict.fromkeys(
            STATE_COLUMNS
        )


async def test_a_second_sweep_finds_nothing_more_to_do(
    inventory: World, clock: ManualClock
) -> None:
    customer = await inventory.org("Acme", OrganizationKind.CUSTOMER, billing_email="b@acme.test")
    e164s = await inventory.add(3, pool=customer)
    await inventory.reserve(e164s, customer, clock.now() + DAY)
    clock.advance(DAY)

    first = await sweep(inventory.db, clock, RULES)
    second = await sweep(inventory.db, clock, RULES)

    assert first.lapsed_reservations == 3
    assert second.lapsed_reservations == 0
    assert await inventory.count_events("EXPIRED") == 3


async def test_sweeps_racing_in_batches_lapse_every_number_exactly_once(
    db: Database, database_url: str, inventory: World, clock: ManualClock, monkeypatch
) -> None:
    monkeypatch.setattr(sweeping, "BATCH", 7)
    e164s = await inventory.add(60)
    customer = await inventory.org("Acme", OrganizationKind.CUSTOMER, billing_email="b@acme.test")
    await inventory.reserve(e164s[:40], customer, clock.now() + DAY)
    await inventory.lock(e164s[40:], clock.now() + DAY)
    clock.advance(DAY)
    # Four sweepers with engines of their own, as four worker processes would have.
    others = [Database(database_url, pool_size=2) for _ in range(4)]
    try:
        reports = await asyncio.gather(*(sweep(other, clock, RULES) for other in others))
    finally:
        for other in others:
            await other.dispose()

    assert sum(r.lapsed_reservations for r in reports) == 40
    assert sum(r.lapsed_locks for r in reports) == 20
    assert await inventory.count(Number.state == NumberState.AVAILABLE) == 60
    assert await inventory.count_events("EXPIRED") == 60
    lapsed_notices = [n for n in await inventory.notices() if n.kind is NoticeKind.LOCK_LAPSED]
    assert len(lapsed_notices) == 20


async def test_a_sweep_that_dies_mid_transaction_leaves_everything_for_the_next(
    inventory: World, clock: ManualClock
) -> None:
    e164s = await inventory.add(5)
    await inventory.lock(e164s, clock.now() + DAY)
    clock.advance(DAY)

    class Crash(Exception):
        pass

    async def lapse_then_die() -> None:
        async with inventory.db.write() as session:
            assert len(await sweeping.lapse(session, NumberState.LOCKED, clock.now(), 100)) == 5
            raise Crash

    with pytest.raises(Crash):
        await lapse_then_die()
    assert await inventory.count(Number.state == NumberState.LOCKED) == 5
    assert await inventory.notices() == []

    report = await sweep(inventory.db, clock, RULES)

    assert report.lapsed_locks == 5
    assert await inventory.count_events("EXPIRED") == 5
    assert len(await inventory.notices()) == 5


async def test_a_reservation_changed_before_the_sweep_is_left_alone(
    inventory: World, clock: ManualClock
) -> None:
    customer = await inventory.org("Acme", OrganizationKind.CUSTOMER, billing_email="b@acme.test")
    extended, released = [[e] for e in await inventory.add(2, pool=customer)]
    await inventory.reserve([*extended, *released], customer, clock.now() + DAY)
    await inventory.extend(extended, clock.now() + 30 * DAY)
    await inventory.release(released)
    clock.advance(DAY)

    report = await sweep(inventory.db, clock, RULES)

    assert report.lapsed_reservations == 0
    assert (await inventory.row(extended[0])).state is NumberState.RESERVED
    assert await inventory.events(released[0], "EXPIRED") == []
