"""The paid service term Numbra renews itself: assign with a term, cancel, restore, renew,
billing cycles, and the sweep's renewals and service ends (DESIGN.md, "Lifecycle, version 2").

A number assigned with `billing` has a term: a period of 1, 3, 6 or 12 calendar months,
the end of what is paid (`paid_until`), the renewals still to come (`billing_cycles`,
null: unlimited) and, once cancelled, `cancelled_at`. At `paid_until` the sweep renews a
term that renews (one RENEWED event per period, cycles - 1 unless unlimited) or ends the
service: the number is held for its owner (RESERVED, CANCELLED or SUBSCRIPTION_EXPIRED)
for the hold period, as after a subscription's expiry. A number assigned without a term
is driven by the billing system's subscription events, as in version 1.

The states a term is in service in are those the lifecycle table lets a term be
cancelled from (`IN_SERVICE`): adding one there adds it everywhere here.
"""

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain import notices, text
from domain.access import Caller
from domain.errors import ErrorCode, Problems
from domain.items import load_items, move
from domain.lifecycle import TRANSITIONS, Action, filled_in, record_each
from domain.policy import Policy
from models import (
    Notice,
    NoticeKind,
    NoticeStatus,
    Number,
    NumberState,
    ReservationKind,
    ReservationReason,
    Role,
)
from models.base import UTCDateTime
from models.database import Database

PERIODS = (1, 3, 6, 12)
MAX_CYCLES = 999
MAX_RENEW_PERIODS = 12
IN_SERVICE = tuple(TRANSITIONS[Action.CANCEL])
# Reasons a number is held for its owner after its term ended; renewNumbers brings it back.
ENDED = (ReservationReason.CANCELLED, ReservationReason.SUBSCRIPTION_EXPIRED)
# Terms renewed or ended per transaction of the sweep.
BATCH = 5_000


@dataclass(frozen=True)
class TermInput:
    period_months: int | None = 1
    paid_until: datetime | None = None
    cycles: int | None = None


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar months: 31 Jan + 1 month = 28 (29) Feb."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def renews(row: Number) -> bool:
    return row.cancelled_at is None and (row.billing_cycles is None or row.billing_cycles > 0)


def _check_cycles(problems: Problems, cycles: int | None, field: list[str]) -> None:
    if cycles is not None and not 0 <= cycles <= MAX_CYCLES:
        problems.add(
            ErrorCode.VALIDATION, f"cycles must be null (unlimited) or 0 to {MAX_CYCLES}", field
        )


def check(problems: Problems, term: TermInput | None, now: datetime) -> dict[str, Any]:
    """The columns a term given to assignNumbers sets (none without one), once checked."""
    if term is None:
        return {}
    period = term.period_months
    if period not in PERIODS:
        problems.add(
            ErrorCode.VALIDATION,
            "periodMonths must be 1, 3, 6 or 12",
            ["input", "billing", "periodMonths"],
        )
        return {}
    paid_until = term.paid_until or add_months(now, period)
    if paid_until <= now:
        problems.add(
            ErrorCode.VALIDATION,
            "paidUntil must be in the future",
            ["input", "billing", "paidUntil"],
        )
    _check_cycles(problems, term.cycles, ["input", "billing", "billingCycles"])
    return {
        "billing_period_months": period,
        "paid_until": paid_until,
        "billing_cycles": term.cycles,
        "cancelled_at": None,
    }


def _no_term(row: Number) -> str | None:
    if row.billing_period_months is None or row.paid_until is None:
        return (
            f"{row.e164} has no billing term: it was assigned without one, so the billing "
            f"system drives its subscription"
        )
    return None


async def cancel(
    session: AsyncSession, caller: Caller, numbers: Sequence[str], *, remark: str | None
) -> list[Number]:
    """The service ends at paid-until and is not renewed."""
    caller.viewer.require(Role.OPERATOR)
    problems = Problems()
    now = caller.clock.now()
    items = await load_items(session, caller, numbers, problems)

    def guard(row: Number) -> str | None:
        if (refusal := _no_term(row)) is not None:
            return refusal
        if row.cancelled_at is not None:
            return f"{row.e164} is already cancelled"
        return None

    return await move(
        session,
        caller,
        problems,
        items,
        Action.CANCEL,
        guard=guard,
        remark=remark,
        values=lambda _row: {"cancelled_at": now},
    )


