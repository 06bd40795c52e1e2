"""What becomes of a number when a hold for a subscription, cancellation or swap lapses.

The number's own `after_hold`, else the policy of the pool that holds it when the hold
lapses: AVAILABLE (the plain lapse, `domain.sweep`), LOCKED for that pool's lock period
(remark "after hold"), or DELETED with the reason RETIRED. A manual reservation always
lapses to AVAILABLE. Set-based: one query resolves the policies of every pool in a
batch, and one guarded UPDATE moves each group of numbers that end alike.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain import notices, number_policy
from domain.lifecycle import Action, filled_in, record_each, target
from domain.policy import Policy
from models import AfterHold, DeletionReason, Number, NumberState, ReservationReason

REMARK = "after hold"
# A lapsing hold's fate: the move, and the end of the lock it starts (None: no lock).
Fate = tuple[Action, datetime | None]
# A number due to lapse: id, end, reservation reason, its own after-hold, its pool's path.
Due = sa.Row[int, datetime | None, ReservationReason | None, AfterHold | None, str]


async def fates(
    session: AsyncSession, due: Sequence[Due], now: datetime, policy: Policy
) -> dict[int, Fate]:
    """The holds among `due` that do not lapse to AVAILABLE, with what becomes of each."""
    holds = [row for row in due if row.reservation_reason is not ReservationReason.MANUAL]
    periods = await number_policy.for_paths(session, {row.path for row in holds}, policy)
    found: dict[int, Fate] = {}
    for row in holds:
        pool = periods[row.path]
        state = row.after_hold or pool.after_hold
        if state is AfterHold.LOCKED:
            found[row.id] = (Action.LOCK_AFTER_HOLD, now + pool.lock)
        elif state is AfterHold.DELETED:
            found[row.id] = (Action.RETIRE, None)
    return found


def _values(action: Action, lock_ends: datetime | None, now: datetime) -> dict[str, Any]:
    if action is Action.LOCK_AFTER_HOLD:
        return {"locked_at": now, "lock_remark": REMARK, "expires_at": lock_ends}
    return {"deletion_reason": DeletionReason.RETIRED}


async def apply(session: AsyncSession, held: Mapping[int, Fate], now: datetime) -> list[int]:
    """Move each held number to its fate, guarded by its hold still being due; the ids moved."""
    groups: dict[Fate, list[int]] = defaultdict(list)
    for number_id, fate in held.items():
        groups[fate].append(number_id)
    moved: list[int] = []
    for (action, lock_ends), ids in groups.items():
        to_state = target(NumberState.RESERVED, action)
        assert to_state is not None
        values = {
            **dict.fromkeys(filled_in(NumberState.RESERVED)),
            **_values(action, lock_ends, now),
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
