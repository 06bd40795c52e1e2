"""Subscription events from the billing side: expiry, termination, reactivation, swap."""

from collections.abc import Callable
from datetime import timedelta
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain import number_policy, organizations, text
from domain.access import Caller
from domain.errors import ErrorCode, Problems
from domain.items import load_items, reload
from domain.lifecycle import TRANSITIONS, Action, Item, apply, plan
from domain.number_policy import Periods
from domain.organizations import subtree_clause
from models import Number, NumberState, Organization, ReservationKind, ReservationReason, Role

_HELD_BY_SUBSCRIPTION = (
    ReservationReason.SUBSCRIPTION_EXPIRED,
    ReservationReason.SUBSCRIPTION_TERMINATED,
)


async def _items_where(
    session: AsyncSession, caller: Caller, *conditions: sa.ColumnElement[bool]
) -> list[Item]:
    query = (
        sa.select(Number, Organization.path)
        .join(Organization, Organization.id == Number.organization_id)
        .where(subtree_clause(caller.viewer.org_path), *conditions)
        .order_by(Number.e164)
        .with_for_update(of=Number)
    )
    return [
        Item(row=row, field=("input", "subscriptionUuid"), pool_path=path)
        for row, path in (await session.execute(query)).all()
    ]


async def _hold(
    session: AsyncSession,
    caller: Caller,
    subscription_uuid: UUID,
    remark: str | None,
    action: Action,
    reason: ReservationReason,
    period: Callable[[Periods], timedelta],
) -> list[Number]:
    """The subscription's numbers leave it and stay reserved for its owner for the `period`
    of the policy of the pool each is in."""
    caller.viewer.require(Role.OPERATOR)
    problems = Problems()
    text.check(problems, remark, "remark", free_text=True)
    items = await _items_where(
        session,
        caller,
        Number.subscription_uuid == subscription_uuid,
        # ASSIGNED, and BLOCKED: the block ends with the subscription.
        Number.state.in_(TRANSITIONS[action]),
    )
    if not items:
        problems.add(
            ErrorCode.NOT_FOUND,
            f"no assigned numbers of subscription {subscription_uuid}",
            ["input", "subscriptionUuid"],
        )
    now = caller.clock.now()
    periods = await number_policy.for_paths(session, {i.pool_path for i in items}, caller.policy)
    ends = {i.row.id: now + period(periods[i.pool_path]) for i in items}
    moves = plan(
        items,
        action,
        problems,
        values=lambda row: {
            "reservation_kind": ReservationKind.FREE,
            "reservation_reason": reason,
            "reserved_for_id": row.owner_id,
            "reservation_remark": remark,
            "reserved_at": now,
            "expires_at": ends[row.id],
            "held_for_subscription_uuid": subscription_uuid,
        },
    )
    problems.raise_if_any()
    await apply(session, moves, action, actor=caller.actor, at=now, remark=remark)
    return await reload(session, items)


async def expired(
    session: AsyncSession, caller: Caller, subscription_uuid: UUID, remark: str | None
) -> list[Number]:
    return await _hold(
        session,
        caller,
        subscription_uuid,
        remark,
        Action.SUBSCRIPTION_EXPIRED,
        ReservationReason.SUBSCRIPTION_EXPIRED,
        lambda periods: periods.expired_hold,
    )


async def terminated(
    session: AsyncSession, caller: Caller, subscription_uuid: UUID, remark: str | None
) -> list[Number]:
    return await _hold(
        session,
        caller,
        subscription_uuid,
        remark,
        Action.SUBSCRIPTION_TERMINATED,
        ReservationReason.SUBSCRIPTION_TERMINATED,
        lambda periods: periods.terminated_hold,
    )


