"""Number operations: add, and the moves of the lifecycle table that a person asks for.

Each operation validates all its input and collects every problem first; only if
there are none does it apply its moves (all of them, in the caller's transaction).
The numbers named are loaded and moved by `domain.items`; their descriptive fields
and the rules for them are `domain.details`.
"""

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain import intake, number_policy, operators, organizations, phone, series, terms
from domain.access import Caller, Viewer
from domain.csv import ranges
from domain.details import (
    MAX_RESERVATION_TAG,
    MAX_VENDOR,
    NumberDetails,
    capability_mask,
    check_text,
)
from domain.errors import ErrorCode, Problems
from domain.items import load_items, move, plain_move
from domain.lifecycle import Action, record
from domain.organizations import subtree_clause
from models import (
    Capability,
    DeletionReason,
    Number,
    NumberState,
    Organization,
    ReservationKind,
    ReservationReason,
    Role,
)


async def reserve(
    session: AsyncSession,
    caller: Caller,
    numbers: Sequence[str],
    *,
    reserved_for_id: str,
    remark: str | None,
    tag: str | None,
    expires_at: datetime | None,
) -> list[Number]:
    caller.viewer.require(Role.OPERATOR)
    problems = Problems()
    now = caller.clock.now()
    if expires_at is not None and expires_at <= now:
        problems.add(ErrorCode.VALIDATION, "expiresAt must be after now", ["input", "expiresAt"])
    check_text(problems, tag, "tag", limit=MAX_RESERVATION_TAG)
    holder = await organizations.named(
        session, caller.viewer, reserved_for_id, ["input", "reservedForId"], problems
    )
    items = await load_items(session, caller, numbers, problems)
    pools = {item.row.id: item.pool_path for item in items}
    # Each number's free period is its pool's: the end is at most that far ahead.
    periods = await number_policy.for_paths(session, pools.values(), caller.policy)
    ends = {
        row_id: expires_at or now + periods[path].free_reservation for row_id, path in pools.items()
    }
    if expires_at is not None and expires_at > now:
        for item in items:
            free = periods[item.pool_path].free_reservation
            if expires_at > now + free:
                problems.add(
                    ErrorCode.VALIDATION,
                    f"expiresAt must be at most {free.days} days ahead for {item.row.e164} "
                    f"({(now + free).isoformat()}), its pool's free reservation period",
                    ["input", "expiresAt"],
                    item.row.e164,
                )

    def guard(row: Number) -> str | None:
        if holder is not None and not organizations.in_subtree(holder.path, pools[row.id]):
            return f"{row.e164} is in a pool {holder.name} cannot use"
        return None

    return await move(
        session,
        caller,
        problems,
        items,
        Action.RESERVE,
        guard=guard,
        remark=remark,
        values=lambda row: {
            "reservation_kind": ReservationKind.FREE,
            "reservation_reason": ReservationReason.MANUAL,
            "reserved_for_id": holder.id if holder else None,
            "reservation_tag": tag,
            "reservation_remark": remark,
            "reserved_at": now,
            "expires_at": ends[row.id],
        },
    )


async def extend(
    session: AsyncSession,
    caller: Caller,
    numbers: Sequence[str],
    *,
    did_reservation_uuid: UUID,
    expires_at: datetime,
    remark: str | None,
) -> list[Number]:
    caller.viewer.require(Role.OPERATOR)
    problems = Problems()
    if expires_at <= caller.clock.now():
        problems.add(
            ErrorCode.VALIDATION, "expiresAt must be in the future", ["input", "expiresAt"]
        )
    items = await load_items(session, caller, numbers, problems)

    def guard(row: Number) -> str | None:
        if row.expires_at is None or expires_at <= row.expires_at:
            current = row.expires_at.isoformat() if row.expires_at else "never"
            return f"{row.e164} is reserved until {current}: the new end must be later"
        return None

    return await move(
        session,
        caller,
        problems,
        items,
        Action.EXTEND,
        guard=guard,
        remark=remark,
        values=lambda _row: {
            "reservation_kind": ReservationKind.CHARGED,
            "did_reservation_uuid": did_reservation_uuid,
            "expires_at": expires_at,
        },
    )


async def release(
    session: AsyncSession, caller: Caller, numbers: Sequence[str], *, remark: str | None
) -> list[Number]:
    return await plain_move(session, caller, numbers, Action.RELEASE, Role.OPERATOR, remark)


