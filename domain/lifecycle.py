"""The number lifecycle as one table, and the one function that applies its moves.

Every path that changes a number (API, jobs, CLI) plans its moves with `plan` and
writes them with `apply`: the table decides which moves exist, `apply` writes them
guarded by the state they were planned from, so two processes can never apply the
same move twice, and writes one history event per number moved.
"""

import enum
import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from domain import live
from domain.errors import DomainError, ErrorCode, Problems
from models import Number, NumberEvent, NumberState
from models.base import UTCDateTime

AVAILABLE, RESERVED, LOCKED, ASSIGNED, DELETED, BLOCKED = (
    NumberState.AVAILABLE,
    NumberState.RESERVED,
    NumberState.LOCKED,
    NumberState.ASSIGNED,
    NumberState.DELETED,
    NumberState.BLOCKED,
)
PORTING_IN, PORTING_OUT = NumberState.PORTING_IN, NumberState.PORTING_OUT


class Action(enum.StrEnum):
    """What can happen to a number; the value is the action its history records."""

    RESERVE = "RESERVED"
    EXTEND = "EXTENDED"
    RELEASE = "RELEASED"
    ASSIGN = "ASSIGNED"
    LOCK = "LOCKED"
    UNLOCK = "UNLOCKED"
    DELETE = "DELETED"
    RECOVER = "RECOVERED"
    EDIT = "EDITED"
    SUBSCRIPTION_EXPIRED = "SUBSCRIPTION_EXPIRED"
    SUBSCRIPTION_TERMINATED = "SUBSCRIPTION_TERMINATED"
    SUBSCRIPTION_REACTIVATED = "REACTIVATED"
    SWAP_OUT = "SWAPPED_OUT"
    SWAP_IN = "SWAPPED_IN"
    LAPSE = "EXPIRED"
    # A subscription, cancellation or swap hold lapsed into the after-hold state.
    LOCK_AFTER_HOLD = "LOCKED_AFTER_HOLD"
    RETIRE = "RETIRED"
    ALLOCATE = "ALLOCATED"
    WITHDRAW = "WITHDRAWN"
    # The paid service term (domain/terms.py); RENEW is the operator's and the sweep's.
    CANCEL = "CANCELLED"
    RESTORE = "RESTORED"
    RENEW = "RENEWED"
    SET_BILLING_CYCLES = "BILLING_CYCLES_SET"
    SERVICE_END = "SERVICE_ENDED"
    # Porting (domain/porting.py): the moves of a port order's numbers.
    PORT_IN = "PORT_IN_STARTED"
    PORT_OUT = "PORT_OUT_STARTED"
    COMPLETE_PORT_IN = "PORTED_IN"
    COMPLETE_PORT_OUT = "PORTED_OUT"
    CANCEL_PORT = "PORT_CANCELLED"
    # Blocks (domain/customer.py); the sweep unblocks at a block's end, as "system".
    BLOCK = "BLOCKED"
    UNBLOCK = "UNBLOCKED"
    # Facts integrations set; the number stays in its state.
    SET_REGISTRATION = "REGISTRATION_CHANGED"
    SET_FEATURE = "FEATURE_CHANGED"


