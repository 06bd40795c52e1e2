"""The numbers a request names, as lifecycle items: found and locked, moved, read back.

Every operation on named numbers loads them here, so each one checks the batch
limit, the notation and the viewer's subtree alike; numbers outside the subtree
are reported as not found.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain import phone, text
from domain.access import Caller
from domain.errors import ErrorCode, Problems
from domain.lifecycle import Action, Guard, Item, Values, apply, plan
from domain.organizations import subtree_clause
from models import Number, Organization, Role


async def load_items(
    session: AsyncSession,
    caller: Caller,
    raws: Sequence[str],
    problems: Problems,
    field: str = "numbers",
) -> list[Item]:
    """The numbers a request names, normalised, found in the viewer's subtree, locked."""
    if not raws:
        problems.add(ErrorCode.VALIDATION, "name at least one number", ["input", field])
        return []
    if len(raws) > caller.policy.max_batch:
        problems.add(
            ErrorCode.LIMIT_EXCEEDED,
            f"at most {caller.policy.max_batch} numbers a request; {len(raws)} given",
            ["input", field],
        )
        return []
    wanted: dict[str, tuple[str, ...]] = {}
    for index, raw in enumerate(raws):
        path: tuple[str, ...] = ("input", field, str(index))
        e164 = phone.normalise(raw)
        if e164 is None:
            problems.add(ErrorCode.VALIDATION, f"{raw!r} is not a phone number", path, raw)
        elif e164 in wanted:
            problems.add(ErrorCode.VALIDATION, f"{e164} is named twice", path, e164)
        else:
            wanted[e164] = path
    if not wanted:
        return []
    query = (
        sa.select(Number, Organization.path)
        .join(Organization, Organization.id == Number.organization_id)
        .where(Number.e164.in_(wanted), subtree_clause(caller.viewer.org_path))
        .with_for_update(of=Number)
    )
    found = {row.e164: (row, pool_path) for row, pool_path in (await session.execute(query)).all()}
    missing = [e164 for e164 in wanted if e164 not in found]
    moved = await _moved_while_waiting(session, caller, missing) if missing else set()
    items = []
    for e164, path in wanted.items():
        if e164 in moved:
            problems.add(
                ErrorCode.CONFLICT,
                f"{e164} was changed by a concurrent request while this one waited; try again",
                path,
                e164,
            )
        elif e164 not in found:
            problems.add(ErrorCode.NOT_FOUND, f"{e164} is not in your inventory", path, e164)
        else:
            row, pool_path = found[e164]
            items.append(Item(row=row, field=path, pool_path=pool_path))
    return items


async def _moved_while_waiting(
    session: AsyncSession, caller: Caller, missing: Sequence[str]
) -> set[str]:
    """Of numbers the locking query missed, those in the viewer's subtree after all.

    On PostgreSQL a row another transaction holds is waited for, then checked again
    as that transaction left it, but against the pool row read before the wait: a
    number moved to another pool meanwhile drops out of the join, though it is still
    in the subtree. This statement reads afresh (READ COMMITTED); a number it finds
    was changed under the request, which is a conflict, not an unknown number.
    """
    query = (
        sa.select(Number.e164)
        .join(Organization, Organization.id == Number.organization_id)
        .where(Number.e164.in_(missing), subtree_clause(caller.viewer.org_path))
    )
    return set(await session.scalars(query))


async def reload(session: AsyncSession, items: Sequence[Item]) -> list[Number]:
    query = (
        sa.select(Number)
        .where(Number.id.in_([item.row.id for item in items]))
        .order_by(Number.e164)
        .execution_options(populate_existing=True)
    )
    return list((await session.scalars(query)).all())


async def move(
    session: AsyncSession,
    caller: Caller,
    problems: Problems,
    items: Sequence[Item],
    action: Action,
    *,
    values: Values,
    guard: Guard | None = None,
    remark: str | None = None,
) -> list[Number]:
    """Plan the moves; if no item has a problem, apply them and read the numbers back."""
    text.check(problems, remark, "remark", free_text=True)
    moves = plan(items, action, problems, values=values, guard=guard)
    problems.raise_if_any()
    await apply(session, moves, action, actor=caller.actor, at=caller.clock.now(), remark=remark)
    return await reload(session, items)


async def plain_move(
    session: AsyncSession,
    caller: Caller,
    numbers: Sequence[str],
    action: Action,
    role: Role,
    remark: str | None,
) -> list[Number]:
    """A move that only changes the state (its table row clears the rest)."""
    caller.viewer.require(role)
    problems = Problems()
    items = await load_items(session, caller, numbers, problems)
    return await move(
        session, caller, problems, items, action, values=lambda _row: {}, remark=remark
    )
