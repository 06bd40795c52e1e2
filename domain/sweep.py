"""The sweep: whatever the database says is due gets done, each thing once.

1. Lapse: reservations and locks whose end has passed return to AVAILABLE in the same
   pool, with an EXPIRED event by "system". Batch by batch, each its own transaction:
   select due ids (on PostgreSQL skipping rows another transaction holds), then one
   guarded UPDATE … WHERE state = … AND expires_at <= now RETURNING id. A lapsed lock's
   LOCK_LAPSED notice is written in the same transaction. Locks with no end never lapse.
2. Notices: add those now due (port orders' FOC notices among them), cancel pending
   ones that no longer apply.
3. Report the notices to deliver; the caller hands them out after the commits.

Every write is guarded by the state it expects, so two sweeps at once, a sweep run twice,
or one after a crash (its open transaction rolled back) still do each thing once; and a
sweep that never ran is made good by the next, which finds the same rows still due.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain import after_hold, customer, notices, port_notices, terms
from domain.clock import Clock
from domain.lifecycle import Action, filled_in, record_each, target
from domain.mail import Mailer
from domain.notice_delivery import Outcome, deliver
from domain.notices import NoticeRules
from domain.policy import Policy
from models import Number, NumberState, Organization
from models.database import Database

BATCH = 5_000
DEFAULTS = Policy()
REMARKS = {
    NumberState.RESERVED: "the reservation ended",
    NumberState.LOCKED: "the lock ended",
}
# What a lapse clears: the state columns a reservation or a lock can fill. The lifecycle
# leaves the others empty in those states; not writing them spares SQLite their indexes.
CLEARED = {state: filled_in(state) for state in REMARKS}


@dataclass(frozen=True)
class SweepReport:
    lapsed_reservations: int
    lapsed_locks: int
    notices_scheduled: int
    notices_cancelled: int
    # Notices to deliver now, oldest first.
    notices_due: list[int]
    # Paid terms: periods renewed, and services ended.
    renewals: terms.TermReport

    def __str__(self) -> str:
        return (
            f"renewed {self.renewals.renewed} term period(s), ended {self.renewals.ended} "
            f"service(s); lapsed {self.lapsed_reservations} reservation(s) and {self.lapsed_locks} "
            f"lock(s); notices: {self.notices_scheduled} new, {self.notices_cancelled} "
            f"cancelled, {len(self.notices_due)} to send"
        )


async def lapse(
    session: AsyncSession,
    state: NumberState,
    now: datetime,
    limit: int,
    policy: Policy = DEFAULTS,
) -> list[int]:
    """Lapse up to `limit` due numbers in `state`; return the ids lapsed (whatever became
    of them: a hold ends in its after-hold state, by `policy` where no organization sets it)."""
    to_state = target(state, Action.LAPSE)
    assert to_state is not None
    due = (
        await session.execute(
            sa.select(
                Number.id,
                Number.expires_at,
                Number.reservation_reason,
                Number.after_hold,
                Number.organization_id,
                Organization.path,
            )
            .join(Organization, Organization.id == Number.organization_id)
            .where(Number.state == state, Number.expires_at <= now)
            .limit(limit)
            .with_for_update(skip_locked=True, of=Number)
        )
    ).all()
    if not due:
        return []
    ends = {row.id: row.expires_at for row in due}
    held = after_hold.Fates({}, {})
    if state is NumberState.RESERVED:
        held = await after_hold.fates(session, due, now, policy)
    to_available = [number_id for number_id in ends if number_id not in held.moves]
    lapsed = list(
        (
            await session.scalars(
                sa.update(Number)
                .where(Number.id.in_(to_available), Number.state == state, Number.expires_at <= now)
                .values(
                    {**dict.fromkeys(CLEARED[state]), "state": to_state, "state_changed_at": now}
                )
                .returning(Number.id)
                .execution_options(synchronize_session=False)
            )
        ).all()
    )
    await record_each(
        session,
        lapsed,
        Action.LAPSE.value,
        actor=notices.SYSTEM,
        at=now,
        remark=REMARKS[state],
        change=(state, to_state),
    )
    if state is NumberState.LOCKED:
        await notices.lock_lapsed(
            session, [(i, end) for i in lapsed if (end := ends[i]) is not None], now
        )
    return lapsed + await after_hold.apply(session, held, now)


async def _lapse_all(db: Database, state: NumberState, now: datetime, policy: Policy) -> int:
    total = 0
    while True:
        async with db.write() as session:
            lapsed = await lapse(session, state, now, BATCH, policy)
        total += len(lapsed)
        # A short batch: nothing more is due, or another sweep holds the rest.
        if len(lapsed) < BATCH:
            return total


async def sweep(
    db: Database, clock: Clock, rules: NoticeRules, policy: Policy = DEFAULTS
) -> SweepReport:
    """One sweep; `policy` (the settings') gives what no organization's policy sets."""
    now = clock.now()
    # Blocks that end first, then paid terms (a term that ends puts its number on hold,
    # which may lapse below).
    await customer.sweep_blocks(db, now)
    renewals = await terms.sweep_terms(db, now, policy)
    reservations = await _lapse_all(db, NumberState.RESERVED, now, policy)
    locks = await _lapse_all(db, NumberState.LOCKED, now, policy)
    async with db.write() as session:
        scheduled = await notices.schedule(session, now, rules.before, policy)
        cancelled = await notices.cancel_stale(session)
        scheduled += await terms.schedule_notices(session, now, rules.before)
        cancelled += await terms.cancel_stale_notices(session)
        scheduled += await port_notices.schedule(session, now, rules.port_before)
        cancelled += await port_notices.cancel_stale(session)
    async with db.read() as session:
        due = await notices.claimable(session, now)
    return SweepReport(reservations, locks, scheduled, cancelled, due, renewals)


async def sweep_and_deliver(
    db: Database, clock: Clock, mailer: Mailer, rules: NoticeRules, policy: Policy = DEFAULTS
) -> tuple[SweepReport, Counter[Outcome]]:
    """One sweep, then each due notice delivered here and now (`numbra sweep`)."""
    report = await sweep(db, clock, rules, policy)
    outcomes: Counter[Outcome] = Counter()
    for notice_id in report.notices_due:
        outcomes[await deliver(db, notice_id, clock=clock, mailer=mailer, rules=rules)] += 1
    return report, outcomes
