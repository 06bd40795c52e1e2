"""The paid service term: assign with one, cancel, restore, renew, cycles, and the sweep's
renewals and service ends, through the domain layer on both databases."""

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain import numbers, terms
from domain.clock import ManualClock
from domain.errors import DomainError, ErrorCode
from domain.notices import NoticeRules
from domain.policy import Policy
from domain.sweep import sweep
from domain.terms import TermInput, add_months
from models import NoticeKind, NoticeStatus, NumberState, OrganizationKind, ReservationReason
from models.database import Database
from tests.support.lifecycle import state_problems
from tests.support.world import World

RULES = NoticeRules()
POLICY = Policy()
SUBSCRIPTION = uuid4()


@pytest.fixture
async def world(db: Database, clock: ManualClock) -> World:
    return await World.create(db, clock)


async def _assign(world: World, e164s: list[str], term: TermInput | None, **kw: object) -> None:
    customer = await world.org(f"C{uuid4().hex[:6]}", OrganizationKind.CUSTOMER, **kw)  # type: ignore[arg-type]
    await world.run(
        numbers.assign,
        e164s,
        subscription_uuid=SUBSCRIPTION,
        owner_uuid=customer.uuid,
        remark=None,
        billing=term,
    )


async def _refused(world: World, operation: object, *args: object, **kw: object) -> DomainError:
    with pytest.raises(DomainError) as caught:
        await world.run(operation, *args, **kw)  # type: ignore[arg-type]
    return caught.value


def test_calendar_months_keep_to_the_end_of_a_short_month() -> None:
    jan31 = datetime(2027, 1, 31, 10, 30, tzinfo=UTC)
    assert add_months(jan31, 1) == datetime(2027, 2, 28, 10, 30, tzinfo=UTC)
    assert add_months(datetime(2028, 1, 31, tzinfo=UTC), 1) == datetime(2028, 2, 29, tzinfo=UTC)
    assert add_months(jan31, 12) == datetime(2028, 1, 31, 10, 30, tzinfo=UTC)
    assert add_months(datetime(2027, 11, 30, tzinfo=UTC), 3) == datetime(2028, 2, 29, tzinfo=UTC)


async def test_assign_with_a_term_and_its_checks(world: World, clock: ManualClock) -> None:
    [a, b] = await world.add(2)
    await _assign(world, [a], TermInput(3, None, 5))
    row = await world.row(a)
    assert (row.billing_period_months, row.billing_cycles) == (3, 5)
    assert row.paid_until == add_months(clock.now(), 3)
    error = await _refused(
        world,
        numbers.assign,
        [b],
        subscription_uuid=SUBSCRIPTION,
        owner_uuid=None,
        remark=None,
        billing=TermInput(2, clock.now() - timedelta(days=1), 1000),
    )
    assert {tuple(p.field or ()) for p in error.problems} == {
        ("input", "billing", "periodMonths"),
    }
    error = await _refused(
        world,
        numbers.assign,
        [b],
        subscription_uuid=SUBSCRIPTION,
        owner_uuid=None,
        remark=None,
        billing=TermInput(1, clock.now() - timedelta(days=1), 1000),
    )
    assert {tuple(p.field or ()) for p in error.problems} == {
        ("input", "billing", "paidUntil"),
        ("input", "billing", "billingCycles"),
    }
    assert (await world.row(b)).state is NumberState.AVAILABLE


async def test_a_number_without_a_term_refuses_every_term_action_saying_why(
    world: World,
) -> None:
    [e164] = await world.add(1)
    await _assign(world, [e164], None)
    for operation, kw in (
        (terms.cancel, {}),
        (terms.restore, {}),
        (terms.renew, {"periods": 1}),
        (terms.set_cycles, {"cycles": 3}),
    ):
        error = await _refused(world, operation, [e164], remark=None, **kw)
        [problem] = error.problems
        assert problem.code is ErrorCode.INVALID_TRANSITION
        assert "no billing term" in problem.message
    assert (await world.row(e164)).billing_period_months is None