async def restore(
    session: AsyncSession, caller: Caller, numbers: Sequence[str], *, remark: str | None
) -> list[Number]:
    """A cancelled term renews again, if restored before it ends."""
    caller.viewer.require(Role.OPERATOR)
    problems = Problems()
    now = caller.clock.now()
    items = await load_items(session, caller, numbers, problems)

    def guard(row: Number) -> str | None:
        if (refusal := _no_term(row)) is not None:
            return refusal
        if row.cancelled_at is None:
            return f"{row.e164} is not cancelled"
        assert row.paid_until is not None
        if row.paid_until <= now:
            return f"{row.e164}'s term ended at {row.paid_until.isoformat()}: renew it instead"
        return None

    return await move(
        session,
        caller,
        problems,
        items,
        Action.RESTORE,
        guard=guard,
        remark=remark,
        values=lambda _row: {"cancelled_at": None},
    )


async def renew(
    session: AsyncSession,
    caller: Caller,
    numbers: Sequence[str],
    *,
    periods: int | None,
    remark: str | None,
) -> list[Number]:
    """Pay `periods` more: in service, paid-until moves on; held after its term ended, the
    number returns to its subscription and owner, paid from now."""
    caller.viewer.require(Role.OPERATOR)
    problems = Problems()
    now = caller.clock.now()
    count = 1 if periods is None else periods
    if not 1 <= count <= MAX_RENEW_PERIODS:
        problems.add(
            ErrorCode.VALIDATION,
            f"periods must be 1 to {MAX_RENEW_PERIODS}",
            ["input", "periods"],
        )
    items = await load_items(session, caller, numbers, problems)

    def guard(row: Number) -> str | None:
        if row.state is NumberState.RESERVED:
            if (
                row.reservation_reason not in ENDED
                or row.billing_period_months is None
                or row.held_for_subscription_uuid is None
            ):
                return f"{row.e164} is RESERVED, but not held after its billing term ended"
            if row.expires_at is not None and row.expires_at <= now:
                return f"{row.e164}'s hold ended at {row.expires_at.isoformat()}"
            return None
        return _no_term(row)

    def values(row: Number) -> dict[str, Any]:
        assert row.billing_period_months is not None
        months = count * row.billing_period_months
        if row.state is NumberState.RESERVED:
            return {
                "subscription_uuid": row.held_for_subscription_uuid,
                "owner_id": row.reserved_for_id,
                "billing_period_months": row.billing_period_months,
                "billing_cycles": row.billing_cycles,
                "paid_until": add_months(now, months),
            }
        assert row.paid_until is not None
        return {"paid_until": add_months(row.paid_until, months)}

    return await move(
        session,
        caller,
        problems,
        items,
        Action.RENEW,
        guard=guard,
        remark=remark,
        values=values,
    )


async def set_cycles(
    session: AsyncSession,
    caller: Caller,
    numbers: Sequence[str],
    *,
    cycles: int | None,
    remark: str | None,
) -> list[Number]:
    caller.viewer.require(Role.OPERATOR)
    problems = Problems()
    _check_cycles(problems, cycles, ["input", "cycles"])
    items = await load_items(session, caller, numbers, problems)
    text.check(problems, remark, "remark", free_text=True)
    return await move(
        session,
        caller,
        problems,
        items,
        Action.SET_BILLING_CYCLES,
        guard=_no_term,
        remark=remark,
        values=lambda _row: {"billing_cycles": cycles},
    )


# ---- the sweep: set-based, each statement guarded by what it expects ----


def _renewing() -> sa.ColumnElement[bool]:
    return sa.and_(
        Number.cancelled_at.is_(None),
        sa.or_(Number.billing_cycles.is_(None), Number.billing_cycles > 0),
    )


