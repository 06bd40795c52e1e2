"""Port orders: numbers coming in from another carrier, or leaving for one (DESIGN.md, "Porting").

An order moves DRAFT -> SUBMITTED -> FOC_CONFIRMED -> COMPLETED; it may be cancelled
while open and rejected once submitted (`ORDER_MOVES`; any other move is
INVALID_TRANSITION). Its numbers move by the lifecycle table like any other
(PORT_IN, PORT_OUT, COMPLETE_PORT_*, CANCEL_PORT), through the one guarded writer.

A port-out remembers, in its port_order_numbers row, every state column the number
left (`REMEMBERED`); cancelling or rejecting the order writes them back, so the number
is exactly as it was. A reservation or term that ended meanwhile is then past its end,
and the next sweep lapses or ends it as it would have.

A number is in at most one open order: a partial unique index says so on both
databases, and the table refuses to port a number already PORTING_IN or PORTING_OUT.
"""

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain import ids, intake, operators, organizations, phone, port_notices, series, text
from domain.access import Caller, Viewer
from domain.details import MAX_VENDOR, NumberDetails, capability_mask, check_text
from domain.errors import DomainError, ErrorCode, Problems
from domain.items import load_items, reload
from domain.lifecycle import Action, Item, apply, plan, record
from domain.organizations import subtree_clause
from domain.pagination import Page, PageRequest, make_page
from models import (
    Capability,
    DeletionReason,
    Notice,
    NoticeKind,
    NoticeStatus,
    Number,
    NumberState,
    Organization,
    PortDirection,
    PortOrder,
    PortOrderNumber,
    PortOrderStatus,
    Role,
)
from models.base import column_length
from models.numbers import NumberRecord
from models.porting import REMEMBERED

TYPE_NAME = "PortOrder"
MAX_NUMBERS = 1_000
MAX_CARRIER = column_length(PortOrder.carrier)
MAX_REFERENCE = column_length(PortOrder.reference)

DRAFT, SUBMITTED, FOC_CONFIRMED = (
    PortOrderStatus.DRAFT,
    PortOrderStatus.SUBMITTED,
    PortOrderStatus.FOC_CONFIRMED,
)
OPEN = (DRAFT, SUBMITTED, FOC_CONFIRMED)


class OrderAction(enum.StrEnum):
    SUBMIT = "submit"
    CONFIRM = "confirm"
    COMPLETE = "complete"
    CANCEL = "cancel"
    REJECT = "reject"


# (status, action) -> status. A pair that is not here is INVALID_TRANSITION. Confirming
# again sets a new FOC date (and a new notice).
ORDER_MOVES: Mapping[OrderAction, Mapping[PortOrderStatus, PortOrderStatus]] = {
    OrderAction.SUBMIT: {DRAFT: SUBMITTED},
    OrderAction.CONFIRM: {SUBMITTED: FOC_CONFIRMED, FOC_CONFIRMED: FOC_CONFIRMED},
    OrderAction.COMPLETE: {FOC_CONFIRMED: PortOrderStatus.COMPLETED},
    OrderAction.CANCEL: {status: PortOrderStatus.CANCELLED for status in OPEN},
    OrderAction.REJECT: {
        SUBMITTED: PortOrderStatus.REJECTED,
        FOC_CONFIRMED: PortOrderStatus.REJECTED,
    },
}

# Statuses whose port-out numbers go back to the state they left.
RETURNED = (PortOrderStatus.CANCELLED, PortOrderStatus.REJECTED)

# What closing an order does to its numbers: (action, direction) -> the lifecycle action.
CLOSING: Mapping[tuple[OrderAction, PortDirection], Action] = {
    (OrderAction.COMPLETE, PortDirection.IN): Action.COMPLETE_PORT_IN,
    (OrderAction.COMPLETE, PortDirection.OUT): Action.COMPLETE_PORT_OUT,
    (OrderAction.CANCEL, PortDirection.IN): Action.CANCEL_PORT,
    (OrderAction.CANCEL, PortDirection.OUT): Action.CANCEL_PORT,
    (OrderAction.REJECT, PortDirection.IN): Action.CANCEL_PORT,
    (OrderAction.REJECT, PortDirection.OUT): Action.CANCEL_PORT,
}


@dataclass(frozen=True)
class PortInRequest:
    numbers: Sequence[str]
    carrier: str
    vendor: str
    country: str
    sku: str
    capabilities: Sequence[Capability] | None = None
    reference: str | None = None
    remark: str | None = None
    organization_id: str | None = None