# (state, action) -> state. A pair that is not here is INVALID_TRANSITION.
TRANSITIONS: Mapping[Action, Mapping[NumberState, NumberState]] = {
    Action.RESERVE: {AVAILABLE: RESERVED},
    Action.EXTEND: {RESERVED: RESERVED},
    Action.RELEASE: {RESERVED: AVAILABLE},
    Action.ASSIGN: {AVAILABLE: ASSIGNED, RESERVED: ASSIGNED},
    Action.LOCK: {AVAILABLE: LOCKED},
    Action.UNLOCK: {LOCKED: AVAILABLE},
    Action.DELETE: {AVAILABLE: DELETED, LOCKED: DELETED},
    Action.RECOVER: {DELETED: AVAILABLE},
    Action.EDIT: {
        s: s for s in (AVAILABLE, RESERVED, LOCKED, ASSIGNED, BLOCKED, PORTING_IN, PORTING_OUT)
    },
    # A blocked number's subscription ends, or is swapped, as an assigned one's: the block
    # ends with it.
    Action.SUBSCRIPTION_EXPIRED: {ASSIGNED: RESERVED, BLOCKED: RESERVED},
    Action.SUBSCRIPTION_TERMINATED: {ASSIGNED: RESERVED, BLOCKED: RESERVED},
    Action.SUBSCRIPTION_REACTIVATED: {RESERVED: ASSIGNED},
    Action.SWAP_OUT: {ASSIGNED: RESERVED, BLOCKED: RESERVED},
    Action.SWAP_IN: {AVAILABLE: ASSIGNED, RESERVED: ASSIGNED},
    Action.LAPSE: {RESERVED: AVAILABLE, LOCKED: AVAILABLE},
    Action.LOCK_AFTER_HOLD: {RESERVED: LOCKED},
    Action.RETIRE: {RESERVED: DELETED},
    Action.ALLOCATE: {AVAILABLE: AVAILABLE, RESERVED: RESERVED},
    Action.WITHDRAW: {AVAILABLE: AVAILABLE},
    # A number with a paid term (its guards refuse the others, saying why).
    Action.CANCEL: {ASSIGNED: ASSIGNED, BLOCKED: BLOCKED},
    Action.RESTORE: {ASSIGNED: ASSIGNED, BLOCKED: BLOCKED},
    Action.RENEW: {ASSIGNED: ASSIGNED, BLOCKED: BLOCKED, RESERVED: ASSIGNED},
    Action.SET_BILLING_CYCLES: {ASSIGNED: ASSIGNED, BLOCKED: BLOCKED},
    Action.SERVICE_END: {ASSIGNED: RESERVED, BLOCKED: RESERVED},
    # A block keeps the subscription, the owner and the term (KEPT below).
    Action.BLOCK: {ASSIGNED: BLOCKED},
    Action.UNBLOCK: {BLOCKED: ASSIGNED},
    Action.SET_REGISTRATION: {s: s for s in (AVAILABLE, RESERVED, LOCKED, ASSIGNED, BLOCKED)},
    Action.SET_FEATURE: {s: s for s in (AVAILABLE, RESERVED, LOCKED, ASSIGNED, BLOCKED)},
    # A number new to the inventory enters PORTING_IN without a from-state (as add does).
    Action.PORT_IN: {DELETED: PORTING_IN},
    Action.PORT_OUT: {
        AVAILABLE: PORTING_OUT,
        RESERVED: PORTING_OUT,
        ASSIGNED: PORTING_OUT,
        BLOCKED: PORTING_OUT,
    },
    Action.COMPLETE_PORT_IN: {PORTING_IN: AVAILABLE},
    Action.COMPLETE_PORT_OUT: {PORTING_OUT: DELETED},
    # A cancelled port-out returns each number to the state it left: see RETURNS.
    Action.CANCEL_PORT: {PORTING_IN: DELETED},
}

# Moves whose target is the state the number left, one of the states given: cancelling
# or rejecting a port-out returns each number to where PORT_OUT took it from, so a
# source state added to PORT_OUT's row can be returned to without another line.
RETURNS: Mapping[Action, Mapping[NumberState, tuple[NumberState, ...]]] = {
    Action.CANCEL_PORT: {PORTING_OUT: tuple(TRANSITIONS[Action.PORT_OUT])},
}

# Columns that describe one state, and the states in which each may hold a value;
# leaving a state clears them, so a number's fields always agree with its state.
FILLED_IN: dict[str, tuple[NumberState, ...]] = {
    "expires_at": (RESERVED, LOCKED),
    "reservation_kind": (RESERVED,),
    "reservation_reason": (RESERVED,),
    "reserved_for_id": (RESERVED,),
    "reservation_tag": (RESERVED,),
    "reservation_remark": (RESERVED,),
    "reserved_at": (RESERVED,),
    "did_reservation_uuid": (RESERVED,),
    "held_for_subscription_uuid": (RESERVED,),
    "lock_remark": (LOCKED,),
    "locked_at": (LOCKED,),
    "subscription_uuid": (ASSIGNED, BLOCKED),
    "owner_id": (ASSIGNED, BLOCKED),
    "deletion_reason": (DELETED,),
    # A term's period and cycles stay while its number is held after the term ended, so
    # renewNumbers can bring it back; what is paid and the cancellation go with the service.
    "billing_period_months": (ASSIGNED, BLOCKED, RESERVED),
    "billing_cycles": (ASSIGNED, BLOCKED, RESERVED),
    "paid_until": (ASSIGNED, BLOCKED),
    "cancelled_at": (ASSIGNED, BLOCKED),
    "block_reason": (BLOCKED,),
    "blocked_at": (BLOCKED,),
    "blocked_until": (BLOCKED,),
    "block_remark": (BLOCKED,),
}
STATE_COLUMNS = tuple(FILLED_IN)


