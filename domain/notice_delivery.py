"""Sending a notice: claim, send, mark, each step guarded so it happens once.

The claim is a guarded UPDATE that takes the notice for a lease; only one worker wins
it. A worker that dies mid-send leaves the claim to run out, and the next sweep hands
the notice out again; a failed send is retried with a doubling backoff, and after the
last attempt the notice is FAILED, logged, and written to the number's history, never
dropped. A notice about a token (INTAKE_LIMIT_REACHED) goes to the provider's support the
same way; having no number, it has no history to write to: it is logged.
"""

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain import lifecycle, port_notices, terms
from domain.clock import Clock
from domain.mail import Mailer, MailError, NoticeMail, compose, mail_address, one_line
from domain.notices import AHEAD, OPEN, SYSTEM, NoticeRules
from models import (
    Notice,
    NoticeKind,
    NoticeStatus,
    Number,
    Organization,
    OrganizationKind,
    PortOrder,
    Token,
)
from models.database import Database

log = logging.getLogger("numbra.notices")

NOTIFIED = "NOTIFIED"
NOTICE_FAILED = "NOTICE_FAILED"


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
    # None for a notice about a token.
    number_id: int | None
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
        failure = exc
    except Exception as exc:
        # Whatever went wrong with this notice is this notice's: it is retried, and fails
        # for good after the last attempt, while the others go out.
        log.exception("notice %s: attempt %s failed unexpectedly", claim.notice_id, claim.attempt)
        failure = MailError(f"{type(exc).__name__}: {exc}", permanent=False)
    else:
        async with db.write() as session:
            return await _sent(session, claim, refused, clock.now())
    async with db.write() as session:
        return await _attempt_failed(session, claim, failure, clock.now(), rules)


def _applies(notice: Notice, number: Number) -> bool:
    if notice.kind is NoticeKind.SERVICE_ENDING:
        return terms.ending(number, notice.expires_at)
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
    if notice.port_order_id is not None:
        return await _claim_about_order(session, notice, now, rules)
    if notice.number_id is None:
        return await _claim_about_token(session, notice, now, rules)
    number = await session.get(Number, notice.number_id)
    assert number is not None
    if not _applies(notice, number):
        cancelled = await _update(session, notice, status=NoticeStatus.CANCELLED)
        return Outcome.CANCELLED if cancelled else Outcome.SKIPPED
    if notice.attempts >= rules.max_attempts:
        return await _fail(session, notice, number.id, _lost(notice), now)
    about, pool, recipients, problem = await _addressees(session, notice.kind, number)
    if problem is not None:
        return await _fail(session, notice, number.id, problem, now)
    mail = NoticeMail(
        kind=notice.kind,
        e164=number.e164,
        organization=about,
        pool=pool,
        expires_at=notice.expires_at,
        recipients=recipients,
        reference=f"{notice.id}.{notice.number_id}.{notice.kind.value.lower()}",
    )
    return await _take(session, notice, now, rules, number.id, mail)


def _lost(notice: Notice) -> str:
    return f"no result from attempt {notice.attempts}, the last: its worker was lost"


async def _claim_about_token(
    session: AsyncSession, notice: Notice, now: datetime, rules: NoticeRules
) -> _Claim | Outcome:
    """Claim an INTAKE_LIMIT_REACHED notice: to the provider's support e-mail."""
    if notice.attempts >= rules.max_attempts:
        return await _fail(session, notice, None, _lost(notice), now)
    token = await session.get(Token, notice.token_id)
    assert token is not None  # the notice goes with its token (ON DELETE CASCADE)
    org = await session.get(Organization, token.organization_id)
    provider = (
        await session.scalars(sa.select(Organization).where(Organization.parent_id.is_(None)))
    ).one()
    assert org is not None
    if not provider.support_email:
        return await _fail(session, notice, None, "the provider has no support e-mail", now)
    recipients = [provider.support_email]
    mail = NoticeMail(
        kind=notice.kind,
        e164="",
        organization=org.name,
        pool=org.name,
        expires_at=notice.expires_at,
        recipients=recipients,
        reference=f"{notice.id}.token{token.id}.{notice.kind.value.lower()}",
        token=token.name,
    )
    return await _take(session, notice, now, rules, None, mail)


