"""Intake: who may bring numbers into the inventory, and how often a token may hear that
a number is already held elsewhere.

Numbers enter (add, import; port-in later) through the provider's ADMINs and those of
organizations an ancestor has allowed (`domain.organizations.may_add_numbers`).

A number is unique across the inventory, so an intake must refuse one held anywhere,
even outside the caller's subtree: that answer cannot be hidden, only made to say no
more than "already in the inventory" (not where, not in what state) and rationed. Each
such answer is counted for the token and the UTC day, dry runs included; a request that
would take the token past NUMBRA_INTAKE_REFUSALS_PER_DAY is refused whole with
RATE_LIMITED, without the answers, and so is all its intake until the day ends. The
first time a token goes past the limit on a day, a notice to the provider's support is
queued in the transaction that counted it.

A request that gets such answers is refused (its numbers are not new), so its own
transaction is rolled back: the count is what it keeps (`DomainError.keep`), written in
a transaction of its own. Two requests of one token at once may each get the answers the
allowance had left when they began: the limit bounds a token's answers a day to about
itself plus what one request can ask.
"""

from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain import notices
from domain.access import Caller
from domain.errors import DomainError, ErrorCode, Kept
from domain.organizations import may_add_numbers
from models import IntakeRefusal, Organization, Role

# The answer about a number held anywhere: the same wherever and in whatever state it is.
HELD = "is already in the inventory"
# What an uncounted caller (no token: the operator's CLI) may be told.
UNLIMITED = 1 << 62


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def day_ends(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


async def admit(session: AsyncSession, caller: Caller) -> int:
    """How many more answers about numbers held elsewhere the caller may get today.

    Refuses a caller that is no ADMIN or whose organization may not add numbers
    (FORBIDDEN), and a token past today's limit (RATE_LIMITED).
    """
    viewer = caller.viewer
    viewer.require(Role.ADMIN)
    org = await session.get(Organization, viewer.org_id)
    assert org is not None
    if not may_add_numbers(org):
        raise DomainError.one(
            ErrorCode.FORBIDDEN,
            "your organization may not bring numbers into the inventory; an ADMIN of an "
            "organization above it can allow it (mayAddNumbers)",
        )
    if not viewer.has_token:
        return UNLIMITED
    today = day_of(caller.clock.now())
    used = await session.scalar(
        sa.select(IntakeRefusal.count).where(
            IntakeRefusal.token_id == viewer.token_id, IntakeRefusal.day == today
        )
    )
    limit = caller.policy.intake_refusals_per_day
    if (used or 0) > limit:
        raise refused(caller)
    return limit - (used or 0)


def refused(caller: Caller, keep: Kept | None = None, written: str = "") -> DomainError:
    """The refusal of a token past today's limit; `keep` counts what it asked."""
    until = day_ends(day_of(caller.clock.now()))
    return DomainError.one(
        ErrorCode.RATE_LIMITED,
        f"this token was told more than {caller.policy.intake_refusals_per_day} times today "
        f"that numbers it named are already in the inventory; it may add or import numbers "
        f"again from {until:%Y-%m-%d %H:%M} UTC{written}",
        keep=keep,
    )


def counting(caller: Caller, answers: int) -> Kept | None:
    """What a request that got `answers` answers about numbers held elsewhere keeps."""
    if answers <= 0 or not caller.viewer.has_token:
        return None

    async def keep(session: AsyncSession) -> None:
        await count(session, caller, answers)

    return keep


async def count(session: AsyncSession, caller: Caller, answers: int) -> None:
    """Add `answers` to the token's count of the day; past the limit, queue the notice."""
    viewer = caller.viewer
    if answers <= 0 or not viewer.has_token:
        return
    now = caller.clock.now()
    today = day_of(now)
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    table = IntakeRefusal.__table__
    insert = dialect.insert(table).values(token_id=viewer.token_id, day=today, count=answers)
    statement = insert.on_conflict_do_update(
        index_elements=["token_id", "day"],
        set_={"count": table.c.count + insert.excluded.count},
    ).returning(table.c.count)
    total = (await session.execute(statement)).scalar_one()
    if total > caller.policy.intake_refusals_per_day:
        await notices.intake_limit_reached(session, viewer.token_id, day_ends(today), now)