async def assign(
    session: AsyncSession,
    caller: Caller,
    numbers: Sequence[str],
    *,
    subscription_uuid: UUID,
    owner_uuid: UUID | None,
    remark: str | None,
    billing: terms.TermInput | None = None,
) -> list[Number]:
    caller.viewer.require(Role.OPERATOR)
    problems = Problems()
    term = terms.check(problems, billing, caller.clock.now())
    owner: Organization | None = None
    if owner_uuid is not None:
        owner = await organizations.find_by_uuid(session, owner_uuid)
        if owner is None or not caller.viewer.sees(owner):
            owner = None
            problems.add(ErrorCode.NOT_FOUND, "no such organization", ["input", "ownerUuid"])
    items = await load_items(session, caller, numbers, problems)
    holders = await organizations.by_ids(
        session, sorted({i.row.reserved_for_id for i in items if i.row.reserved_for_id})
    )
    pools = {item.row.id: item.pool_path for item in items}

    def guard(row: Number) -> str | None:
        return organizations.use_refusal(row, pools[row.id], owner, holders)

    return await move(
        session,
        caller,
        problems,
        items,
        Action.ASSIGN,
        guard=guard,
        remark=remark,
        values=lambda row: {
            "subscription_uuid": subscription_uuid,
            "owner_id": owner.id if owner else row.organization_id,
            **term,
        },
    )


async def lock(
    session: AsyncSession,
    caller: Caller,
    numbers: Sequence[str],
    *,
    remark: str | None,
    expires_at: datetime | None,
) -> list[Number]:
    caller.viewer.require(Role.ADMIN)
    problems = Problems()
    now = caller.clock.now()
    if expires_at is not None and expires_at <= now:
        problems.add(
            ErrorCode.VALIDATION, "expiresAt must be in the future", ["input", "expiresAt"]
        )
    items = await load_items(session, caller, numbers, problems)
    # Without an end given, each number is locked for its pool's lock period.
    periods = await number_policy.for_paths(session, {i.pool_path for i in items}, caller.policy)
    ends = {i.row.id: expires_at or now + periods[i.pool_path].lock for i in items}
    return await move(
        session,
        caller,
        problems,
        items,
        Action.LOCK,
        remark=remark,
        values=lambda row: {"locked_at": now, "lock_remark": remark, "expires_at": ends[row.id]},
    )


async def unlock(
    session: AsyncSession, caller: Caller, numbers: Sequence[str], *, remark: str | None
) -> list[Number]:
    return await plain_move(session, caller, numbers, Action.UNLOCK, Role.ADMIN, remark)


async def delete(
    session: AsyncSession,
    caller: Caller,
    numbers: Sequence[str],
    *,
    reason: DeletionReason,
    remark: str | None,
) -> list[Number]:
    caller.viewer.require(Role.ADMIN)
    problems = Problems()
    items = await load_items(session, caller, numbers, problems)
    return await move(
        session,
        caller,
        problems,
        items,
        Action.DELETE,
        remark=remark,
        values=lambda _row: {"deletion_reason": reason},
    )


async def recover(
    session: AsyncSession, caller: Caller, numbers: Sequence[str], *, remark: str | None
) -> list[Number]:
    return await plain_move(session, caller, numbers, Action.RECOVER, Role.ADMIN, remark)


async def edit(
    session: AsyncSession, caller: Caller, numbers: Sequence[str], details: NumberDetails
) -> list[Number]:
    caller.viewer.require(Role.OPERATOR)
    problems = Problems()
    details.check(problems)
    changes = details.values()
    if not changes:
        problems.add(ErrorCode.VALIDATION, "give at least one field to set", ["input"])
    items = await load_items(session, caller, numbers, problems)
    return await move(session, caller, problems, items, Action.EDIT, values=lambda _row: changes)