async def _claim_about_order(
    session: AsyncSession, notice: Notice, now: datetime, rules: NoticeRules
) -> _Claim | Outcome:
    """Claim a PORT_FOC_NEAR notice, if its order is still confirmed for that date."""
    order = await session.get(PortOrder, notice.port_order_id)
    assert order is not None  # the notice goes with its order (ON DELETE CASCADE)
    if not port_notices.applies(order, notice.expires_at):
        cancelled = await _update(session, notice, status=NoticeStatus.CANCELLED)
        return Outcome.CANCELLED if cancelled else Outcome.SKIPPED
    if notice.attempts >= rules.max_attempts:
        return await _fail(session, notice, None, _lost(notice), now)
    pool, recipients, problem = await port_notices.addressees(session, order)
    if problem is not None:
        return await _fail(session, notice, None, problem, now)
    mail = NoticeMail(
        kind=notice.kind,
        e164="",
        organization=pool,
        pool=pool,
        expires_at=notice.expires_at,
        recipients=recipients,
        reference=f"{notice.id}.order{order.id}.{notice.kind.value.lower()}",
        order=f"{order.direction.value} {order.carrier} {order.reference or ''}".strip(),
    )
    return await _take(session, notice, now, rules, None, mail)


async def _take(
    session: AsyncSession,
    notice: Notice,
    now: datetime,
    rules: NoticeRules,
    number_id: int | None,
    mail: NoticeMail,
) -> _Claim | Outcome:
    """Mark the notice SENDING for this attempt, leased for a while; SKIPPED if another
    worker got there first."""
    claimed = await _update(
        session,
        notice,
        status=NoticeStatus.SENDING,
        attempts=notice.attempts + 1,
        next_attempt_at=now + rules.lease,
        recipients=", ".join(mail.recipients),
    )
    if not claimed:
        return Outcome.SKIPPED
    return _Claim(notice.id, notice.attempts + 1, number_id, mail)


async def _addressees(
    session: AsyncSession, kind: NoticeKind, number: Number
) -> tuple[str, str, list[str], str | None]:
    """(the organization it is about, the pool's name, addresses, why there are none)."""
    pool = await session.get(Organization, number.organization_id)
    assert pool is not None
    # Names as a line of a log or a mail shows them (stored names may hold line breaks).
    pool_name = one_line(pool.name)
    if kind is NoticeKind.SERVICE_ENDING:
        owner = await session.get(Organization, number.owner_id or pool.id)
        assert owner is not None
        owner_name = one_line(owner.name)
        if not owner.billing_email:
            return owner_name, pool_name, [], f"{owner_name} has no billing e-mail address"
        if mail_address(owner.billing_email) is None:
            problem = (
                f"{owner_name}'s billing e-mail address {owner.billing_email!r} cannot receive mail"
            )
            return owner_name, pool_name, [], problem
        return owner_name, pool_name, [owner.billing_email], None
    if kind is NoticeKind.RESERVATION_LAPSING:
        holder = await session.get(Organization, number.reserved_for_id or pool.id)
        assert holder is not None
        holder_name = one_line(holder.name)
        customer = holder.kind is OrganizationKind.CUSTOMER
        address = holder.billing_email if customer else holder.owner_email
        which = "billing" if customer else "owner"
        if not address:
            return holder_name, pool_name, [], f"{holder_name} has no {which} e-mail address"
        if mail_address(address) is None:
            problem = f"{holder_name}'s {which} e-mail address {address!r} cannot receive mail"
            return holder_name, pool_name, [], problem
        return holder_name, pool_name, [address], None
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
    unique = [address for address in dict.fromkeys(addresses) if mail_address(address)]
    if not unique:
        problem = f"neither a partner above {pool_name} nor the provider has a support e-mail"
        return pool_name, pool_name, [], problem
    return pool_name, pool_name, unique, None


async def _fail(
    session: AsyncSession, notice: Notice, number_id: int | None, reason: str, now: datetime
) -> Outcome:
    if not await _update(session, notice, status=NoticeStatus.FAILED, last_error=reason):
        return Outcome.SKIPPED
    await _record_failure(session, notice.id, number_id, notice.kind, reason, now)
    return Outcome.FAILED


async def _record_failure(
    session: AsyncSession,
    notice_id: int,
    number_id: int | None,
    kind: NoticeKind,
    reason: str,
    now: datetime,
) -> None:
    log.error("notice %s (%s) failed for good: %s", notice_id, kind.value, reason)
    if number_id is None:
        return
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
    if claim.number_id is None:
        log.info("notice %s (%s) sent to %s", claim.notice_id, claim.mail.kind.value, recipients)
        return Outcome.SENT
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
        NoticeKind.INTAKE_LIMIT_REACHED: "intake limit notice",
        NoticeKind.SERVICE_ENDING: "service ending notice",
        NoticeKind.PORT_FOC_NEAR: "port date notice",
    }[kind]