def _check_order_texts(
    problems: Problems, carrier: str, reference: str | None, remark: str | None
) -> None:
    check_text(problems, carrier, "carrier", required=True, limit=MAX_CARRIER)
    check_text(problems, reference, "reference", limit=MAX_REFERENCE)
    text.check(problems, remark, "remark", free_text=True)


async def _new_order(
    session: AsyncSession,
    direction: PortDirection,
    pool_id: int,
    carrier: str,
    reference: str | None,
    remark: str | None,
    now: datetime,
) -> PortOrder:
    order = PortOrder(
        direction=direction,
        status=DRAFT,
        organization_id=pool_id,
        carrier=carrier.strip(),
        reference=reference.strip() or None if reference is not None else None,
        remark=remark,
        created_at=now,
        updated_at=now,
    )
    session.add(order)
    await session.flush()
    return order


async def create_port_in(
    session: AsyncSession, caller: Caller, request: PortInRequest
) -> PortOrder:
    """A DRAFT port-in order whose numbers join the pool as PORTING_IN.

    Numbers new to the inventory are created; DELETED numbers in the caller's subtree
    come back. A number held anywhere else is ALREADY_EXISTS, and one held outside the
    subtree is answered and counted as addNumbers does (`domain.intake`).
    """
    allowance = await intake.admit(session, caller)
    problems = Problems()
    country = request.country.strip().upper()
    _check_order_texts(problems, request.carrier, request.reference, request.remark)
    check_text(problems, request.vendor, "vendor", required=True, limit=MAX_VENDOR)
    details = NumberDetails(sku=request.sku, capabilities=request.capabilities)
    details.check(problems, creating=True)
    if not phone.is_country(country):
        problems.add(
            ErrorCode.VALIDATION, f"{country!r} is not an ISO 3166-1 country", ["input", "country"]
        )
    pool: Organization | None
    if request.organization_id is None:
        pool = await session.get(Organization, caller.viewer.org_id)
    else:
        pool = await organizations.named(
            session, caller.viewer, request.organization_id, ["input", "organizationId"], problems
        )
    if not request.numbers:
        problems.add(ErrorCode.VALIDATION, "name 1 to 1,000 numbers", ["input", "numbers"])
    if len(request.numbers) > MAX_NUMBERS:
        problems.add(
            ErrorCode.LIMIT_EXCEEDED,
            f"a port order holds at most {MAX_NUMBERS} numbers; {len(request.numbers)} given",
            ["input", "numbers"],
        )
        problems.raise_if_any()
    wanted: dict[str, tuple[str, ...]] = {}
    for index, raw in enumerate(request.numbers):
        path: tuple[str, ...] = ("input", "numbers", str(index))
        if not phone.is_country(country):
            break  # reported once, above
        e164 = phone.normalise_for_country(raw, country)
        if e164 is None:
            named = phone.normalise_valid(raw) or raw
            problems.add(
                ErrorCode.VALIDATION, f"{raw!r} is not a valid number of {country}", path, named
            )
        elif e164 in wanted:
            problems.add(ErrorCode.VALIDATION, f"{e164} is named twice", path, e164)
        else:
            wanted[e164] = path
    existing = await session.execute(
        sa.select(Number, Organization.path)
        .join(Organization, Organization.id == Number.organization_id)
        .where(Number.e164.in_(wanted))
        .order_by(Number.e164)
        .with_for_update(of=Number)
    )
    elsewhere = 0
    returning: list[Item] = []
    for row, pool_path in existing.all():
        mine = organizations.in_subtree(pool_path, caller.viewer.org_path)
        if mine and row.state is NumberState.DELETED:
            returning.append(Item(row=row, field=wanted[row.e164], pool_path=pool_path))
            continue
        elsewhere += not mine
        problems.add(
            ErrorCode.ALREADY_EXISTS, f"{row.e164} {intake.HELD}", wanted[row.e164], row.e164
        )
    kept = intake.counting(caller, elsewhere)
    if elsewhere > allowance:
        raise intake.refused(caller, kept)
    problems.raise_if_any(kept)
    assert pool is not None
    now = caller.clock.now()
    series_of = await series.matcher(session)
    vendor = request.vendor.strip()
    operator = (await operators.link(session, caller.viewer, [request.vendor], now))[vendor]
    fields: dict[str, Any] = {
        "vendor": operator.name,
        "operator_id": operator.operator_id,
        "country": country,
        "sku": request.sku.strip(),
        "capabilities": capability_mask(request.capabilities or [Capability.VOICE]),
        "organization_id": pool.id,
        "golden": False,
        "ported_in": False,
    }
    # A DELETED number comes back as new: none of its old descriptive fields.
    cleared = dict.fromkeys(("routing", "visible_to_domain", "tag", "notes", "after_hold"))
    moves = plan(
        returning,
        Action.PORT_IN,
        problems,
        values=lambda row: {**fields, **cleared, "series_id": series_of(row.e164)},
    )
    problems.raise_if_any()
    order = await _new_order(
        session,
        PortDirection.IN,
        pool.id,
        request.carrier,
        request.reference,
        request.remark,
        now,
    )
    new = [e164 for e164 in wanted if e164 not in {item.row.e164 for item in returning}]
    if new:
        await session.execute(
            sa.insert(Number),
            [
                {
                    **fields,
                    "e164": e164,
                    "state": NumberState.PORTING_IN,
                    "series_id": series_of(e164),
                    "state_changed_at": now,
                }
                for e164 in new
            ],
        )
        created = await session.scalars(sa.select(Number.id).where(Number.e164.in_(new)))
        await record(
            session,
            [(number_id, None, NumberState.PORTING_IN) for number_id in created],
            Action.PORT_IN.value,
            actor=caller.actor,
            at=now,
            remark=request.remark,
        )
    await apply(session, moves, Action.PORT_IN, actor=caller.actor, at=now, remark=request.remark)
    number_ids = await session.scalars(sa.select(Number.id).where(Number.e164.in_(wanted)))
    await session.execute(
        sa.insert(PortOrderNumber),
        [{"order_id": order.id, "number_id": number_id} for number_id in number_ids],
    )
    return order


