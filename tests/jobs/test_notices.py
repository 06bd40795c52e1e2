"""Notices: who hears what and when, once per (number, kind, expiry), through a real SMTP server."""

import asyncio
import logging
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage

import pytest
import sqlalchemy as sa

from domain import notice_delivery, notices
from domain.clock import ManualClock
from domain.mail import LogMailer, Mailer, SmtpMailer
from domain.notice_delivery import Outcome
from domain.notices import NoticeRules
from domain.sweep import sweep, sweep_and_deliver
from models import NoticeKind, NoticeStatus, NumberState, Organization, OrganizationKind
from models.database import Database
from settings import Settings
from tests.support.mail import Inbox, html_text, plain_text, smtp_server
from tests.support.world import World

DAY = timedelta(days=1)
# For tests of what mails say and whom they reach, where the database makes no difference.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
RULES = NoticeRules(
    before=7 * DAY,
    retry=timedelta(minutes=1),
    max_attempts=3,
    lease=timedelta(minutes=5),
    sender="numbra@operator.test",
)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def inbox(smtp: tuple[Inbox, int]) -> Inbox:
    return smtp[0]


@pytest.fixture
def mailer(smtp: tuple[Inbox, int]) -> Mailer:
    settings = Settings(
        _env_file=None, smtp_host="127.0.0.1", smtp_port=smtp[1], smtp_timeout_seconds=5
    )
    return SmtpMailer(settings)


@pytest.fixture
async def inventory(db: Database, clock: ManualClock) -> World:
    return await World.create(db, clock, support_email="noc@provider.test")


@pytest.fixture
async def partner(inventory: World) -> Organization:
    return await inventory.org(
        "Resell",
        OrganizationKind.PARTNER,
        owner_email="owner@resell.test",
        support_email="support@resell.test",
    )


@pytest.fixture
async def customer(inventory: World, partner: Organization) -> Organization:
    return await inventory.org(
        "Acme",
        OrganizationKind.CUSTOMER,
        partner,
        billing_email="billing@acme.test",
        owner_email="owner@acme.test",
    )


class Sweeper:
    def __init__(self, inventory: World, mailer: Mailer, clock: ManualClock) -> None:
        self.inventory, self.mailer, self.clock = inventory, mailer, clock

    async def __call__(self) -> list[Outcome]:
        _, outcomes = await sweep_and_deliver(self.inventory.db, self.clock, self.mailer, RULES)
        return sorted(outcomes.elements())


@pytest.fixture
def run_sweep(inventory: World, mailer: Mailer, clock: ManualClock) -> Sweeper:
    return Sweeper(inventory, mailer, clock)


@SQLITE_ONLY
async def test_a_customer_hears_at_its_billing_address_seven_days_before_and_once(
    inventory: World,
    inbox: Inbox,
    run_sweep: Sweeper,
    clock: ManualClock,
    partner: Organization,
    customer: Organization,
) -> None:
    [e164] = await inventory.add(1, pool=partner)
    ends = clock.now() + 28 * DAY
    await inventory.reserve([e164], customer, ends)

    clock.set(ends - 7 * DAY - timedelta(minutes=1))
    assert await run_sweep() == []
    clock.advance(timedelta(minutes=2))
    assert await run_sweep() == [Outcome.SENT]
    clock.advance(timedelta(hours=1))
    assert await run_sweep() == []

    [mail] = inbox.messages
    assert mail["To"] == "billing@acme.test"
    assert mail["From"] == "numbra@operator.test"
    assert e164 in mail["Subject"]
    text = plain_text(mail)
    for words in (
        e164,
        "Acme",
        "Resell",
        "Monday 30 March 2026, 09:00 UTC",
        "extend",
        "DID Reservation",
        "assign",
        "release",
    ):
        assert words in text
    assert e164 in html_text(mail)
    [notice] = await inventory.notices(e164)
    assert (notice.kind, notice.status, notice.expires_at) == (
        NoticeKind.RESERVATION_LAPSING,
        NoticeStatus.SENT,
        ends,
    )
    assert notice.due_at == ends - 7 * DAY
    [event] = await inventory.events(e164, "NOTIFIED")
    assert (event.actor, event.from_state, event.to_state) == (
        "system",
        *[NumberState.RESERVED] * 2,
    )
    assert "billing@acme.test" in (event.remark or "")


@SQLITE_ONLY
async def test_a_partner_reserving_with_less_than_a_week_left_hears_at_once_at_its_owner_address(
    inventory: World,
    inbox: Inbox,
    run_sweep: Sweeper,
    clock: ManualClock,
    partner: Organization,
) -> None:
    [e164] = await inventory.add(1, pool=partner)
    await inventory.reserve([e164], partner, clock.now() + 3 * DAY)

    assert await run_sweep() == [Outcome.SENT]

    assert [m["To"] for m in inbox.messages] == ["owner@resell.test"]