def _due(now: datetime) -> sa.ColumnElement[bool]:
    # The partial index ix_numbers_paid_until serves `paid_until <= now` (a term has one).
    return sa.and_(
        Number.paid_until.is_not(None), Number.paid_until <= now, Number.state.in_(IN_SERVICE)
    )


def _text(value: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    """As text, so `+` is SQLite's `||`."""
    return sa.type_coerce(value, sa.String())


def _next_paid_until(dialect: str) -> sa.ColumnElement[Any]:
    """paid_until + one period, in calendar months, computed by the database."""
    months = Number.billing_period_months
    if dialect == "postgresql":
        utc = sa.func.timezone("UTC", Number.paid_until)
        shifted = utc + sa.func.make_interval(0, months)
        return sa.type_coerce(sa.func.timezone("UTC", shifted), UTCDateTime())
    # SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff' text: move the date part and keep the time.
    # date(x, '+n months') overflows (31 Jan + 1 = 3 Mar): then take the target month's end.
    stamp = sa.type_coerce(Number.paid_until, sa.String())
    plus = sa.literal("+") + sa.cast(months, sa.String()) + sa.literal(" months")
    shifted = sa.func.date(stamp, plus)
    month_end = sa.func.date(
        stamp,
        "start of month",
        sa.literal("+") + sa.cast(months + 1, sa.String()) + sa.literal(" months"),
        "-1 day",
    )
    day = sa.case(
        (sa.func.substr(shifted, 9, 2) == sa.func.substr(stamp, 9, 2), shifted),
        else_=month_end,
    )
    return sa.type_coerce(_text(day) + sa.func.substr(stamp, 11), UTCDateTime())


async def renew_due(session: AsyncSession, now: datetime, limit: int = BATCH) -> list[int]:
    """Renew one period of up to `limit` due terms that renew; return the ids renewed.

    The UPDATE is guarded by the term being due and renewing, so a concurrent sweep that
    renewed a term first leaves it a period later: renewed again only if that period is
    due too. Each period is renewed once, with one event.
    """
    due = (
        sa.select(Number.id)
        .where(_due(now), _renewing())
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await session.scalars(due)).all())
    if not ids:
        return []
    dialect = session.get_bind().dialect.name
    renewed = list(
        (
            await session.scalars(
                sa.update(Number)
                .where(Number.id.in_(ids), _due(now), _renewing())
                .values(
                    paid_until=_next_paid_until(dialect),
                    billing_cycles=sa.case(
                        (Number.billing_cycles.is_(None), None), else_=Number.billing_cycles - 1
                    ),
                )
                .returning(Number.id)
                .execution_options(synchronize_session=False)
            )
        ).all()
    )
    await record_each(
        session,
        renewed,
        Action.RENEW.value,
        actor=notices.SYSTEM,
        at=now,
        remark="the billing term renewed",
    )
    return renewed


def _plus_days(dialect: str, days: int) -> sa.ColumnElement[Any]:
    if dialect == "postgresql":
        return sa.type_coerce(
            Number.paid_until + sa.func.make_interval(0, 0, 0, days), UTCDateTime()
        )
    stamp = sa.type_coerce(Number.paid_until, sa.String())
    moved = sa.func.strftime("%Y-%m-%d %H:%M:%S", stamp, f"+{days} days")
    return sa.type_coerce(_text(moved) + sa.func.substr(stamp, 20), UTCDateTime())


