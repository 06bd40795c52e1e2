"""Notices before (and when) reservations and locks lapse: an outbox, delivered once per key.

A notice is a row keyed by (number, kind, expiry). The sweep derives them from the
numbers table when they fall due, so nothing else has to remember to schedule them:
a reservation or lock that ends within the notice period gets its notice (at once if
it was made with less time left), and a second sweep finds the key taken. Extending,
releasing, assigning, unlocking or deleting changes the number's state or end, so a
pending notice about the old end no longer matches the number: it is cancelled, not
sent, and a new end gets notices of its own when they fall due.

Delivery is claim, send, mark. The claim is a guarded UPDATE that takes the notice for
a lease; only one worker wins it. A worker that dies mid-send leaves the claim to run
out, and the next sweep hands the notice out again; a failed send is retried with a
doubling backoff, and after the last attempt the notice is FAILED, logged, and written
to the number's history, never dropped.
"""

import enum
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain import lifecycle
from domain.clock import Clock
from domain.mail import Mailer, MailError, NoticeMail, compose
from models import (
    Notice,
    NoticeKind,
    NoticeStatus,
    Number,
    NumberState,
    Organization,
    OrganizationKind,
)
from models.database import Database
from settings import Settings

log = logging.getLogger("numbra.notices")

SYSTEM = "system"
NOTIFIED = "NOTIFIED"
NOTICE_FAILED = "NOTICE_FAILED"
# Notices handed out per sweep; the rest wait for the next one.
MAX_DUE = 10_000

# Warnings ahead of an end, and the state the number must still be in for them to apply.
AHEAD: Mapping[NoticeKind, NumberState] = {
    NoticeKind.RESERVATION_LAPSING: NumberState.RESERVED,
    NoticeKind.LOCK_LAPSING: NumberState.LOCKED,
}
OPEN = (NoticeStatus.PENDING, NoticeStatus.SENDING)


@dataclass(frozen=True)
class NoticeRules:
    before: timedelta = timedelta(days=7)
    retry: timedelta = timedelta(minutes=1)
    max_attempts: int = 10
    lease: timedelta = timedelta(minutes=5)
    sender: str = "numbra@localhost"

    @classmethod
    def from_settings(cls, settings: Settings) -> "NoticeRules":
        return cls(
            before=timedelta(days=settings.notice_days_before),
            retry=timedelta(seconds=settings.notice_retry_seconds),
            max_attempts=settings.notice_max_attempts,
            lease=timedelta(seconds=settings.notice_lease_seconds),
            sender=settings.mail_from,
        )

    def backoff(self, attempts: int) -> timedelta:
        return self.retry * (1 << max(attempts - 1, 0))