def filled_in(state: NumberState) -> tuple[str, ...]:
    """The state columns a number in `state` may fill."""
    return tuple(column for column, states in FILLED_IN.items() if state in states)


def kept(row: Number, to_state: NumberState) -> dict[str, Any]:
    """The row's values of the state columns its state and `to_state` share (a move that
    keeps them, as a block keeps the subscription, sets them again)."""
    shared = set(filled_in(row.state)) & set(filled_in(to_state))
    return {column: getattr(row, column) for column in STATE_COLUMNS if column in shared}


def target(state: NumberState, action: Action) -> NumberState | None:
    return TRANSITIONS[action].get(state)


def allowed(state: NumberState, action: Action) -> bool:
    """Whether the table has a move of `action` from `state` (to one state, or back)."""
    return state in TRANSITIONS[action] or state in RETURNS.get(action, {})


@dataclass(frozen=True)
class Item:
    """A number named by a request, with where in the input it was named."""

    row: Number
    field: tuple[str, ...]
    # Path of the organization whose pool holds the number.
    pool_path: str


@dataclass(frozen=True)
class Move:
    row: Number
    to_state: NumberState
    values: Mapping[str, Any]


Guard = Callable[[Number], str | None]
Values = Callable[[Number], Mapping[str, Any]]
# For a move in RETURNS: the state the number left, as remembered.
Prior = Callable[[Number], NumberState | None]


def plan(
    items: Sequence[Item],
    action: Action,
    problems: Problems,
    *,
    values: Values,
    guard: Guard | None = None,
    prior: Prior | None = None,
) -> list[Move]:
    """Check every item against the table and the guard; plan the moves that pass.

    `values` gives the columns a move sets. When the state changes, every other
    state column is cleared. A move back (RETURNS) goes to the state `prior` names,
    if the table allows returning to it.
    """
    moves = []
    for item in items:
        row = item.row
        to_state = target(row.state, action)
        returns_to = RETURNS.get(action, {}).get(row.state, ())
        if to_state is None and returns_to and prior is not None:
            left = prior(row)
            to_state = left if left in returns_to else None
        if to_state is None:
            problems.add(
                ErrorCode.INVALID_TRANSITION,
                f"{row.e164} is {row.state.value}: it cannot be {action.value.lower()}",
                item.field,
                row.e164,
            )
            continue
        refusal = guard(row) if guard else None
        if refusal is not None:
            problems.add(ErrorCode.INVALID_TRANSITION, refusal, item.field, row.e164)
            continue
        changes: dict[str, Any] = {}
        if to_state is not row.state:
            changes = dict.fromkeys(STATE_COLUMNS)
        changes.update(values(row))
        moves.append(Move(row, to_state, changes))
    return moves


