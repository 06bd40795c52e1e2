"""The provider's support hears once per token and day when a token's intake is refused,
through the notice outbox and a real SMTP server (DESIGN, "Intake and integrity")."""

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from domain import access, intake, tokens
from domain.access import Caller
from domain.clock import ManualClock
from domain.errors import DomainError, ErrorCode
from domain.mail import Mailer, SmtpMailer
from domain.notice_delivery import Outcome
from domain.notices import NoticeRules
from domain.policy import Policy
from domain.sweep import sweep_and_deliver
from domain.transactions import write
from models import Notice, NoticeKind, NoticeStatus, OrganizationKind, Role
from models.database import Database
from settings import Settings
from tests.support.mail import Inbox, html_text, plain_text, smtp_server
from tests.support.world import World, allow_intake

RULES = NoticeRules(
    before=timedelta(days=7),
    retry=timedelta(minutes=1),
    max_attempts=3,
    lease=timedelta(minutes=5),
    sender="numbra@operator.test",
)
LIMIT = 2


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


async def reseller_desk(db: Database, clock: ManualClock, world: World) -> Caller:
    partner = await world.org("Resell\nX-Injected: yes", OrganizationKind.PARTNER)
    await allow_intake(db, partner)
    async with db.write() as session:
        raw = await tokens.issue(session, partner, "probe desk", Role.ADMIN, clock)
    async with db.read() as session:
        viewer = await access.authenticate(session, raw)
    assert viewer is not None
    return Caller(viewer, clock, Policy(intake_refusals_per_day=LIMIT))


async def sweep(db: Database, clock: ManualClock, mailer: Mailer) -> list[Outcome]:
    _, outcomes = await sweep_and_deliver(db, clock, mailer, RULES)
    return sorted(outcomes.elements())


async def intake_notices(db: Database) -> list[Notice]:
    async with db.read() as session:
        query = sa.select(Notice).where(Notice.kind == NoticeKind.INTAKE_LIMIT_REACHED)
        return list((await session.scalars(query)).all())


async def test_support_hears_once_per_token_and_day(
    db: Database, clock: ManualClock, smtp: tuple[Inbox, int], mailer: Mailer
) -> None:
    inbox = smtp[0]
    world = await World.create(db, clock, support_email="noc@provider.test")
    caller = await reseller_desk(db, clock, world)
    async with db.write() as session:
        await intake.count(session, caller, LIMIT)
    assert await intake_notices(db) == []

    async with db.write() as session:
        await intake.count(session, caller, 1)
    async with db.read() as session:
        with pytest.raises(DomainError) as refused:
            await intake.admit(session, caller)
    assert [p.code for p in refused.value.problems] == [ErrorCode.RATE_LIMITED]
    async with db.write() as session:
        await intake.count(session, caller, 5)
    assert await sweep(db, clock, mailer) == [Outcome.SENT]
    assert await sweep(db, clock, mailer) == []

    [mail] = inbox.messages
    assert mail["To"] == "noc@provider.test"
    assert "X-Injected" not in mail
    assert "3 March 2026, 00:00 UTC" in mail["Subject"]
    text = plain_text(mail)
    for words in ("probe desk", "Resell", "mayAddNumbers", "3 March 2026, 00:00 UTC"):
        assert words in text
    assert "probe desk" in html_text(mail)
    [notice] = await intake_notices(db)
    assert (notice.status, notice.number_id) == (NoticeStatus.SENT, None)

    # The next day begins afresh, and a second refusal is told again.
    clock.advance(timedelta(days=1))
    async with db.read() as session:
        assert await intake.admit(session, caller) == LIMIT
    async with db.write() as session:
        await intake.count(session, caller, LIMIT + 1)
    assert await sweep(db, clock, mailer) == [Outcome.SENT]
    assert len(inbox.messages) == 2


async def test_a_refusal_rolled_back_is_neither_counted_nor_told(
    db: Database, clock: ManualClock, mailer: Mailer, smtp: tuple[Inbox, int]
) -> None:
    world = await World.create(db, clock, support_email="noc@provider.test")
    caller = await reseller_desk(db, clock, world)

    async def count_then_fail() -> None:
        async with write(db) as session:
            await intake.count(session, caller, LIMIT + 1)
            raise RuntimeError("the request failed after counting")

    with pytest.raises(RuntimeError):
        await count_then_fail()
    assert await intake_notices(db) == []
    assert await sweep(db, clock, mailer) == []
    async with db.read() as session:
        assert await intake.admit(session, caller) == LIMIT


async def test_without_a_support_address_the_notice_fails_and_holds_nothing_back(
    db: Database, clock: ManualClock, mailer: Mailer, smtp: tuple[Inbox, int]
) -> None:
    world = await World.create(db, clock)
    caller = await reseller_desk(db, clock, world)
    async with db.write() as session:
        await intake.count(session, caller, LIMIT + 1)
    assert await sweep(db, clock, mailer) == [Outcome.FAILED]
    [notice] = await intake_notices(db)
    assert notice.status is NoticeStatus.FAILED
    assert notice.last_error == "the provider has no support e-mail"
