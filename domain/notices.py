"""Notices before (and when) reservations and locks lapse: an outbox, delivered once per key.

A notice is a row keyed by (number, kind, expiry). The sweep derives them from the
numbers table when they fall due, so nothing else has to remember to schedule them:
a reservation or lock that ends within its pool's notice lead (the policy's
notice days, domain/number_policy.py) gets its notice (at once if
it was made with less time left), and a second sweep finds the key taken. Extending,
releasing, assigning, unlocking or deleting changes the number's state or end, so a
pending notice about the old end no longer matches the number: it is cancelled, not
sent, and a new end gets notices of its own when they fall due.

Sending a notice handed out here is `domain.notice_delivery`'s job.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain import lifecycle, number_policy
from domain.policy import Policy
from models import Notice, NoticeKind, NoticeStatus, Number, NumberPolicy, NumberState, Organization
from settings import Settings

SYSTEM = "system"
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
    # How long before a port order's FOC date its notice goes out.
    port_before: timedelta = timedelta(days=2)

    @classmethod
    def from_settings(cls, settings: Settings) -> "NoticeRules":
        return cls(
            before=timedelta(days=settings.notice_days_before),
            retry=timedelta(seconds=settings.notice_retry_seconds),
            max_attempts=settings.notice_max_attempts,
            lease=timedelta(seconds=settings.notice_lease_seconds),
            sender=settings.mail_from,
            port_before=timedelta(days=settings.port_notice_days),
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


async def schedule(
    session: AsyncSession, now: datetime, before: timedelta, policy: Policy | None = None
) -> int:
    """Add the warnings now due: reservations and locks ending within their pool's notice
    lead (`before` where no organization's policy sets one)."""
    defaults = replace(policy or Policy(), notice=before)
    set_leads = await session.scalar(sa.select(sa.func.max(NumberPolicy.notice_days)))
    longest = max(before, timedelta(days=set_leads or 0))
    if longest <= timedelta(0):
        return 0
    candidates = []
    for kind, state in AHEAD.items():
        noticed = sa.exists().where(
            Notice.number_id == Number.id,
            Notice.kind == kind,
            Notice.expires_at == Number.expires_at,
        )
        query = (
            sa.select(Number.id, Number.expires_at, Organization.path)
            .join(Organization, Organization.id == Number.organization_id)
            .where(
                Number.state == state,
                Number.expires_at > now,
                Number.expires_at <= now + longest,
                ~noticed,
            )
        )
        candidates += [(kind, *row) for row in await session.execute(query)]
    leads = await number_policy.for_paths(session, {c[3] for c in candidates}, defaults)
    rows = []
    for kind, number_id, expires_at, path in candidates:
        assert expires_at is not None  # the range above excludes null ends
        lead = leads[path].notice
        if lead > timedelta(0) and expires_at <= now + lead:
            rows.append(_row(number_id, kind, expires_at, expires_at - lead, now))
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


async def intake_limit_reached(
    session: AsyncSession, token_id: int, day_ends: datetime, now: datetime
) -> None:
    """Tell support that a token's intake is refused until `day_ends`: once per token and day,
    in the transaction that counted past the limit (a rollback sends nothing)."""
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    row = _row(0, NoticeKind.INTAKE_LIMIT_REACHED, day_ends, now, now)
    row.update(number_id=None, token_id=token_id)
    statement = dialect.insert(Notice.__table__).on_conflict_do_nothing(
        index_elements=["token_id", "kind", "expires_at"]
    )
    await session.execute(statement, [row])


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


async def counts(session: AsyncSession) -> dict[NoticeStatus, int]:
    query = sa.select(Notice.status, sa.func.count()).group_by(Notice.status)
    return {status: count for status, count in await session.execute(query)}


async def failed(session: AsyncSession, limit: int = 20) -> list[tuple[Notice, str | None]]:
    """The most recent FAILED notices, with their numbers (None: a notice about a token)."""
    query = (
        sa.select(Notice, Number.e164)
        .outerjoin(Number, Number.id == Notice.number_id)
        .where(Notice.status == NoticeStatus.FAILED)
        .order_by(Notice.id.desc())
        .limit(limit)
    )
    return [(notice, e164) for notice, e164 in (await session.execute(query)).all()]


# For notices other modules schedule (domain/terms.py: SERVICE_ENDING).
insert_new = _insert_new
new_row = _row