async def end_due(
    session: AsyncSession, now: datetime, policy: Policy, limit: int = BATCH
) -> list[int]:
    """End the service of up to `limit` due terms that do not renew: each number is held
    for its owner from paid-until for the hold period (the aging pool)."""
    due = (
        sa.select(Number.id, Number.state)
        .where(_due(now), ~_renewing())
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    found = (await session.execute(due)).all()
    if not found:
        return []
    dialect = session.get_bind().dialect.name
    ended: list[int] = []
    for state in {state for _id, state in found}:
        ids = [number_id for number_id, s in found if s is state]
        to_state = TRANSITIONS[Action.SERVICE_END][state]
        kept = set(filled_in(to_state))
        cleared = {c: None for c in filled_in(state) if c not in kept}
        cancelled = Number.cancelled_at.is_not(None)
        values: dict[str, Any] = {
            **cleared,
            "state": to_state,
            "state_changed_at": now,
            "reservation_kind": ReservationKind.FREE,
            "reservation_reason": sa.case(
                (cancelled, ReservationReason.CANCELLED.value),
                else_=ReservationReason.SUBSCRIPTION_EXPIRED.value,
            ),
            "reserved_for_id": Number.owner_id,
            "held_for_subscription_uuid": Number.subscription_uuid,
            "reserved_at": Number.paid_until,
            "reservation_remark": sa.case(
                (cancelled, "the service was cancelled"), else_="no billing cycles were left"
            ),
            "expires_at": sa.case(
                (cancelled, _plus_days(dialect, policy.cancelled_hold.days)),
                else_=_plus_days(dialect, policy.expired_hold.days),
            ),
        }
        rows = list(
            (
                await session.scalars(
                    sa.update(Number)
                    .where(Number.id.in_(ids), Number.state == state, _due(now), ~_renewing())
                    .values(values)
                    .returning(Number.id)
                    .execution_options(synchronize_session=False)
                )
            ).all()
        )
        await record_each(
            session,
            rows,
            Action.SERVICE_END.value,
            actor=notices.SYSTEM,
            at=now,
            remark="the billing term ended",
            change=(state, to_state),
        )
        ended.extend(rows)
    return ended


@dataclass(frozen=True)
class TermReport:
    renewed: int
    ended: int


async def sweep_terms(db: Database, now: datetime, policy: Policy) -> TermReport:
    """Renew or end every term due at `now`, a period at a time, in the order they fell due:
    a sweep that was down for several periods catches up here."""
    # Every renewal first, then every end: a term ends only once no period of it renews,
    # and the ends' scan does not walk the renewing terms again after each batch.
    renewed = ended = 0
    while True:
        async with db.write() as session:
            batch = await renew_due(session, now, BATCH)
        renewed += len(batch)
        if not batch:
            break
    while True:
        async with db.write() as session:
            gone = await end_due(session, now, policy, BATCH)
        ended += len(gone)
        if not gone:
            return TermReport(renewed, ended)


# ---- the "service ending" notice: to the owner's billing e-mail, once per paid-until ----


def ending(row: Number, paid_until: datetime) -> bool:
    """Whether the number's term still ends, unrenewed, at `paid_until`."""
    return row.state in IN_SERVICE and row.paid_until == paid_until and not renews(row)


async def schedule_notices(session: AsyncSession, now: datetime, before: timedelta) -> int:
    """SERVICE_ENDING notices for terms that will not renew and end within `before`."""
    if before <= timedelta(0):
        return 0
    noticed = sa.exists().where(
        Notice.number_id == Number.id,
        Notice.kind == NoticeKind.SERVICE_ENDING,
        Notice.expires_at == Number.paid_until,
    )
    query = sa.select(Number.id, Number.paid_until).where(
        Number.state.in_(IN_SERVICE),
        Number.paid_until > now,
        Number.paid_until <= now + before,
        ~_renewing(),
        ~noticed,
    )
    rows = []
    for number_id, paid_until in await session.execute(query):
        assert paid_until is not None
        rows.append(
            notices.new_row(
                number_id, NoticeKind.SERVICE_ENDING, paid_until, paid_until - before, now
            )
        )
    await notices.insert_new(session, rows)
    return len(rows)


async def cancel_stale_notices(session: AsyncSession) -> int:
    """Cancel pending SERVICE_ENDING notices whose term was restored, renewed, given cycles or
    has ended otherwise."""
    still_applies = sa.exists().where(
        Number.id == Notice.number_id,
        Number.state.in_(IN_SERVICE),
        Number.paid_until == Notice.expires_at,
        ~_renewing(),
    )
    result = await session.execute(
        sa.update(Notice)
        .where(
            Notice.kind == NoticeKind.SERVICE_ENDING,
            Notice.status == NoticeStatus.PENDING,
            ~still_applies,
        )
        .values(status=NoticeStatus.CANCELLED)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