async def reactivated(
    session: AsyncSession, caller: Caller, subscription_uuid: UUID, remark: str | None
) -> list[Number]:
    """Numbers still held after the subscription's expiry or termination return to it."""
    caller.viewer.require(Role.OPERATOR)
    problems = Problems()
    text.check(problems, remark, "remark", free_text=True)
    now = caller.clock.now()
    items = await _items_where(
        session,
        caller,
        Number.held_for_subscription_uuid == subscription_uuid,
        Number.state == NumberState.RESERVED,
        Number.reservation_reason.in_(_HELD_BY_SUBSCRIPTION),
        sa.or_(Number.expires_at.is_(None), Number.expires_at > now),
    )
    if not items:
        problems.add(
            ErrorCode.NOT_FOUND,
            f"no numbers are still held for subscription {subscription_uuid}",
            ["input", "subscriptionUuid"],
        )
    moves = plan(
        items,
        Action.SUBSCRIPTION_REACTIVATED,
        problems,
        values=lambda row: {
            "subscription_uuid": subscription_uuid,
            "owner_id": row.reserved_for_id,
        },
    )
    problems.raise_if_any()
    await apply(
        session, moves, Action.SUBSCRIPTION_REACTIVATED, actor=caller.actor, at=now, remark=remark
    )
    return await reload(session, items)


async def swap(
    session: AsyncSession,
    caller: Caller,
    subscription_uuid: UUID,
    old_number: str,
    new_number: str,
    remark: str | None,
) -> list[Number]:
    """The old number leaves the subscription (held for the owner for its pool's swap hold);
    the new one joins."""
    caller.viewer.require(Role.OPERATOR)
    problems = Problems()
    text.check(problems, remark, "remark", free_text=True)
    now = caller.clock.now()
    old = _only(await load_items(session, caller, [old_number], problems, "oldNumber"))
    new = _only(await load_items(session, caller, [new_number], problems, "newNumber"))
    old_items = [_at(old, "oldNumber")] if old else []
    new_items = [_at(new, "newNumber")] if new else []
    if old and new and old.row.id == new.row.id:
        problems.add(ErrorCode.VALIDATION, "the old and new numbers are the same", ["input"])
        old_items = new_items = []
    owner = None
    if old is not None and (
        old.row.state not in TRANSITIONS[Action.SWAP_OUT]
        or old.row.subscription_uuid != subscription_uuid
    ):
        problems.add(
            ErrorCode.INVALID_TRANSITION,
            f"{old.row.e164} is not assigned to subscription {subscription_uuid}",
            ["input", "oldNumber"],
            old.row.e164,
        )
        old_items = []
    elif old is not None and old.row.owner_id is not None:
        found = await organizations.by_ids(session, [old.row.owner_id])
        owner = found[old.row.owner_id]
    old_pools = {item.row.id: item.pool_path for item in old_items}
    periods = await number_policy.for_paths(session, old_pools.values(), caller.policy)
    holder_ids = [new.row.reserved_for_id] if new and new.row.reserved_for_id else []
    holders = await organizations.by_ids(session, holder_ids)
    out_moves = plan(
        old_items,
        Action.SWAP_OUT,
        problems,
        values=lambda row: {
            "reservation_kind": ReservationKind.FREE,
            "reservation_reason": ReservationReason.SWAPPED_OUT,
            "reserved_for_id": row.owner_id,
            "reservation_remark": remark,
            "reserved_at": now,
            "expires_at": now + periods[old_pools[row.id]].swap_hold,
        },
    )
    in_moves = plan(
        new_items,
        Action.SWAP_IN,
        problems,
        guard=lambda row: organizations.use_refusal(
            row, new.pool_path if new else "", owner, holders
        ),
        values=lambda row: {
            "subscription_uuid": subscription_uuid,
            "owner_id": owner.id if owner else row.organization_id,
        },
    )
    problems.raise_if_any()
    await apply(session, out_moves, Action.SWAP_OUT, actor=caller.actor, at=now, remark=remark)
    await apply(session, in_moves, Action.SWAP_IN, actor=caller.actor, at=now, remark=remark)
    return await reload(session, [*old_items, *new_items])


def _only(items: list[Item]) -> Item | None:
    return items[0] if items else None


def _at(item: Item, field: str) -> Item:
    return Item(row=item.row, field=("input", field), pool_path=item.pool_path)


__all__ = ["expired", "reactivated", "swap", "terminated"]
