"""What the background jobs have yet to do, for operators: lapses overdue, notices waiting.

A reservation or lock whose end has passed should lapse within a sweep interval; the
longer the oldest such end lies in the past, the further the sweep is behind (stopped
workers, a scheduler gone, a broker down). Notices waiting to go out, and notices that
failed for good, say the same of mail.
"""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain import notices
from domain.lifecycle import Action, target
from models import NoticeStatus, Number, NumberState

# The states the sweep lapses, as the lifecycle table says.
LAPSING = tuple(state for state in NumberState if target(state, Action.LAPSE) is not None)


@dataclass(frozen=True)
class Backlog:
    # How long ago the oldest reservation or lock that is due but has not lapsed ended; 0 if none.
    sweep_lag_seconds: float
    notices_pending: int
    notices_failed: int


async def backlog(session: AsyncSession, now: datetime) -> Backlog:
    ends = []
    # One index lookup per lapsing state, on (state, expires_at).
    for state in LAPSING:
        end = await session.scalar(
            sa.select(sa.func.min(Number.expires_at)).where(
                Number.state == state, Number.expires_at <= now
            )
        )
        if end is not None:
            ends.append(end)
    counts = await notices.counts(session)
    return Backlog(
        sweep_lag_seconds=(now - min(ends)).total_seconds() if ends else 0.0,
        notices_pending=sum(counts.get(status, 0) for status in notices.OPEN),
        notices_failed=counts.get(NoticeStatus.FAILED, 0),
    )
