"""What becomes of a number when a hold for a subscription, cancellation or swap lapses.

The number's own `after_hold`, else the policy of the pool that holds it when the hold
lapses: AVAILABLE (the plain lapse, `domain.sweep`), LOCKED for that pool's lock period
(remark "after hold"), or DELETED with the reason RETIRED. A manual reservation always
lapses to AVAILABLE. Set-based: one query resolves the policies of every pool in a
batch, and one guarded UPDATE moves each group of numbers that end alike.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain import notices, number_policy
from domain.lifecycle import Action, filled_in, record_each, target
from domain.policy import Policy
from models import AfterHold, DeletionReason, Number, NumberState, ReservationReason

REMARK = "after hold"
# A number due to lapse: id, end, reservation reason, its own after-hold, its pool and path.
Due = sa.Row[int, datetime | None, ReservationReason | None, AfterHold | None, int, str]


@dataclass(frozen=True)
class Fates:
    """What becomes of the lapsing holds that do not go to AVAILABLE."""

    moves: dict[int, Action]
    # The end of a lock after a hold, by pool: now + that pool's lock period.
    lock_ends: dict[int, datetime]


async def fates(session: AsyncSession, due: Sequence[Due], now: datetime, policy: Policy) -> Fates:
    """The holds among `due` that do not lapse to AVAILABLE, with what becomes of each."""
    holds = [row for row in due if row.reservation_reason is not ReservationReason.MANUAL]
    periods = await number_policy.for_paths(session, {row.path for row in holds}, policy)
    found = Fates({}, {})
    for row in holds:
        pool = periods[row.path]
        state = row.after_hold or pool.after_hold
        if state is AfterHold.LOCKED:
            found.moves[row.id] = Action.LOCK_AFTER_HOLD
            found.lock_ends[row.organization_id] = now + pool.lock
        elif state is AfterHold.DELETED:
            found.moves[row.id] = Action.RETIRE
    return found


def _values(action: Action, fates: Fates, now: datetime) -> dict[str, Any]:
    if action is Action.RETIRE:
        return {"deletion_reason": DeletionReason.RETIRED}
    # One statement for every pool: the planner keeps to the ids (a statement per pool
    # would scan the due index once each).
    ends = sa.case(
        *((Number.organization_id == org_id, end) for org_id, end in fates.lock_ends.items()),
    )
    return {"locked_at": now, "lock_remark": REMARK, "expires_at": ends}


async def apply(session: AsyncSession, fates: Fates, now: datetime) -> list[int]:
    """Move each held number to its fate, guarded by its hold still being due; the ids moved."""
    groups: dict[Action, list[int]] = defaultdict(list)
    for number_id, action in fates.moves.items():
        groups[action].append(number_id)
    moved: list[int] = []
    for action, ids in groups.items():
        to_state = target(NumberState.RESERVED, action)
        assert to_state is not None
        values = {
            **dict.fromkeys(filled_in(NumberState.RESERVED)),
            **_values(action, fates, now),
            "state": to_state,
            "state_changed_at": now,
        }
        done = list(
            (
                await session.scalars(
                    sa.update(Number)
                    .where(
                        Number.id.in_(ids),
                        Number.state == NumberState.RESERVED,
                        Number.expires_at <= now,
                    )
                    .values(values)
                    .returning(Number.id)
                    .execution_options(synchronize_session=False)
                )
            ).all()
        )
        await record_each(
            session,
            done,
            action.value,
            actor=notices.SYSTEM,
            at=now,
            remark=REMARK,
            change=(NumberState.RESERVED, to_state),
        )
        moved += done
    return moved
