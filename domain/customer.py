"""What a customer's number carries besides its state: blocks, registration and features
(DESIGN.md, "Lifecycle, version 2").

A block keeps a number's subscription, owner and term (BLOCKED keeps the columns it
shares with ASSIGNED); unblocking, or the sweep at the block's end, returns it to ASSIGNED.
Registration and feature statuses are facts integrations set: Numbra records them with a
history event each (REGISTRATION_CHANGED, FEATURE_CHANGED) through the lifecycle table,
like every other change.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain import notices
from domain.access import Caller
from domain.details import check_text
from domain.errors import ErrorCode, Problems
from domain.items import load_items, move
from domain.lifecycle import BLOCKED, Action, filled_in, kept, record_each, target
from models import (
    BlockReason,
    FeatureKind,
    FeatureStatus,
    Number,
    NumberState,
    RegistrationStatus,
    Role,
)
from models.base import column_length
from models.database import Database

MAX_IDENTITY_REF = column_length(Number.registration_identity_ref)
# Blocks ended per transaction of the sweep.
BATCH = 5_000


async def block(
    session: AsyncSession,
    caller: Caller,
    numbers: Sequence[str],
    *,
    reason: BlockReason,
    until: datetime | None,
    remark: str | None,
) -> list[Number]:
    caller.viewer.require(Role.ADMIN)
    problems = Problems()
    now = caller.clock.now()
    if until is not None and until <= now:
        problems.add(ErrorCode.VALIDATION, "until must be in the future", ["input", "until"])
    items = await load_items(session, caller, numbers, problems)
    return await move(
        session,
        caller,
        problems,
        items,
        Action.BLOCK,
        remark=remark,
        values=lambda row: {
            **kept(row, BLOCKED),
            "block_reason": reason,
            "blocked_at": now,
            "blocked_until": until,
            "block_remark": remark,
        },
    )


async def unblock(
    session: AsyncSession, caller: Caller, numbers: Sequence[str], *, remark: str | None
) -> list[Number]:
    caller.viewer.require(Role.ADMIN)
    problems = Problems()
    items = await load_items(session, caller, numbers, problems)
    return await move(
        session,
        caller,
        problems,
        items,
        Action.UNBLOCK,
        remark=remark,
        values=lambda row: kept(row, NumberState.ASSIGNED),
    )


async def set_registration(
    session: AsyncSession,
    caller: Caller,
    numbers: Sequence[str],
    *,
    status: RegistrationStatus,
    identity_ref: str | None,
    remark: str | None,
) -> list[Number]:
    caller.viewer.require(Role.OPERATOR)
    problems = Problems()
    check_text(problems, identity_ref, "identityRef", limit=MAX_IDENTITY_REF)
    now = caller.clock.now()
    items = await load_items(session, caller, numbers, problems)
    return await move(
        session,
        caller,
        problems,
        items,
        Action.SET_REGISTRATION,
        remark=remark,
        values=lambda _row: {
            "registration_status": status,
            "registration_identity_ref": identity_ref or None,
            "registration_updated_at": now,
            "registration_remark": remark,
        },
    )


def feature_entry(status: FeatureStatus, at: datetime, remark: str | None) -> dict[str, Any]:
    return {"status": status.value, "updatedAt": at.isoformat(), "remark": remark}


async def set_feature(
    session: AsyncSession,
    caller: Caller,
    numbers: Sequence[str],
    *,
    kind: FeatureKind,
    status: FeatureStatus,
    remark: str | None,
) -> list[Number]:
    caller.viewer.require(Role.OPERATOR)
    problems = Problems()
    now = caller.clock.now()
    items = await load_items(session, caller, numbers, problems)
    entry = feature_entry(status, now, remark)
    return await move(
        session,
        caller,
        problems,
        items,
        Action.SET_FEATURE,
        remark=remark,
        # Each number's other features stay as they are.
        values=lambda row: {"features": {**(row.features or {}), kind.value: entry}},
    )


# ---- the sweep: blocks that end ----


async def unblock_due(session: AsyncSession, now: datetime, limit: int = BATCH) -> list[int]:
    """End up to `limit` blocks whose `until` has come: back to ASSIGNED, by "system"."""
    to_state = target(BLOCKED, Action.UNBLOCK)
    assert to_state is not None
    due = sa.and_(
        Number.state == BLOCKED, Number.blocked_until.is_not(None), Number.blocked_until <= now
    )
    ids = list(
        (
            await session.scalars(
                sa.select(Number.id).where(due).limit(limit).with_for_update(skip_locked=True)
            )
        ).all()
    )
    if not ids:
        return []
    cleared = dict.fromkeys(c for c in filled_in(BLOCKED) if c not in filled_in(to_state))
    unblocked = list(
        (
            await session.scalars(
                sa.update(Number)
                .where(Number.id.in_(ids), due)
                .values({**cleared, "state": to_state, "state_changed_at": now})
                .returning(Number.id)
                .execution_options(synchronize_session=False)
            )
        ).all()
    )
    await record_each(
        session,
        unblocked,
        Action.UNBLOCK.value,
        actor=notices.SYSTEM,
        at=now,
        remark="the block ended",
        change=(BLOCKED, to_state),
    )
    return unblocked


async def sweep_blocks(db: Database, now: datetime) -> int:
    total = 0
    while True:
        async with db.write() as session:
            done = await unblock_due(session, now)
        total += len(done)
        if len(done) < BATCH:
            return total
