"""What must hold of the inventory after any load, crash or fault, checked by set-based SQL.

- Every number is in an existing organization's pool, and in the series it names.
- Counts are conserved: the total is the one expected (when given), and the per-pool
  state counters (migration 0005) and quick-filter counters (0015), each the sum of its
  slots, agree with the numbers.
- A number's state columns agree with its state (FILLED_IN, REQUIRED_IN below).
- Its latest history event, where the event records a state, left it in the state it
  is in; no history or notice belongs to a number that does not exist. (Numbers with
  no history at all, as bulk seeds make, are not flagged.)
- A number is PORTING_IN (PORTING_OUT) exactly while it is in an open port-in (port-out)
  order, and in one at most; a port-out remembers a state port-out may leave; a closed
  order has no open numbers.
- No E.164 number is held twice, and every one is ASCII ("+" and 1 to 15 digits 0-9:
  a number in other digits would be a second number beside its ASCII self).

`check` returns one human-readable line per broken invariant, an empty list when the
inventory is healthy. Every rule is a query over whole tables (the per-number column
rules share one scan): about 5 s on a million numbers with 1.5 million events, on
either database. Each line counts the offenders and names a few. On PostgreSQL the
queries read one snapshot, so the check may run while others write; SQLite reads a
snapshot per statement, so check it at rest.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased, outerjoin

from domain import quick_filters
from domain.lifecycle import (
    ASSIGNED,
    BLOCKED,
    DELETED,
    FILLED_IN,
    LOCKED,
    PORTING_IN,
    PORTING_OUT,
    RESERVED,
    TRANSITIONS,
    Action,
)
from domain.porting import OPEN
from models import (
    Notice,
    Number,
    NumberEvent,
    NumberState,
    Organization,
    PortDirection,
    PortOrder,
    PortOrderNumber,
    QuickFilter,
    Series,
)
from models.database import Database
from models.numbers import NumberQuickFilterCount, NumberSeriesCount, NumberStateCount

# On PostgreSQL every query of a check reads the same snapshot.
ONE_SNAPSHOT = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
# Offenders named per broken rule; the count says how many there are in all.
EXAMPLES = 3

# The columns a number in each state cannot do without.
REQUIRED_IN: dict[NumberState, tuple[str, ...]] = {
    RESERVED: ("reservation_kind", "reservation_reason", "reserved_for_id", "reserved_at"),
    LOCKED: ("locked_at",),
    ASSIGNED: ("subscription_uuid", "owner_id"),
    BLOCKED: ("subscription_uuid", "owner_id", "block_reason", "blocked_at"),
    DELETED: ("deletion_reason",),
}


@dataclass(frozen=True)
class Rule:
    """Numbers for which `broken` holds break the rule `says`."""

    says: str
    broken: sa.ColumnElement[bool]


_pool = aliased(Organization)
_series = aliased(Series)
# Every number with the pool and series it names, if they exist.
_NUMBERS = outerjoin(Number, _pool, _pool.id == Number.organization_id).outerjoin(
    _series, _series.id == Number.series_id
)


def _column(name: str) -> sa.ColumnElement[object]:
    column: sa.ColumnElement[object] = getattr(Number, name)
    return column


def _not_e164(e164: sa.ColumnElement[str] | InstrumentedAttribute[str]) -> sa.ColumnElement[bool]:
    """Not "+" and 1 to 15 ASCII digits (trim drops only the ASCII digits, on both ends)."""
    digits = sa.func.substr(e164, 2)
    return sa.or_(
        sa.func.substr(e164, 1, 1) != "+",
        sa.not_(sa.func.length(digits).between(1, 15)),
        sa.func.trim(digits, "0123456789") != "",
    )


def _rules() -> list[Rule]:
    rules = [
        Rule("whose e164 is not ASCII: '+' and 1 to 15 digits 0-9", _not_e164(Number.e164)),
        Rule("are in no existing organization's pool", _pool.id.is_(None)),
        Rule(
            "name a series that is missing or not a prefix of the number",
            sa.and_(
                Number.series_id.is_not(None),
                sa.or_(
                    _series.id.is_(None),
                    sa.func.substr(Number.e164, 1, sa.func.length(_series.prefix))
                    != _series.prefix,
                ),
            ),
        ),
    ]
    rules += _porting_rules()
    for name, states in FILLED_IN.items():
        rules.append(
            Rule(
                f"have {name} set while not {' or '.join(states)}",
                sa.and_(Number.state.not_in(states), _column(name).is_not(None)),
            )
        )
    for state, names in REQUIRED_IN.items():
        rules.append(
            Rule(
                f"are {state} without {', '.join(names)}",
                sa.and_(
                    Number.state == state, sa.or_(*(_column(name).is_(None) for name in names))
                ),
            )
        )
    return rules


def _in_open_order(*more: sa.ColumnElement[bool]) -> sa.Exists:
    return sa.exists().where(
        PortOrderNumber.number_id == Number.id,
        PortOrderNumber.closed_at.is_(None),
        PortOrder.id == PortOrderNumber.order_id,
        *more,
    )


def _porting_rules() -> list[Rule]:
    sources = tuple(TRANSITIONS[Action.PORT_OUT])
    open_orders = sa.select(sa.func.count()).where(
        PortOrderNumber.number_id == Number.id, PortOrderNumber.closed_at.is_(None)
    )
    return [
        Rule(
            "are PORTING_IN outside an open port-in order",
            sa.and_(
                Number.state == PORTING_IN,
                ~_in_open_order(
                    PortOrder.direction == PortDirection.IN, PortOrder.status.in_(OPEN)
                ),
            ),
        ),
        Rule(
            "are PORTING_OUT outside an open port-out order that remembers where they were",
            sa.and_(
                Number.state == PORTING_OUT,
                ~_in_open_order(
                    PortOrder.direction == PortDirection.OUT,
                    PortOrder.status.in_(OPEN),
                    PortOrderNumber.prior_state.in_(sources),
                ),
            ),
        ),
        Rule(
            "are in an open port order while not PORTING_IN or PORTING_OUT",
            sa.and_(Number.state.not_in((PORTING_IN, PORTING_OUT)), _in_open_order()),
        ),
        Rule(
            "are in more than one open port order",
            open_orders.scalar_subquery() > 1,
        ),
        Rule(
            "are open in a closed port order",
            _in_open_order(PortOrder.status.not_in(OPEN)),
        ),
    ]


RULES = _rules()


async def check(db: Database, *, expected_total: int | None = None) -> list[str]:
    """Every broken invariant, one line each; [] when the inventory is healthy."""
    async with db.read() as session:
        if not db.is_sqlite:
            await session.connection(execution_options=ONE_SNAPSHOT)
        violations = await _number_rules(session)
        violations += await _counts(session, expected_total)
        violations += await _duplicates(session)
        violations += await _history(session)
        violations += await _orphans(session)
    return violations


async def _number_rules(session: AsyncSession) -> list[str]:
    """The per-number rules, counted in one scan; examples only for the broken ones."""
    counted = sa.select(
        *(sa.func.coalesce(sa.func.sum(sa.case((r.broken, 1), else_=0)), 0) for r in RULES)
    ).select_from(_NUMBERS)
    counts = (await session.execute(counted)).one()
    violations = []
    for rule, count in zip(RULES, counts, strict=True):
        if count:
            examples = await session.scalars(
                sa.select(Number.e164)
                .select_from(_NUMBERS)
                .where(rule.broken)
                .order_by(Number.e164)
                .limit(EXAMPLES)
            )
            violations.append(_line(count, f"number(s) {rule.says}", examples.all()))
    return violations


async def _counts(session: AsyncSession, expected_total: int | None) -> list[str]:
    """The total is as expected, and the per-pool state counts agree with the numbers."""
    actual = {
        (org, state): count
        for org, state, count in await session.execute(
            sa.select(Number.organization_id, Number.state, sa.func.count()).group_by(
                Number.organization_id, Number.state
            )
        )
    }
    # A count is the sum of its slots: on PostgreSQL, writers' deltas wait in slots of
    # their own until they are folded into slot 0.
    summed = NumberStateCount.total()
    kept = {
        (org, state): count
        for org, state, count in await session.execute(
            sa.select(NumberStateCount.organization_id, NumberStateCount.state, summed)
            .group_by(NumberStateCount.organization_id, NumberStateCount.state)
            .having(summed != 0)
        )
    }
    violations = []
    total = sum(actual.values())
    if expected_total is not None and total != expected_total:
        violations.append(f"{total} numbers in the inventory where {expected_total} are expected")
    wrong = sorted(key for key in actual.keys() | kept.keys() if actual.get(key) != kept.get(key))
    if wrong:
        examples = [
            f"pool {org} {state}: {kept.get((org, state), 0)} counted, "
            f"{actual.get((org, state), 0)} held"
            for org, state in wrong[:EXAMPLES]
        ]
        violations.append(_line(len(wrong), "per-pool state count(s) wrong", examples))
    return violations + await _tab_counts(session) + await _series_counts(session)


async def _series_counts(session: AsyncSession) -> list[str]:
    """The per-pool series counters (migration 0019) agree with the numbers."""
    actual = {
        (org, series): (int(allocated), int(unused))
        for org, series, allocated, unused in await session.execute(
            sa.select(
                Number.organization_id,
                Number.series_id,
                sa.func.sum(sa.case((Number.state != NumberState.DELETED, 1), else_=0)),
                sa.func.sum(sa.case((Number.state == NumberState.AVAILABLE, 1), else_=0)),
            )
            .where(Number.series_id.is_not(None))
            .group_by(Number.organization_id, Number.series_id)
        )
        if allocated or unused
    }
    allocated, unused = (
        sa.func.sum(NumberSeriesCount.allocated),
        sa.func.sum(NumberSeriesCount.unused),
    )
    kept = {
        (org, series): (int(a), int(u))
        for org, series, a, u in await session.execute(
            sa.select(
                NumberSeriesCount.organization_id, NumberSeriesCount.series_id, allocated, unused
            )
            .group_by(NumberSeriesCount.organization_id, NumberSeriesCount.series_id)
            .having(sa.or_(allocated != 0, unused != 0))
        )
    }
    wrong = sorted(key for key in actual.keys() | kept.keys() if actual.get(key) != kept.get(key))
    if not wrong:
        return []
    examples = [
        f"pool {org} series {series}: {kept.get((org, series))} counted (allocated, unused), "
        f"{actual.get((org, series))} held"
        for org, series in wrong[:EXAMPLES]
    ]
    return [_line(len(wrong), "per-pool series count(s) wrong", examples)]


async def _tab_counts(session: AsyncSession) -> list[str]:
    """The per-pool quick-filter counters (migration 0015) agree with the numbers."""
    actual: dict[tuple[int, QuickFilter], int] = {}
    tabs = [sa.func.sum(sa.case((quick_filters.condition(tab), 1), else_=0)) for tab in QuickFilter]
    for org, *sums in await session.execute(
        sa.select(Number.organization_id, *tabs).group_by(Number.organization_id)
    ):
        actual.update({(org, tab): int(n) for tab, n in zip(QuickFilter, sums, strict=True) if n})
    summed = NumberQuickFilterCount.total()
    kept = {
        (org, tab): count
        for org, tab, count in await session.execute(
            sa.select(
                NumberQuickFilterCount.organization_id, NumberQuickFilterCount.quick_filter, summed
            )
            .group_by(NumberQuickFilterCount.organization_id, NumberQuickFilterCount.quick_filter)
            .having(summed != 0)
        )
    }
    wrong = sorted(key for key in actual.keys() | kept.keys() if actual.get(key) != kept.get(key))
    if not wrong:
        return []
    examples = [
        f"pool {org} {tab}: {kept.get((org, tab), 0)} counted, {actual.get((org, tab), 0)} held"
        for org, tab in wrong[:EXAMPLES]
    ]
    return [_line(len(wrong), "per-pool quick-filter count(s) wrong", examples)]


async def _duplicates(session: AsyncSession) -> list[str]:
    twice = (
        sa.select(Number.e164)
        .group_by(Number.e164)
        .having(sa.func.count() > 1)
        .order_by(Number.e164)
        .subquery()
    )
    count = await session.scalar(sa.select(sa.func.count()).select_from(twice))
    if not count:
        return []
    examples = await session.scalars(sa.select(twice.c.e164).limit(EXAMPLES))
    return [_line(count, "E.164 number(s) held more than once", examples.all())]


async def _history(session: AsyncSession) -> list[str]:
    """Each number's latest event leaves it in the state it is in."""
    later = aliased(NumberEvent)
    disagreeing = (
        sa.select(Number.e164, NumberEvent.to_state, Number.state)
        .join(Number, Number.id == NumberEvent.number_id)
        .where(
            NumberEvent.to_state.is_not(None),
            NumberEvent.to_state != Number.state,
            ~sa.exists().where(later.number_id == NumberEvent.number_id, later.id > NumberEvent.id),
        )
    )
    count = await session.scalar(sa.select(sa.func.count()).select_from(disagreeing.subquery()))
    if not count:
        return []
    rows = await session.execute(disagreeing.order_by(Number.e164).limit(EXAMPLES))
    examples = [f"{e164} is {state} but its history says {said}" for e164, said, state in rows]
    return [_line(count, "number(s) whose latest event disagrees with their state", examples)]


async def _orphans(session: AsyncSession) -> list[str]:
    """History and notices only of numbers that exist (a notice about a token has none)."""
    violations = []
    for table, what in ((NumberEvent, "history event(s)"), (Notice, "notice(s)")):
        unknown = table.number_id.is_not(None) & ~sa.exists().where(Number.id == table.number_id)
        count = await session.scalar(sa.select(sa.func.count()).select_from(table).where(unknown))
        if count:
            ids = await session.scalars(
                sa.select(table.number_id).where(unknown).order_by(table.id).limit(EXAMPLES)
            )
            examples = [f"number id {number_id}" for number_id in ids]
            violations.append(_line(count, f"{what} of unknown numbers", examples))
    return violations


def _line(count: int, what: str, examples: Sequence[str]) -> str:
    return f"{count} {what}, e.g. {', '.join(examples)}"
