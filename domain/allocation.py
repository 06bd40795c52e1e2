"""Allocation across the tree: numbers move from a parent's pool to a child's and back.

Moving by quantity is one set-based UPDATE that picks the numbers itself; on
PostgreSQL it skips rows another transaction holds (FOR UPDATE SKIP LOCKED), so
disjoint allocations proceed in parallel, and on SQLite the write transaction is
taken up front (BEGIN IMMEDIATE). Either way a number is never handed out twice.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain import ids, organizations, text
from domain.access import Caller
from domain.errors import DomainError, ErrorCode, Problems
from domain.items import load_items, reload
from domain.lifecycle import Action, apply, plan, record_each
from domain.series import TYPE_NAME as SERIES_TYPE
from models import Number, NumberState, Organization, Role, Series

MAX_QUANTITY = 100_000


@dataclass(frozen=True)
class Request:
    organization_id: str
    series_id: str | None
    quantity: int | None
    numbers: Sequence[str] | None
    remark: str | None


@dataclass(frozen=True)
class _Checked:
    child: Organization
    parent: Organization
    series: Series | None


async def _check(
    session: AsyncSession, caller: Caller, request: Request, problems: Problems
) -> _Checked | None:
    """The child, its parent and the series, if the request names them rightly."""
    caller.viewer.require(Role.ADMIN)
    text.check(problems, request.remark, "remark", free_text=True)
    child = await organizations.named(
        session, caller.viewer, request.organization_id, ["input", "organizationId"], problems
    )
    parent = None
    if child is not None and (child.id == caller.viewer.org_id or child.parent_id is None):
        problems.add(
            ErrorCode.FORBIDDEN,
            "numbers move between a parent and a child your token is above",
            ["input", "organizationId"],
        )
    elif child is not None:
        parent = await session.get(Organization, child.parent_id)
    by_quantity = request.series_id is not None or request.quantity is not None
    if by_quantity == (request.numbers is not None):
        problems.add(
            ErrorCode.VALIDATION, "give either seriesId with quantity, or numbers", ["input"]
        )
        return None
    series = None
    if by_quantity:
        if request.quantity is None or not 1 <= request.quantity <= MAX_QUANTITY:
            problems.add(
                ErrorCode.VALIDATION,
                f"quantity must be from 1 to {MAX_QUANTITY}",
                ["input", "quantity"],
            )
        if request.series_id is None:
            problems.add(
                ErrorCode.VALIDATION, "quantity needs the seriesId it counts", ["input", "seriesId"]
            )
        else:
            key = ids.decode_uuid(request.series_id, SERIES_TYPE)
            found = sa.select(Series).where(Series.uuid == key)
            series = await session.scalar(found) if key else None
            if series is None:
                problems.add(ErrorCode.NOT_FOUND, "no such series", ["input", "seriesId"])
    if child is None or parent is None:
        return None
    return _Checked(child=child, parent=parent, series=series)


async def _move_quantity(
    session: AsyncSession,
    caller: Caller,
    source: Organization,
    destination: Organization,
    series: Series,
    quantity: int,
    action: Action,
    remark: str | None,
) -> list[Number]:
    candidates = (
        sa.select(Number.id)
        .where(
            Number.organization_id == source.id,
            Number.series_id == series.id,
            Number.state == NumberState.AVAILABLE,
        )
        .order_by(Number.e164)
        .limit(quantity)
        .with_for_update(skip_locked=True)
    )
    moved = list(
        (
            await session.execute(
                sa.update(Number)
                .where(Number.id.in_(candidates.scalar_subquery()))
                .values(organization_id=destination.id)
                .returning(Number.id)
                .execution_options(synchronize_session=False)
            )
        ).scalars()
    )
    if len(moved) < quantity:
        # The short UPDATE is still in this transaction: what it took counts as held.
        available = len(moved) + await _count_available(session, source, series)
        if available >= quantity:
            # Enough numbers exist, but another transaction holds some of them (PostgreSQL
            # skips rows it has locked): its outcome decides, so ask the caller to retry.
            raise DomainError.one(
                ErrorCode.CONFLICT,
                f"{quantity - len(moved)} of the numbers are held by a concurrent change; "
                "try again",
                ["input", "quantity"],
            )
        raise DomainError.one(
            ErrorCode.QUANTITY_EXCEEDS_AVAILABLE,
            f"{source.name} holds {available} AVAILABLE numbers of {series.prefix}; "
            f"{quantity} asked",
            ["input", "quantity"],
        )
    await record_each(
        session, moved, action.value, actor=caller.actor, at=caller.clock.now(), remark=remark
    )
    # The payload lists the first of the moved numbers, at most a batch's worth.
    rows = await session.scalars(
        sa.select(Number)
        .where(Number.id.in_(moved[: caller.policy.max_batch]))
        .order_by(Number.e164)
    )
    return list(rows)


async def _count_available(session: AsyncSession, pool: Organization, series: Series) -> int:
    query = sa.select(sa.func.count()).where(
        Number.organization_id == pool.id,
        Number.series_id == series.id,
        Number.state == NumberState.AVAILABLE,
    )
    return (await session.execute(query)).scalar_one()


async def _move_named(
    session: AsyncSession,
    caller: Caller,
    problems: Problems,
    names: Sequence[str],
    source: Organization,
    destination: Organization,
    action: Action,
    remark: str | None,
) -> list[Number]:
    items = await load_items(session, caller, names, problems)
    holders = await organizations.by_ids(
        session, sorted({i.row.reserved_for_id for i in items if i.row.reserved_for_id})
    )

    def guard(row: Number) -> str | None:
        if row.organization_id != source.id:
            return f"{row.e164} is not in the pool of {source.name}"
        if row.reserved_for_id is not None and row.reserved_for_id != source.id:
            holder = holders[row.reserved_for_id]
            if not holder.path.startswith(destination.path):
                return f"{row.e164} is reserved for {holder.name}, outside {destination.name}"
        return None

    def values(row: Number) -> dict[str, int | None]:
        moved: dict[str, int | None] = {"organization_id": destination.id}
        if row.reserved_for_id == source.id:
            # Held for the pool it leaves: from now on it is held for the pool it joins.
            moved["reserved_for_id"] = destination.id
        return moved

    moves = plan(items, action, problems, values=values, guard=guard)
    problems.raise_if_any()
    await apply(session, moves, action, actor=caller.actor, at=caller.clock.now(), remark=remark)
    return await reload(session, items)


async def allocate(session: AsyncSession, caller: Caller, request: Request) -> list[Number]:
    """From the parent's pool into the child's: a quantity of a series, or named numbers."""
    return await _transfer(session, caller, request, Action.ALLOCATE)


async def withdraw(session: AsyncSession, caller: Caller, request: Request) -> list[Number]:
    """Unused numbers from the child's pool back to its parent's."""
    return await _transfer(session, caller, request, Action.WITHDRAW)


async def _transfer(
    session: AsyncSession, caller: Caller, request: Request, action: Action
) -> list[Number]:
    problems = Problems()
    checked = await _check(session, caller, request, problems)
    if checked is None:
        problems.raise_if_any()
    assert checked is not None
    source, destination = (
        (checked.parent, checked.child)
        if action is Action.ALLOCATE
        else (checked.child, checked.parent)
    )
    if request.numbers is not None:
        return await _move_named(
            session, caller, problems, request.numbers, source, destination, action, request.remark
        )
    problems.raise_if_any()
    assert checked.series is not None
    assert request.quantity is not None
    return await _move_quantity(
        session,
        caller,
        source,
        destination,
        checked.series,
        request.quantity,
        action,
        request.remark,
    )