async def test_all_or_nothing_with_one_error_per_number(world: World) -> None:
    [termed, plain, available] = await world.add(3)
    await _assign(world, [termed], TermInput())
    await _assign(world, [plain], None)
    error = await _refused(world, terms.cancel, [termed, plain, available], remark=None)
    assert sorted(p.number or "" for p in error.problems) == sorted([plain, available])
    assert (await world.row(termed)).cancelled_at is None


async def test_cancel_restore_renew_and_cycles(world: World, clock: ManualClock) -> None:
    [e164] = await world.add(1)
    await _assign(world, [e164], TermInput(1, None, None))
    paid = (await world.row(e164)).paid_until
    assert paid is not None
    await world.run(terms.cancel, [e164], remark="customer asked")
    assert (await world.row(e164)).cancelled_at == clock.now()
    await world.run(terms.restore, [e164], remark=None)
    assert (await world.row(e164)).cancelled_at is None
    await world.run(terms.renew, [e164], periods=2, remark=None)
    assert (await world.row(e164)).paid_until == add_months(paid, 2)
    await world.run(terms.set_cycles, [e164], cycles=0, remark=None)
    assert (await world.row(e164)).billing_cycles == 0
    error = await _refused(world, terms.set_cycles, [e164], cycles=1000, remark=None)
    assert [p.code for p in error.problems] == [ErrorCode.VALIDATION]
    error = await _refused(world, terms.renew, [e164], periods=13, remark=None)
    assert [p.code for p in error.problems] == [ErrorCode.VALIDATION]
    actions = [e.action for e in await world.events(e164)]
    for action in ("CANCELLED", "RESTORED", "RENEWED", "BILLING_CYCLES_SET"):
        assert action in actions


async def test_a_sweep_down_for_three_periods_catches_up_exactly(
    world: World, clock: ManualClock
) -> None:
    clock.set(datetime(2027, 1, 20, 9, 0, tzinfo=UTC))
    [unlimited, two, cancelled] = await world.add(3)
    start = datetime(2027, 1, 31, 12, 0, 0, 123456, tzinfo=UTC)
    await _assign(world, [unlimited], TermInput(1, start, None))
    await _assign(world, [two], TermInput(1, start, 2))
    await _assign(world, [cancelled], TermInput(1, start, None))
    await world.run(terms.cancel, [cancelled], remark=None)

    # Due 31 Jan, 28 Feb, 28 Mar: three periods fell due while no sweep ran.
    clock.set(datetime(2027, 4, 1, tzinfo=UTC))
    await sweep(world.db, clock, RULES, POLICY)
    await sweep(world.db, clock, RULES, POLICY)

    row = await world.row(unlimited)
    assert row.paid_until == datetime(2027, 4, 28, 12, 0, 0, 123456, tzinfo=UTC)
    assert row.billing_cycles is None
    assert len(await world.events(unlimited, "RENEWED")) == 3

    row = await world.row(two)
    assert len(await world.events(two, "RENEWED")) == 2
    assert row.state is NumberState.RESERVED
    assert row.reservation_reason is ReservationReason.SUBSCRIPTION_EXPIRED
    assert row.reserved_at == datetime(2027, 3, 28, 12, 0, 0, 123456, tzinfo=UTC)
    assert row.expires_at == row.reserved_at + POLICY.expired_hold
    assert row.held_for_subscription_uuid == SUBSCRIPTION
    assert row.billing_cycles == 0
    assert state_problems(row) == []
    [ended] = await world.events(two, "SERVICE_ENDED")
    assert (ended.actor, ended.to_state) == ("system", NumberState.RESERVED)

    # Cancelled: it ended at 31 Jan, and its hold (from then) is over by now too.
    row = await world.row(cancelled)
    assert await world.events(cancelled, "RENEWED") == []
    [ended] = await world.events(cancelled, "SERVICE_ENDED")
    assert ended.to_state is NumberState.RESERVED
    assert len(await world.events(cancelled, "EXPIRED")) == 1
    assert row.state is NumberState.AVAILABLE
    assert state_problems(row) == []


