"""The notice before a port order's FOC date: the pool's owner and the nearest partner's
support hear once per (order, focDate), through a real SMTP server; a new date sends a new
notice and cancels the old one; a closed order's notice is never sent."""

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from domain import ids, notices, porting
from domain.clock import ManualClock
from domain.mail import Mailer, SmtpMailer
from domain.notice_delivery import Outcome
from domain.notices import NoticeRules
from domain.port_notices import schedule
from domain.sweep import sweep_and_deliver
from models import Notice, NoticeKind, NoticeStatus, Organization, OrganizationKind, PortOrder
from models.database import Database
from settings import Settings
from tests.support.mail import Inbox, plain_text, smtp_server
from tests.support.world import World

DAY = timedelta(days=1)
RULES = NoticeRules(
    before=7 * DAY,
    retry=timedelta(minutes=1),
    max_attempts=3,
    lease=timedelta(minutes=5),
    sender="numbra@operator.test",
    port_before=2 * DAY,
)
Action = porting.OrderAction


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def mailer(smtp: tuple[Inbox, int]) -> Mailer:
    settings = Settings(
        _env_file=None, smtp_host="127.0.0.1", smtp_port=smtp[1], smtp_timeout_seconds=5
    )
    return SmtpMailer(settings)


@pytest.fixture
async def world(db: Database, clock: ManualClock) -> World:
    return await World.create(db, clock, support_email="noc@provider.test")


async def _pool(world: World) -> Organization:
    partner = await world.org(
        "Resell", OrganizationKind.PARTNER, support_email="support@resell.test"
    )
    return await world.org(
        "Acme",
        OrganizationKind.CUSTOMER,
        partner,
        owner_email="owner@acme.test",
        billing_email="billing@acme.test",
    )


async def _order(world: World, pool: Organization) -> str:
    [e164] = await world.add(1, pool=pool)
    order: PortOrder = await world.run(
        porting.create_port_out, [e164], carrier="Gaining", reference="PO-7", remark=None
    )
    key = ids.encode(porting.TYPE_NAME, order.uuid)
    await world.run(porting.act, key, Action.SUBMIT, remark=None)
    return key


async def _sweep(world: World, mailer: Mailer, clock: ManualClock) -> list[Outcome]:
    _, outcomes = await sweep_and_deliver(world.db, clock, mailer, RULES)
    return sorted(outcomes.elements())


async def _notices(world: World) -> list[tuple[NoticeStatus, datetime]]:
    async with world.db.read() as session:
        rows = await session.execute(
            sa.select(Notice.status, Notice.expires_at)
            .where(Notice.kind == NoticeKind.PORT_FOC_NEAR)
            .order_by(Notice.id)
        )
        return [(status, expires_at) for status, expires_at in rows]


async def test_the_owner_and_the_partner_hear_two_days_before_the_foc_date_once(
    world: World, mailer: Mailer, clock: ManualClock, smtp: tuple[Inbox, int]
) -> None:
    inbox = smtp[0]
    order = await _order(world, await _pool(world))
    foc = clock.now() + 10 * DAY
    await world.run(porting.act, order, Action.CONFIRM, remark=None, foc_date=foc)

    clock.set(foc - 2 * DAY - timedelta(minutes=1))
    assert await _sweep(world, mailer, clock) == []
    clock.advance(timedelta(minutes=2))
    assert await _sweep(world, mailer, clock) == [Outcome.SENT]
    clock.advance(timedelta(hours=1))
    assert await _sweep(world, mailer, clock) == []

    [mail] = inbox.messages
    assert sorted(a.strip() for a in mail["To"].split(",")) == [
        "owner@acme.test",
        "support@resell.test",
    ]
    text = plain_text(mail)
    for words in ("Acme", "Gaining", "PO-7", "OUT"):
        assert words in text
    assert await _notices(world) == [(NoticeStatus.SENT, foc)]


async def test_a_new_foc_date_cancels_the_old_notice_and_gets_its_own(
    world: World, mailer: Mailer, clock: ManualClock, smtp: tuple[Inbox, int]
) -> None:
    inbox = smtp[0]
    order = await _order(world, await _pool(world))
    first = clock.now() + DAY
    await world.run(porting.act, order, Action.CONFIRM, remark=None, foc_date=first)
    # Scheduled (within two days) but not yet delivered when the date moves.
    async with world.db.write() as session:
        assert await schedule(session, clock.now(), RULES.port_before) == 1
    later = clock.now() + 5 * DAY
    await world.run(porting.act, order, Action.CONFIRM, remark=None, foc_date=later)
    assert await _notices(world) == [(NoticeStatus.CANCELLED, first)]
    assert await _sweep(world, mailer, clock) == []
    clock.set(later - 2 * DAY)
    assert await _sweep(world, mailer, clock) == [Outcome.SENT]
    assert await _notices(world) == [
        (NoticeStatus.CANCELLED, first),
        (NoticeStatus.SENT, later),
    ]
    assert len(inbox.messages) == 1


async def test_a_cancelled_order_s_notice_is_not_sent(
    world: World, mailer: Mailer, clock: ManualClock, smtp: tuple[Inbox, int]
) -> None:
    order = await _order(world, await _pool(world))
    foc = clock.now() + DAY
    await world.run(porting.act, order, Action.CONFIRM, remark=None, foc_date=foc)
    async with world.db.write() as session:
        await schedule(session, clock.now(), RULES.port_before)
    await world.run(porting.act, order, Action.CANCEL, remark=None)
    assert await _sweep(world, mailer, clock) == []
    assert await _notices(world) == [(NoticeStatus.CANCELLED, foc)]
    assert smtp[0].messages == []


async def test_a_reservation_warning_cancelled_while_porting_applies_again_once_back(
    world: World, mailer: Mailer, clock: ManualClock, smtp: tuple[Inbox, int]
) -> None:
    pool = await _pool(world)
    [e164] = await world.add(1, pool=pool)
    ends = clock.now() + 5 * DAY
    await world.reserve([e164], pool, ends)
    async with world.db.write() as session:
        assert await notices.schedule(session, clock.now(), RULES.before) == 1
    order: PortOrder = await world.run(
        porting.create_port_out, [e164], carrier="Gaining", reference=None, remark=None
    )
    async with world.db.write() as session:
        assert await notices.cancel_stale(session) == 1
    key = ids.encode(porting.TYPE_NAME, order.uuid)
    await world.run(porting.act, key, Action.CANCEL, remark=None)
    assert await _sweep(world, mailer, clock) == [Outcome.SENT]
    [mail] = smtp[0].messages
    assert e164 in mail["Subject"]