@pytest.mark.parametrize("change", ["extend", "release", "assign"])
async def test_changing_a_reservation_cancels_its_pending_notice(
    inventory: World,
    inbox: Inbox,
    mailer: Mailer,
    clock: ManualClock,
    customer: Organization,
    change: str,
) -> None:
    [e164] = await inventory.add(1, pool=customer)
    await inventory.reserve([e164], customer, clock.now() + 3 * DAY)
    [notice_id] = (await sweep(inventory.db, clock, RULES)).notices_due
    if change == "extend":
        await inventory.extend([e164], clock.now() + 60 * DAY)
    elif change == "release":
        await inventory.release([e164])
    else:
        await inventory.assign([e164])

    outcome = await notice_delivery.deliver(
        inventory.db, notice_id, clock=clock, mailer=mailer, rules=RULES
    )

    assert outcome is Outcome.CANCELLED
    assert inbox.messages == []
    assert [n.status for n in await inventory.notices(e164)] == [NoticeStatus.CANCELLED]
    assert await inventory.events(e164, "NOTIFIED") == []


async def test_an_extension_within_the_week_gets_a_notice_of_its_own_end(
    inventory: World,
    inbox: Inbox,
    run_sweep: Sweeper,
    clock: ManualClock,
    customer: Organization,
) -> None:
    [e164] = await inventory.add(1, pool=customer)
    await inventory.reserve([e164], customer, clock.now() + 3 * DAY)
    await sweep(inventory.db, clock, RULES)
    new_end = clock.now() + 5 * DAY
    await inventory.extend([e164], new_end)

    assert await run_sweep() == [Outcome.SENT]

    old, new = await inventory.notices(e164)
    assert old.status is NoticeStatus.CANCELLED
    assert (new.status, new.expires_at) == (NoticeStatus.SENT, new_end)
    [mail] = inbox.messages
    assert "Saturday 7 March 2026, 09:00 UTC" in plain_text(mail)


async def test_support_hears_a_week_before_a_lock_lapses_and_when_it_has(
    inventory: World,
    inbox: Inbox,
    run_sweep: Sweeper,
    clock: ManualClock,
    customer: Organization,
) -> None:
    [e164] = await inventory.add(1, pool=customer)
    ends = clock.now() + 30 * DAY
    await inventory.lock([e164], ends)

    clock.set(ends - 7 * DAY)
    assert await run_sweep() == [Outcome.SENT]
    clock.set(ends)
    assert await run_sweep() == [Outcome.SENT]
    assert await run_sweep() == []

    ahead, lapsed = inbox.messages
    for mail in (ahead, lapsed):
        assert mail["To"] == "support@resell.test, noc@provider.test"
        assert e164 in plain_text(mail)
        assert "Acme" in plain_text(mail)
    assert "delete" in plain_text(ahead)
    assert "AVAILABLE again" in plain_text(lapsed)
    assert (await inventory.row(e164)).state is NumberState.AVAILABLE
    kinds = [(n.kind, n.status) for n in await inventory.notices(e164)]
    assert kinds == [
        (NoticeKind.LOCK_LAPSING, NoticeStatus.SENT),
        (NoticeKind.LOCK_LAPSED, NoticeStatus.SENT),
    ]
    assert len(await inventory.events(e164, "NOTIFIED")) == 2


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("pool_kind", "expected"),
    [
        ("partner", ["support@resell.test", "noc@provider.test"]),
        ("root", ["noc@provider.test"]),
    ],
)
async def test_a_lock_notice_goes_to_the_nearest_partner_at_or_above_the_pool(
    inventory: World,
    inbox: Inbox,
    run_sweep: Sweeper,
    clock: ManualClock,
    partner: Organization,
    pool_kind: str,
    expected: list[str],
) -> None:
    [e164] = await inventory.add(1, pool=partner if pool_kind == "partner" else None)
    await inventory.lock([e164], clock.now() + DAY)

    assert await run_sweep() == [Outcome.SENT]

    assert [m["To"] for m in inbox.messages] == [", ".join(expected)]


async def test_unlocking_cancels_the_lock_notice(
    inventory: World,
    inbox: Inbox,
    run_sweep: Sweeper,
    clock: ManualClock,
) -> None:
    [e164] = await inventory.add(1)
    await inventory.lock([e164], clock.now() + DAY)
    await sweep(inventory.db, clock, RULES)
    await inventory.unlock([e164])

    assert await run_sweep() == []

    assert inbox.messages == []
    assert [n.status for n in await inventory.notices(e164)] == [NoticeStatus.CANCELLED]