async def add(
    session: AsyncSession,
    caller: Caller,
    numbers: Sequence[str],
    *,
    vendor: str,
    country: str,
    organization_id: str | None,
    details: NumberDetails,
) -> list[Number]:
    """Put 1 to `max_add` new numbers, AVAILABLE, into an organization's pool.

    A number already held is ALREADY_EXISTS; held outside the caller's subtree, the
    answer says no more and is counted (`domain.intake`).
    """
    allowance = await intake.admit(session, caller)
    problems = Problems()
    country = country.strip().upper()
    check_text(problems, vendor, "vendor", required=True, limit=MAX_VENDOR)
    details.check(problems, creating=True)
    if not phone.is_country(country):
        problems.add(
            ErrorCode.VALIDATION, f"{country!r} is not an ISO 3166-1 country", ["input", "country"]
        )
    pool: Organization | None
    if organization_id is None:
        pool = await session.get(Organization, caller.viewer.org_id)
    else:
        pool = await organizations.named(
            session, caller.viewer, organization_id, ["input", "organizationId"], problems
        )
    if not numbers:
        problems.add(ErrorCode.VALIDATION, "name at least one number", ["input", "numbers"])
    given = _expanded(numbers, country, caller.policy.max_add, problems)
    if len(given) > caller.policy.max_add:
        problems.add(
            ErrorCode.LIMIT_EXCEEDED,
            f"add at most {caller.policy.max_add} numbers a call (import for more); "
            f"{sum(ranges.count(raw, country) for raw in numbers)} given",
            ["input", "numbers"],
        )
        problems.raise_if_any()
    wanted: dict[str, tuple[str, ...]] = {}
    for index, raw in given:
        path: tuple[str, ...] = ("input", "numbers", str(index))
        if not phone.is_country(country):
            break  # reported once, above; numbers cannot be judged without it
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
        sa.select(Number.e164, Organization.path)
        .join(Organization, Organization.id == Number.organization_id)
        .where(Number.e164.in_(wanted))
        .order_by(Number.e164)
    )
    elsewhere = 0
    for e164, pool_path in existing:
        elsewhere += not organizations.in_subtree(pool_path, caller.viewer.org_path)
        problems.add(ErrorCode.ALREADY_EXISTS, f"{e164} {intake.HELD}", wanted[e164], e164)
    kept = intake.counting(caller, elsewhere)
    if elsewhere > allowance:
        raise intake.refused(caller, kept)
    problems.raise_if_any(kept)
    assert pool is not None
    now = caller.clock.now()
    series_of = await series.matcher(session)
    operator = (await operators.link(session, caller.viewer, [vendor], now))[vendor.strip()]
    fields = {
        "vendor": operator.name,
        "operator_id": operator.operator_id,
        "country": country,
        "capabilities": capability_mask(details.capabilities or [Capability.VOICE]),
        "golden": False,
        "ported_in": False,
        **details.values(),
    }
    await session.execute(
        sa.insert(Number),
        [
            {
                **fields,
                "e164": e164,
                "state": NumberState.AVAILABLE,
                "organization_id": pool.id,
                "series_id": series_of(e164),
                "state_changed_at": now,
            }
            for e164 in wanted
        ],
    )
    rows = list(
        (
            await session.scalars(
                sa.select(Number).where(Number.e164.in_(wanted)).order_by(Number.e164)
            )
        ).all()
    )
    await record(
        session,
        [(row.id, None, NumberState.AVAILABLE) for row in rows],
        "ADDED",
        actor=caller.actor,
        at=now,
        remark=None,
    )
    return rows


def _expanded(
    numbers: Sequence[str], country: str, limit: int, problems: Problems
) -> list[tuple[int, str]]:
    """Each number given, with its index; a range (`+6561000100-+6561000149`, any notation
    on both ends) as its numbers, at most `limit` + 1 of them (enough to refuse it)."""
    given: list[tuple[int, str]] = []
    for index, raw in enumerate(numbers):
        written = ranges.ends(raw, country) if phone.is_country(country) else None
        if written is None:
            given.append((index, raw))
            continue
        found = ranges.span(*written)
        if isinstance(found, str):
            problems.add(ErrorCode.VALIDATION, found, ["input", "numbers", str(index)], raw)
            continue
        start, end = found
        width = len(written[0]) - 1
        last = min(end, start + limit - len(given))
        given.extend((index, f"+{n:0{width}d}") for n in range(start, last + 1))
    return given


async def find(session: AsyncSession, viewer: Viewer, raw: str) -> Number | None:
    """A number by its text in any notation, if the viewer's subtree holds it."""
    e164 = phone.normalise(raw)
    if e164 is None:
        return None
    query = (
        sa.select(Number)
        .join(Organization, Organization.id == Number.organization_id)
        .where(Number.e164 == e164, subtree_clause(viewer.org_path))
    )
    return (await session.scalars(query)).one_or_none()