async def create_port_out(
    session: AsyncSession,
    caller: Caller,
    numbers: Sequence[str],
    *,
    carrier: str,
    reference: str | None,
    remark: str | None,
) -> PortOrder:
    """A DRAFT port-out order: numbers of one pool go PORTING_OUT, remembering what they left."""
    caller.viewer.require(Role.ADMIN)
    problems = Problems()
    _check_order_texts(problems, carrier, reference, remark)
    items = await load_items(session, caller, numbers, problems)
    pools = {item.row.organization_id for item in items}
    if len(pools) > 1:
        first_pool = items[0].row.organization_id
        for item in items:
            if item.row.organization_id != first_pool:
                problems.add(
                    ErrorCode.VALIDATION,
                    f"{item.row.e164} is in another pool than {items[0].row.e164}: a port-out "
                    f"order holds numbers of one pool",
                    item.field,
                    item.row.e164,
                )
    moves = plan(items, Action.PORT_OUT, problems, values=lambda _row: {})
    problems.raise_if_any()
    now = caller.clock.now()
    order = await _new_order(
        session, PortDirection.OUT, pools.pop(), carrier, reference, remark, now
    )
    # The rows as loaded, before the move clears them: what cancelling puts back.
    remembered = [
        {
            "order_id": order.id,
            "number_id": item.row.id,
            **{f"prior_{name}": getattr(item.row, name) for name in REMEMBERED},
        }
        for item in items
    ]
    await apply(session, moves, Action.PORT_OUT, actor=caller.actor, at=now, remark=remark)
    await session.execute(sa.insert(PortOrderNumber), remembered)
    return order


def _visible(viewer: Viewer) -> sa.ColumnElement[bool]:
    pools = sa.select(Organization.id).where(subtree_clause(viewer.org_path))
    return PortOrder.organization_id.in_(pools)


async def find(session: AsyncSession, viewer: Viewer, ref: str) -> PortOrder | None:
    """The order `ref` names if the viewer sees it (a bad id is None as well)."""
    key = ids.decode_uuid(ref, TYPE_NAME)
    if key is None:
        return None
    query = sa.select(PortOrder).where(PortOrder.uuid == key, _visible(viewer))
    return (await session.scalars(query)).one_or_none()