async def apply(
    session: AsyncSession,
    moves: Sequence[Move],
    action: Action,
    *,
    actor: str,
    at: datetime,
    remark: str | None,
) -> None:
    """Write the moves, each guarded by the state it was planned from, and their history.

    Moves that set the same values are written by one UPDATE. If a guard finds a
    number no longer in its planned state, a concurrent change won: CONFLICT, and
    the caller's transaction rolls back.
    """
    groups: dict[tuple[Any, ...], tuple[Move, list[int]]] = {}
    for move in moves:
        same = tuple(sorted((k, _comparable(v)) for k, v in move.values.items()))
        key = (move.row.state, move.to_state, same)
        groups.setdefault(key, (move, []))[1].append(move.row.id)
    for (from_state, to_state, _same), (first, ids) in groups.items():
        values = dict(first.values)
        values["state"] = to_state
        if to_state is not from_state:
            # A move back restores when the state it returns to began.
            values.setdefault("state_changed_at", at)
        result = await session.execute(
            sa.update(Number)
            .where(Number.id.in_(ids), Number.state == from_state)
            .values(values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != len(ids):  # type: ignore[attr-defined]
            raise DomainError.one(
                ErrorCode.CONFLICT, "some numbers changed meanwhile; nothing was applied, try again"
            )
    await record(
        session,
        [(m.row.id, m.row.state, m.to_state) for m in moves],
        action.value,
        actor=actor,
        at=at,
        remark=remark,
    )


def _comparable(value: Any) -> Any:
    """A value as a key: JSON values (a number's features) by their text."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


async def record(
    session: AsyncSession,
    changes: Sequence[tuple[int, NumberState | None, NumberState]],
    action: str,
    *,
    actor: str,
    at: datetime,
    remark: str | None,
) -> None:
    """One history event per (number id, from state, to state), once the numbers moved."""
    groups: dict[tuple[NumberState | None, NumberState], list[int]] = defaultdict(list)
    for number_id, from_state, to_state in changes:
        groups[(from_state, to_state)].append(number_id)
    for change, number_ids in groups.items():
        await record_each(
            session, number_ids, action, actor=actor, at=at, remark=remark, change=change
        )


# Ids per statement, well under the bind-parameter limits of SQLite and asyncpg.
CHUNK = 5_000


async def record_each(
    session: AsyncSession,
    number_ids: Sequence[int],
    action: str,
    *,
    actor: str,
    at: datetime,
    remark: str | None,
    change: tuple[NumberState | None, NumberState] | None = None,
) -> None:
    """One event per number: the move `change` names, or none (the state it is in now)."""
    states: dict[str, Any] = {}
    if change is not None:
        states["from_state"] = _literal(change[0])
        states["to_state"] = _literal(change[1])
    for start in range(0, len(number_ids), CHUNK):
        chunk = Number.id.in_(number_ids[start : start + CHUNK])
        await record_where(session, chunk, action, actor=actor, at=at, remark=remark, **states)


def _literal(state: NumberState | None) -> sa.ColumnElement[Any]:
    return sa.null() if state is None else sa.literal(state.value)


async def record_where(
    session: AsyncSession,
    where: sa.ColumnElement[bool],
    action: str,
    *,
    actor: str,
    at: datetime,
    remark: str | None,
    from_state: sa.ColumnElement[Any] | InstrumentedAttribute[Any] = Number.state,
    to_state: sa.ColumnElement[Any] | InstrumentedAttribute[Any] = Number.state,
) -> None:
    """One event per number `where` selects, written by the database: INSERT … SELECT.

    The states default to the one the number is in now. Each event records the pool
    the number is in now: viewers read only their pools' events (domain/history.py).
    """
    select = _events_of(
        Number.id, Number.organization_id, action, from_state, to_state, actor, at, remark
    )
    await _record_selected(session, select.where(where))


async def record_added(
    session: AsyncSession, added: sa.CTE, *, actor: str, at: datetime, remark: str | None
) -> None:
    """An ADDED event per number the INSERT … RETURNING id, organization_id, state that
    `added` holds writes, in the same statement (PostgreSQL): not found again by number."""
    select = _events_of(
        added.c.id, added.c.organization_id, "ADDED", sa.null(), added.c.state, actor, at, remark
    )
    await _record_selected(session, select)


def _events_of(
    number_id: Any,
    organization_id: Any,
    action: str,
    from_state: Any,
    to_state: Any,
    actor: str,
    at: datetime,
    remark: str | None,
) -> sa.Select[Any]:
    """The event rows of numbers, in `_record_selected`'s columns."""
    return sa.select(
        number_id,
        organization_id,
        sa.literal(at, UTCDateTime()),
        sa.literal(action),
        from_state,
        to_state,
        sa.literal(actor),
        sa.literal(remark, sa.Text()),
    )


async def _record_selected(session: AsyncSession, select: sa.Select[Any]) -> None:
    columns = [
        "number_id",
        "organization_id",
        "at",
        "action",
        "from_state",
        "to_state",
        "actor",
        "remark",
    ]
    insert = sa.insert(NumberEvent).from_select(columns, select)
    # The database writes each event's webhook deliveries with it (migration 0015).
    live.outbox_written(session)
    if not live.wanted(session):
        await session.execute(insert)
        return
    # Someone subscribes to live updates: they get these events once this commits.
    live.remember(session, list(await session.scalars(insert.returning(NumberEvent.id))))