async def test_sweeps_racing_renew_every_period_exactly_once(
    world: World, clock: ManualClock, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(terms, "BATCH", 7)
    clock.set(datetime(2027, 1, 20, 9, 0, tzinfo=UTC))
    e164s = await world.add(60)
    start = datetime(2027, 1, 31, 12, 0, tzinfo=UTC)
    await _assign(world, e164s[:40], TermInput(1, start, None))
    await _assign(world, e164s[40:], TermInput(1, start, 2))
    # Three periods due: 31 Jan, 28 Feb, 28 Mar.
    clock.set(datetime(2027, 4, 1, tzinfo=UTC))
    # Four sweepers with engines of their own, as four worker processes would have.
    others = [Database(database_url, pool_size=2) for _ in range(4)]
    try:
        reports = await asyncio.gather(
            *(terms.sweep_terms(other, clock.now(), POLICY) for other in others)
        )
    finally:
        for other in others:
            await other.dispose()

    assert sum(r.renewed for r in reports) == 40 * 3 + 20 * 2
    assert sum(r.ended for r in reports) == 20
    assert await world.count_events("RENEWED") == 40 * 3 + 20 * 2
    assert await world.count_events("SERVICE_ENDED") == 20
    for e164 in e164s[:40:13]:
        row = await world.row(e164)
        assert row.paid_until == datetime(2027, 4, 28, 12, 0, tzinfo=UTC)
    for e164 in e164s[40::7]:
        row = await world.row(e164)
        assert (row.state, row.billing_cycles) == (NumberState.RESERVED, 0)
        assert row.reserved_at == datetime(2027, 3, 28, 12, 0, tzinfo=UTC)


async def test_a_number_held_after_its_term_is_renewed_back(
    world: World, clock: ManualClock
) -> None:
    [e164] = await world.add(1)
    await _assign(world, [e164], TermInput(3, None, 0))
    owner = (await world.row(e164)).owner_id
    clock.advance(timedelta(days=100))
    await sweep(world.db, clock, RULES, POLICY)
    assert (await world.row(e164)).state is NumberState.RESERVED
    await world.run(terms.renew, [e164], periods=1, remark=None)
    row = await world.row(e164)
    assert row.state is NumberState.ASSIGNED
    assert (row.owner_id, row.subscription_uuid) == (owner, SUBSCRIPTION)
    assert row.paid_until == add_months(clock.now(), 3)
    assert state_problems(row) == []


async def test_the_service_ending_notice_once_and_cancelled_by_a_restore(
    world: World, clock: ManualClock
) -> None:
    [kept, ends] = await world.add(2)
    paid = clock.now() + timedelta(days=20)
    await _assign(world, [kept], TermInput(1, paid, None), billing_email="pay@acme.test")
    await _assign(world, [ends], TermInput(1, paid, 0), billing_email="pay@acme.test")
    await world.run(terms.cancel, [kept], remark=None)
    clock.advance(timedelta(days=14))
    await sweep(world.db, clock, RULES, POLICY)
    await sweep(world.db, clock, RULES, POLICY)
    for e164 in (kept, ends):
        [notice] = [n for n in await world.notices(e164) if n.kind is NoticeKind.SERVICE_ENDING]
        assert notice.expires_at == paid
    await world.run(terms.restore, [kept], remark=None)
    await sweep(world.db, clock, RULES, POLICY)
    [notice] = await world.notices(kept)
    assert notice.status is NoticeStatus.CANCELLED
    [notice] = await world.notices(ends)
    assert notice.status is NoticeStatus.PENDING