async def test_a_failed_send_is_retried_after_a_backoff_and_delivered_once(
    inventory: World,
    inbox: Inbox,
    run_sweep: Sweeper,
    clock: ManualClock,
    customer: Organization,
) -> None:
    [e164] = await inventory.add(1, pool=customer)
    await inventory.reserve([e164], customer, clock.now() + DAY)
    inbox.replies.extend(["451 4.3.0 try again later", "451 4.3.0 try again later"])

    assert await run_sweep() == [Outcome.RETRY]
    [notice] = await inventory.notices(e164)
    assert (notice.status, notice.attempts) == (NoticeStatus.PENDING, 1)
    assert notice.next_attempt_at == clock.now() + RULES.retry
    assert "451" in (notice.last_error or "")
    assert await run_sweep() == []  # not yet: backing off
    clock.advance(RULES.retry)
    assert await run_sweep() == [Outcome.RETRY]
    clock.advance(RULES.retry)
    assert await run_sweep() == []  # the second backoff is twice as long
    clock.advance(RULES.retry)
    assert await run_sweep() == [Outcome.SENT]

    assert len(inbox.messages) == 1
    [notice] = await inventory.notices(e164)
    assert (notice.status, notice.attempts, notice.last_error) == (NoticeStatus.SENT, 3, None)


async def test_a_notice_that_keeps_failing_is_marked_failed_and_shows_in_the_history(
    inventory: World,
    inbox: Inbox,
    run_sweep: Sweeper,
    clock: ManualClock,
    customer: Organization,
) -> None:
    [e164] = await inventory.add(1, pool=customer)
    await inventory.reserve([e164], customer, clock.now() + 3 * DAY)
    inbox.replies.extend(["421 4.3.2 shutting down"] * RULES.max_attempts)

    outcomes = []
    for _ in range(RULES.max_attempts):
        outcomes += await run_sweep()
        clock.advance(RULES.retry * 4)
    assert outcomes == [Outcome.RETRY, Outcome.RETRY, Outcome.FAILED]
    assert await run_sweep() == []

    [notice] = await inventory.notices(e164)
    assert notice.status is NoticeStatus.FAILED
    assert "421" in (notice.last_error or "")
    [event] = await inventory.events(e164, "NOTICE_FAILED")
    assert "421" in (event.remark or "")
    async with inventory.db.read() as session:
        assert [n.id for n, _ in await notices.failed(session)] == [notice.id]


@SQLITE_ONLY
async def test_a_refused_message_fails_at_once_and_a_missing_address_without_a_try(
    inventory: World,
    inbox: Inbox,
    run_sweep: Sweeper,
    clock: ManualClock,
    customer: Organization,
) -> None:
    no_billing = await inventory.org("Nobill", OrganizationKind.CUSTOMER, owner_email="o@n.test")
    refused, unaddressed = await inventory.add(2)
    await inventory.reserve([refused], customer, clock.now() + DAY)
    await inventory.reserve([unaddressed], no_billing, clock.now() + DAY)
    inbox.replies.append("550 5.7.1 message refused")

    assert await run_sweep() == [Outcome.FAILED, Outcome.FAILED]

    [first] = await inventory.notices(refused)
    assert (first.attempts, "550" in (first.last_error or "")) == (1, True)
    [second] = await inventory.notices(unaddressed)
    assert (second.attempts, second.last_error) == (0, "Nobill has no billing e-mail address")
    assert inbox.messages == []


async def test_a_notice_delivered_by_several_workers_at_once_goes_out_once(
    inventory: World,
    inbox: Inbox,
    mailer: Mailer,
    clock: ManualClock,
    database_url: str,
    customer: Organization,
) -> None:
    [e164] = await inventory.add(1, pool=customer)
    await inventory.reserve([e164], customer, clock.now() + DAY)
    [notice_id] = (await sweep(inventory.db, clock, RULES)).notices_due
    workers = [Database(database_url, pool_size=1) for _ in range(3)]
    try:
        outcomes = await asyncio.gather(
            *(
                notice_delivery.deliver(w, notice_id, clock=clock, mailer=mailer, rules=RULES)
                for w in workers
            )
        )
    finally:
        for worker in workers:
            await worker.dispose()

    assert sorted(outcomes) == [Outcome.SENT, Outcome.SKIPPED, Outcome.SKIPPED]
    assert len(inbox.messages) == 1
    assert len(await inventory.events(e164, "NOTIFIED")) == 1