async def _insert_new(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert notices, skipping any whose key a concurrent sweep has just taken."""
    if not rows:
        return
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    statement = dialect.insert(Notice.__table__).on_conflict_do_nothing(
        index_elements=["number_id", "kind", "expires_at"]
    )
    await session.execute(statement, list(rows))


def _row(
    number_id: int, kind: NoticeKind, expires_at: datetime, due_at: datetime, now: datetime
) -> dict[str, Any]:
    return {
        "number_id": number_id,
        "kind": kind,
        "expires_at": expires_at,
        "due_at": due_at,
        "status": NoticeStatus.PENDING,
        "next_attempt_at": now,
        "attempts": 0,
        "created_at": now,
    }


async def schedule(session: AsyncSession, now: datetime, before: timedelta) -> int:
    """Add the warnings now due: reservations and locks ending within `before`."""
    if before <= timedelta(0):
        return 0
    rows = []
    for kind, state in AHEAD.items():
        noticed = sa.exists().where(
            Notice.number_id == Number.id,
            Notice.kind == kind,
            Notice.expires_at == Number.expires_at,
        )
        query = sa.select(Number.id, Number.expires_at).where(
            Number.state == state,
            Number.expires_at > now,
            Number.expires_at <= now + before,
            ~noticed,
        )
        for number_id, expires_at in await session.execute(query):
            assert expires_at is not None  # the range above excludes null ends
            rows.append(_row(number_id, kind, expires_at, expires_at - before, now))
    await _insert_new(session, rows)
    return len(rows)


async def lock_lapsed(
    session: AsyncSession, ends: Sequence[tuple[int, datetime]], now: datetime
) -> None:
    """Notices that these locks (number id, end) have lapsed; in the lapse's transaction."""
    for start in range(0, len(ends), lifecycle.CHUNK):
        chunk = ends[start : start + lifecycle.CHUNK]
        await _insert_new(
            session,
            [_row(number_id, NoticeKind.LOCK_LAPSED, end, end, now) for number_id, end in chunk],
        )


async def cancel_stale(session: AsyncSession) -> int:
    """Cancel pending warnings whose reservation or lock has changed or ended."""
    cancelled = 0
    for kind, state in AHEAD.items():
        still_applies = sa.exists().where(
            Number.id == Notice.number_id,
            Number.state == state,
            Number.expires_at == Notice.expires_at,
        )
        result = await session.execute(
            sa.update(Notice)
            .where(Notice.kind == kind, Notice.status == NoticeStatus.PENDING, ~still_applies)
            .values(status=NoticeStatus.CANCELLED)
            .execution_options(synchronize_session=False)
        )
        cancelled += result.rowcount  # type: ignore[attr-defined]
    return cancelled


async def claimable(session: AsyncSession, now: datetime) -> list[int]:
    """Notices to hand out: pending and due, or claimed by a worker whose lease ran out."""
    query = (
        sa.select(Notice.id)
        .where(Notice.status.in_(OPEN), Notice.next_attempt_at <= now)
        .order_by(Notice.next_attempt_at, Notice.id)
        .limit(MAX_DUE)
    )
    return list((await session.scalars(query)).all())


class Outcome(enum.StrEnum):
    SENT = "SENT"
    RETRY = "RETRY"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    # Not claimable (done, not yet due, or claimed by another worker): nothing to do.
    SKIPPED = "SKIPPED"


@dataclass(frozen=True)
class _Claim:
    notice_id: int
    attempt: int
    number_id: int
    mail: NoticeMail


async def deliver(
    db: Database, notice_id: int, *, clock: Clock, mailer: Mailer, rules: NoticeRules
) -> Outcome:
    """Claim the notice, send it, record the result. Safe to call any number of times."""
    async with db.write() as session:
        claim = await _claim(session, notice_id, clock.now(), rules)
    if not isinstance(claim, _Claim):
        return claim
    try:
        refused = await mailer.send(compose(claim.mail, rules.sender, clock.now()))
    except MailError as exc:
        async with db.write() as session:
            return await _attempt_failed(session, claim, exc, clock.now(), rules)
    async with db.write() as session:
        return await _sent(session, claim, refused, clock.now())


def _applies(notice: Notice, number: Number) -> bool:
    state = AHEAD.get(notice.kind)
    return state is None or (number.state is state and number.expires_at == notice.expires_at)


async def _update(session: AsyncSession, notice: Notice, **values: Any) -> bool:
    """Change the notice if no one has since: guarded by the status and attempts read."""
    result = await session.execute(
        sa.update(Notice)
        .where(
            Notice.id == notice.id,
            Notice.status == notice.status,
            Notice.attempts == notice.attempts,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def _claim(
    session: AsyncSession, notice_id: int, now: datetime, rules: NoticeRules
) -> _Claim | Outcome:
    notice = await session.get(Notice, notice_id)
    if notice is None or notice.status not in OPEN or notice.next_attempt_at > now:
        return Outcome.SKIPPED
    number = await session.get(Number, notice.number_id)
    assert number is not None
    if not _applies(notice, number):
        cancelled = await _update(session, notice, status=NoticeStatus.CANCELLED)
        return Outcome.CANCELLED if cancelled else Outcome.SKIPPED
    if notice.attempts >= rules.max_attempts:
        reason = f"no result from attempt {notice.attempts}, the last: its worker was lost"
        return await _fail(session, notice, number, reason, now)
    about, pool, recipients, problem = await _addressees(session, notice.kind, number)
    if problem is not None:
        return await _fail(session, notice, number, problem, now)
    claimed = await _update(
        session,
        notice,
        status=NoticeStatus.SENDING,
        attempts=notice.attempts + 1,
        next_attempt_at=now + rules.lease,
        recipients=", ".join(recipients),
    )
    if not claimed:
        return Outcome.SKIPPED
    mail = NoticeMail(
        kind=notice.kind,
        e164=number.e164,
        organization=about,
        pool=pool,
        expires_at=notice.expires_at,
        recipients=recipients,
        reference=f"{notice.id}.{notice.number_id}.{notice.kind.value.lower()}",
    )
    return _Claim(notice.id, notice.attempts + 1, number.id, mail)


async def _addressees(
    session: AsyncSession, kind: NoticeKind, number: Number
) -> tuple[str, str, list[str], str | None]:
    """(the organization it is about, the pool's name, addresses, why there are none)."""
    pool = await session.get(Organization, number.organization_id)
    assert pool is not None
    if kind is NoticeKind.RESERVATION_LAPSING:
        holder = await session.get(Organization, number.reserved_for_id or pool.id)
        assert holder is not None
        customer = holder.kind is OrganizationKind.CUSTOMER
        address = holder.billing_email if customer else holder.owner_email
        if not address:
            which = "billing" if customer else "owner"
            return holder.name, pool.name, [], f"{holder.name} has no {which} e-mail address"
        return holder.name, pool.name, [address], None
    # Locks: support at the nearest PARTNER at or above the pool, and at the provider.
    line = [*pool.ancestor_ids, pool.id]
    found = await session.scalars(sa.select(Organization).where(Organization.id.in_(line)))
    by_id = {org.id: org for org in found}
    partner = next(
        (by_id[i] for i in reversed(line) if by_id[i].kind is OrganizationKind.PARTNER), None
    )
    provider = by_id[line[0]]
    addresses = [
        org.support_email
        for org in (partner, provider)
        if org is not None and org.support_email is not None
    ]
    unique = list(dict.fromkeys(addresses))
    if not unique:
        problem = f"neither a partner above {pool.name} nor the provider has a support e-mail"
        return pool.name, pool.name, [], problem
    return pool.name, pool.name, unique, None


async def _fail(
    session: AsyncSession, notice: Notice, number: Number, reason: str, now: datetime
) -> Outcome:
    if not await _update(session, notice, status=NoticeStatus.FAILED, last_error=reason):
        return Outcome.SKIPPED
    await _record_failure(session, notice.id, number.id, notice.kind, reason, now)
    return Outcome.FAILED


async def _record_failure(
    session: AsyncSession,
    notice_id: int,
    number_id: int,
    kind: NoticeKind,
    reason: str,
    now: datetime,
) -> None:
    log.error("notice %s (%s) failed for good: %s", notice_id, kind.value, reason)
    await lifecycle.record_each(
        session,
        [number_id],
        NOTICE_FAILED,
        actor=SYSTEM,
        at=now,
        remark=f"{_label(kind)} could not be sent: {reason}",
    )


async def _attempt_failed(
    session: AsyncSession, claim: _Claim, error: MailError, now: datetime, rules: NoticeRules
) -> Outcome:
    final = error.permanent or claim.attempt >= rules.max_attempts
    mine = sa.and_(
        Notice.id == claim.notice_id,
        Notice.status == NoticeStatus.SENDING,
        Notice.attempts == claim.attempt,
    )
    values: dict[str, Any] = {"last_error": f"attempt {claim.attempt}: {error}"}
    if final:
        values["status"] = NoticeStatus.FAILED
    else:
        values["status"] = NoticeStatus.PENDING
        values["next_attempt_at"] = now + rules.backoff(claim.attempt)
    result = await session.execute(
        sa.update(Notice).where(mine).values(values).execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return Outcome.SKIPPED
    if not final:
        log.warning(
            "notice %s: attempt %s failed (%s); retrying", claim.notice_id, claim.attempt, error
        )
        return Outcome.RETRY
    await _record_failure(
        session, claim.notice_id, claim.number_id, claim.mail.kind, str(error), now
    )
    return Outcome.FAILED


async def _sent(
    session: AsyncSession, claim: _Claim, refused: Sequence[str], now: datetime
) -> Outcome:
    # Any claim may mark it: if a lease ran out and two workers sent, one records it.
    result = await session.execute(
        sa.update(Notice)
        .where(Notice.id == claim.notice_id, Notice.status == NoticeStatus.SENDING)
        .values(
            status=NoticeStatus.SENT,
            sent_at=now,
            last_error=f"refused: {'; '.join(refused)}" if refused else None,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return Outcome.SKIPPED
    recipients = ", ".join(claim.mail.recipients)
    # The number may have moved while the mail was sent: the event records it as it is.
    await lifecycle.record_each(
        session,
        [claim.number_id],
        NOTIFIED,
        actor=SYSTEM,
        at=now,
        remark=f"{_label(claim.mail.kind)} sent to {recipients}",
    )
    return Outcome.SENT


def _label(kind: NoticeKind) -> str:
    return {
        NoticeKind.RESERVATION_LAPSING: "reservation ending notice",
        NoticeKind.LOCK_LAPSING: "lock ending notice",
        NoticeKind.LOCK_LAPSED: "lock lapsed notice",
    }[kind]


async def counts(session: AsyncSession) -> dict[NoticeStatus, int]:
    query = sa.select(Notice.status, sa.func.count()).group_by(Notice.status)
    return {status: count for status, count in await session.execute(query)}


async def failed(session: AsyncSession, limit: int = 20) -> list[tuple[Notice, str]]:
    """The most recent FAILED notices, with their numbers."""
    query = (
        sa.select(Notice, Number.e164)
        .join(Number, Number.id == Notice.number_id)
        .where(Notice.status == NoticeStatus.FAILED)
        .order_by(Notice.id.desc())
        .limit(limit)
    )
    return [(notice, e164) for notice, e164 in (await session.execute(query)).all()]