async def _order_for_update(
    session: AsyncSession, viewer: Viewer, ref: str, problems: Problems
) -> PortOrder:
    """The order, locked; NOT_FOUND (with every other problem found) if the viewer does
    not see it, exactly as for a made-up id."""
    key = ids.decode_uuid(ref, TYPE_NAME)
    order = None
    if key is not None:
        query = (
            sa.select(PortOrder)
            .where(PortOrder.uuid == key, _visible(viewer))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        order = (await session.scalars(query)).one_or_none()
    if order is None:
        problems.add(ErrorCode.NOT_FOUND, "no such port order", ["input", "id"])
        problems.raise_if_any()
    assert order is not None
    return order


async def _items(session: AsyncSession, order: PortOrder) -> list[tuple[Item, PortOrderNumber]]:
    """The order's numbers, locked, with what each left (for a port-out)."""
    query = (
        sa.select(Number, PortOrderNumber, Organization.path)
        .join(PortOrderNumber, PortOrderNumber.number_id == Number.id)
        .join(Organization, Organization.id == Number.organization_id)
        .where(PortOrderNumber.order_id == order.id)
        .order_by(Number.e164)
        .with_for_update(of=Number)
        .execution_options(populate_existing=True)
    )
    return [
        (Item(row=row, field=("input", "id"), pool_path=path), kept)
        for row, kept, path in (await session.execute(query)).all()
    ]


def _closing_values(action: Action, kept: Mapping[int, PortOrderNumber]) -> tuple[Any, Any]:
    """(values, prior) for plan: what each number's closing move sets, and returns to."""
    if action is Action.COMPLETE_PORT_IN:
        return (lambda _row: {"ported_in": True}), None
    if action is Action.COMPLETE_PORT_OUT:
        return (lambda _row: {"deletion_reason": DeletionReason.PORTED_OUT}), None

    def values(row: Number) -> dict[str, Any]:
        if row.state is NumberState.PORTING_IN:
            return {"deletion_reason": DeletionReason.PORT_CANCELLED}
        left = kept[row.id]
        return {name: getattr(left, f"prior_{name}") for name in REMEMBERED if name != "state"}

    def prior(row: Number) -> NumberState | None:
        return kept[row.id].prior_state

    return values, prior


async def act(
    session: AsyncSession,
    caller: Caller,
    ref: str,
    action: OrderAction,
    *,
    remark: str | None,
    foc_date: datetime | None = None,
) -> PortOrder:
    """Move the order (and, when it closes, its numbers), all or nothing."""
    caller.viewer.require(Role.ADMIN)
    problems = Problems()
    text.check(problems, remark, "remark", free_text=True)
    now = caller.clock.now()
    if action is OrderAction.CONFIRM and (foc_date is None or foc_date <= now):
        problems.add(ErrorCode.VALIDATION, "focDate must be in the future", ["input", "focDate"])
    order = await _order_for_update(session, caller.viewer, ref, problems)
    from_status = order.status
    to_status = ORDER_MOVES[action].get(from_status)
    if to_status is None:
        problems.add(
            ErrorCode.INVALID_TRANSITION,
            f"the order is {from_status.value}: it cannot {action.value}",
            ["input", "id"],
        )
        problems.raise_if_any()
    assert to_status is not None
    closing = to_status not in OPEN
    moves = []
    number_action = CLOSING.get((action, order.direction))
    if closing and number_action is not None:
        found = await _items(session, order)
        values, prior = _closing_values(number_action, {k.number_id: k for _, k in found})
        moves = plan(
            [item for item, _ in found], number_action, problems, values=values, prior=prior
        )
    problems.raise_if_any()
    changes: dict[str, Any] = {"status": to_status, "updated_at": now}
    if remark is not None:
        changes["remark"] = remark
    if action is OrderAction.CONFIRM:
        changes["foc_date"] = foc_date
    if closing:
        changes["closed_at"] = now
    result = await session.execute(
        sa.update(PortOrder)
        .where(PortOrder.id == order.id, PortOrder.status == from_status)
        .values(changes)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise DomainError.one(ErrorCode.CONFLICT, "the order changed meanwhile; try again")
    if number_action is not None and moves:
        await apply(session, moves, number_action, actor=caller.actor, at=now, remark=remark)
    if closing and order.direction is PortDirection.OUT and to_status in RETURNED:
        await _revive_notices(session, order.id)
    if closing:
        await session.execute(
            sa.update(PortOrderNumber)
            .where(PortOrderNumber.order_id == order.id)
            .values(closed_at=now)
            .execution_options(synchronize_session=False)
        )
    if action is OrderAction.CONFIRM or closing:
        # A notice about another date, or about an order now closed, no longer applies.
        await port_notices.cancel_stale(session, order.id)
    await session.refresh(order)
    return order


async def _revive_notices(session: AsyncSession, order_id: int) -> None:
    """Warnings cancelled while the numbers were away apply again once they are back with
    the same end: pending again, for the sweep to send (or cancel, if they do not apply)."""
    kept = sa.select(PortOrderNumber).where(
        PortOrderNumber.order_id == order_id, PortOrderNumber.number_id == Notice.number_id
    )
    prior_end = kept.with_only_columns(PortOrderNumber.prior_expires_at).scalar_subquery()
    prior_paid = kept.with_only_columns(PortOrderNumber.prior_paid_until).scalar_subquery()
    ends = (NoticeKind.RESERVATION_LAPSING, NoticeKind.LOCK_LAPSING)
    await session.execute(
        sa.update(Notice)
        .where(
            Notice.status == NoticeStatus.CANCELLED,
            Notice.number_id.in_(
                sa.select(PortOrderNumber.number_id).where(PortOrderNumber.order_id == order_id)
            ),
            sa.or_(
                sa.and_(Notice.kind.in_(ends), Notice.expires_at == prior_end),
                sa.and_(Notice.kind == NoticeKind.SERVICE_ENDING, Notice.expires_at == prior_paid),
            ),
        )
        .values(status=NoticeStatus.PENDING)
        .execution_options(synchronize_session=False)
    )


# ---- reading ----


@dataclass(frozen=True)
class PortOrderFilter:
    direction: PortDirection | None = None
    statuses: Sequence[PortOrderStatus] | None = None
    organization_id: str | None = None
    include_descendants: bool = True


async def _where(
    session: AsyncSession, viewer: Viewer, spec: PortOrderFilter
) -> list[sa.ColumnElement[bool]]:
    where = [_visible(viewer)]
    if spec.direction is not None:
        where.append(PortOrder.direction == spec.direction)
    if spec.statuses is not None:
        where.append(PortOrder.status.in_(spec.statuses))
    if spec.organization_id is not None:
        # As for a made-up one, an organization outside the subtree finds no orders.
        if organizations.key_of(spec.organization_id) is None:
            message = organizations.not_a_reference(spec.organization_id)
            raise DomainError.one(ErrorCode.VALIDATION, message, ["filter", "organizationId"])
        org = await organizations.find_visible(session, viewer, spec.organization_id)
        if org is None:
            where.append(sa.false())
        elif spec.include_descendants:
            pools = sa.select(Organization.id).where(subtree_clause(org.path))
            where.append(PortOrder.organization_id.in_(pools))
        else:
            where.append(PortOrder.organization_id == org.id)
    return where


async def listed(
    session: AsyncSession, viewer: Viewer, spec: PortOrderFilter, request: PageRequest
) -> tuple[Page[PortOrder], list[sa.ColumnElement[bool]]]:
    """A page of the orders the viewer sees, newest first; and the clauses, to count them."""
    where = await _where(session, viewer, spec)
    query = sa.select(PortOrder).where(*where)
    if request.after is not None:
        after_id = request.after[0]
        if not after_id.isdigit() or len(after_id) > 18:
            raise DomainError.one(
                ErrorCode.VALIDATION, "after is not a cursor of this list", ["after"]
            )
        query = query.where(PortOrder.id < int(after_id))
    query = query.order_by(PortOrder.id.desc()).limit(request.first + 1)
    return make_page((await session.scalars(query)).all(), request), where


async def count(session: AsyncSession, where: Sequence[sa.ColumnElement[bool]]) -> int:
    query = sa.select(sa.func.count()).select_from(PortOrder).where(*where)
    return (await session.execute(query)).scalar_one()


async def numbers_page(
    session: AsyncSession, order_id: int, request: PageRequest
) -> Page[NumberRecord]:
    """The order's numbers by E.164, after the cursor's number."""
    query = (
        sa.select(Number)
        .join(PortOrderNumber, PortOrderNumber.number_id == Number.id)
        .where(PortOrderNumber.order_id == order_id)
    )
    if request.after is not None:
        query = query.where(Number.e164 > request.after[0])
    query = query.order_by(Number.e164).limit(request.first + 1)
    return make_page((await session.scalars(query)).all(), request)


async def number_count(session: AsyncSession, order_id: int) -> int:
    query = sa.select(sa.func.count()).where(PortOrderNumber.order_id == order_id)
    return (await session.execute(query)).scalar_one()


async def open_orders(session: AsyncSession, number_ids: Sequence[int]) -> dict[int, PortOrder]:
    """The open order each of these numbers is in, by number id."""
    query = (
        sa.select(PortOrderNumber.number_id, PortOrder)
        .join(PortOrder, PortOrder.id == PortOrderNumber.order_id)
        .where(PortOrderNumber.number_id.in_(number_ids), PortOrderNumber.closed_at.is_(None))
    )
    return {number_id: order for number_id, order in (await session.execute(query)).all()}


async def numbers_of(session: AsyncSession, order: PortOrder) -> list[Number]:
    items = [item for item, _ in await _items(session, order)]
    return await reload(session, items)