async def test_a_notice_whose_worker_died_mid_send_goes_out_when_the_claim_runs_out(
    inventory: World,
    inbox: Inbox,
    run_sweep: Sweeper,
    clock: ManualClock,
    customer: Organization,
) -> None:
    [e164] = await inventory.add(1, pool=customer)
    await inventory.reserve([e164], customer, clock.now() + DAY)
    [notice_id] = (await sweep(inventory.db, clock, RULES)).notices_due
    async with inventory.db.write() as session:  # a worker claims it, then dies
        assert not isinstance(
            await notice_delivery._claim(session, notice_id, clock.now(), RULES), Outcome
        )

    assert await run_sweep() == []  # its claim still holds
    clock.advance(RULES.lease)
    assert await run_sweep() == [Outcome.SENT]

    assert len(inbox.messages) == 1
    [notice] = await inventory.notices(e164)
    assert (notice.status, notice.attempts) == (NoticeStatus.SENT, 2)


@SQLITE_ONLY
async def test_without_an_smtp_host_notices_are_written_to_the_log(
    inventory: World,
    clock: ManualClock,
    customer: Organization,
    caplog: pytest.LogCaptureFixture,
) -> None:
    [e164] = await inventory.add(1, pool=customer)
    await inventory.reserve([e164], customer, clock.now() + DAY)

    with caplog.at_level(logging.INFO, logger="numbra.mail"):
        _, outcomes = await sweep_and_deliver(inventory.db, clock, LogMailer(), RULES)

    assert list(outcomes.elements()) == [Outcome.SENT]
    [record] = [r for r in caplog.records if r.name == "numbra.mail"]
    assert "billing@acme.test" in record.getMessage()
    assert e164 in record.getMessage()


INJECTED = "Cust A1\nX-Injected: yes"


async def _two_tenants_lapsing(
    inventory: World, clock: ManualClock, partner: Organization
) -> tuple[Organization, str, str]:
    """Two customers, each with a reservation whose notice is due: a1's first, then b2's."""
    first = await inventory.org(
        "Cust A1", OrganizationKind.CUSTOMER, partner, billing_email="a@a1.test"
    )
    other = await inventory.org(
        "Cust B2", OrganizationKind.CUSTOMER, partner, billing_email="b@b2.test"
    )
    a1_number, b2_number = await inventory.add(2, pool=partner)
    await inventory.reserve([a1_number], first, clock.now() + DAY)
    await inventory.reserve([b2_number], other, clock.now() + 2 * DAY)
    return first, a1_number, b2_number


async def test_a_name_with_a_line_break_is_mailed_safely_and_holds_no_other_notice_back(
    inventory: World,
    inbox: Inbox,
    run_sweep: Sweeper,
    clock: ManualClock,
    partner: Organization,
) -> None:
    first, injected, plain = await _two_tenants_lapsing(inventory, clock, partner)
    # As legacy data would hold it: stored before names refused control characters.
    async with inventory.db.write() as session:
        await session.execute(
            sa.update(Organization).where(Organization.id == first.id).values(name=INJECTED)
        )

    assert await run_sweep() == [Outcome.SENT, Outcome.SENT]

    [to_other] = inbox.to("b@b2.test")
    assert plain in str(to_other["Subject"])
    [to_first] = inbox.to("a@a1.test")
    assert "X-Injected" not in to_first
    assert str(to_first["Subject"]).startswith(
        f"Reservation of {injected} for Cust A1 X-Injected: yes "
    )
    assert [n.status for n in await inventory.notices(plain)] == [NoticeStatus.SENT]


class Exploding:
    """A mailer that fails unexpectedly (not a MailError) for one recipient."""

    def __init__(self, mailer: Mailer, address: str) -> None:
        self.mailer, self.address = mailer, address

    async def send(self, message: EmailMessage) -> list[str]:
        if self.address in str(message["To"]):
            raise RuntimeError("the mailer broke")
        return await self.mailer.send(message)


async def test_a_notice_failing_unexpectedly_is_retried_and_the_others_go_out(
    inventory: World,
    inbox: Inbox,
    mailer: Mailer,
    clock: ManualClock,
    partner: Organization,
) -> None:
    _, broken, _ = await _two_tenants_lapsing(inventory, clock, partner)

    _, outcomes = await sweep_and_deliver(
        inventory.db, clock, Exploding(mailer, "a@a1.test"), RULES
    )

    assert sorted(outcomes.elements()) == [Outcome.RETRY, Outcome.SENT]
    assert [m["To"] for m in inbox.messages] == ["b@b2.test"]
    [notice] = await inventory.notices(broken)
    assert (notice.status, notice.attempts) == (NoticeStatus.PENDING, 1)
    assert "RuntimeError: the mailer broke" in (notice.last_error or "")
