"""Events across numbers: the viewer's pools' events, newest first, keyset-paged by id.

Scoped exactly as a number's history (domain/history.py): an event is seen by the
viewers whose subtree held the number's pool when it happened. The same filter,
checked once, also decides which live events a subscriber receives (`matches`).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVarTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain import organizations, phone
from domain.access import Viewer
from domain.errors import ErrorCode, Problems
from domain.organizations import subtree_clause
from domain.pagination import Page, PageRequest, make_page
from models import Number, NumberEvent, Organization

MAX_ACTIONS = 100
# Scopes of up to this many pools (a customer and its departments) are paged pool by
# pool through the pools' index; each pool costs a subquery, so a reseller's many pools
# walk the events instead, of which theirs are a large share.
MERGED_POOLS = 8
# A page filtered by action merges at most this many ranges of an index, each read
# newest first: a pool's events of one action, or (many pools) one action's events. More
# actions than that are a filter on each pool's events, or on the walk of every event.
MERGED_RANGES = 8
FIELD = "filter"


@dataclass(frozen=True)
class EventFilter:
    """What the client asks for, as given."""

    actions: Sequence[str] | None = None
    actor: str | None = None
    number: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    organization_id: str | None = None
    include_descendants: bool = True


@dataclass(frozen=True)
class Scope:
    """A checked filter: the pools (a path prefix, or one organization) and the rest.

    `pool_path` None with `pool_id` None means every pool (the provider's viewers).
    `nothing` is a filter that selects no event (an organization the viewer can't see,
    a number no one holds), answered exactly as a made-up value would be.
    """

    pool_path: str | None
    pool_id: int | None
    actions: frozenset[str] | None
    actor: str | None
    number_id: int | None
    since: datetime | None
    until: datetime | None
    nothing: bool = False

    def matches(self, event: "LiveEvent") -> bool:
        """Whether a committed event is one this filter selects (live updates)."""
        if self.nothing:
            return False
        if self.pool_id is not None and event.organization_id != self.pool_id:
            return False
        if self.pool_path is not None and not event.organization_path.startswith(self.pool_path):
            return False
        return (
            (self.actions is None or event.action in self.actions)
            and (self.actor is None or event.actor == self.actor)
            and (self.number_id is None or event.number_id == self.number_id)
            and (self.since is None or event.at >= self.since)
            and (self.until is None or event.at < self.until)
        )


@dataclass(frozen=True)
class LiveEvent:
    """An event as committed, with what scoping and the API need of its number and pool."""

    id: int
    number_id: int
    organization_id: int
    organization_path: str
    e164: str
    at: datetime
    action: str
    from_state: Any
    to_state: Any
    actor: str
    remark: str | None


async def scope(session: AsyncSession, viewer: Viewer, spec: EventFilter | None) -> Scope:
    """Check a filter for the viewer: VALIDATION for what is wrong, all at once."""
    spec = spec or EventFilter()
    problems = Problems()
    if spec.since is not None and spec.until is not None and spec.since > spec.until:
        problems.add(ErrorCode.VALIDATION, "from must not be after to", [FIELD, "from"])
    if spec.actions is not None and len(spec.actions) > MAX_ACTIONS:
        problems.add(ErrorCode.LIMIT_EXCEEDED, f"at most {MAX_ACTIONS} actions", [FIELD, "actions"])
    e164 = None
    if spec.number is not None:
        e164 = phone.normalise(spec.number)
        if e164 is None:
            problems.add(
                ErrorCode.VALIDATION,
                f"{spec.number[:40]!r} is not a phone number",
                [FIELD, "number"],
            )
    if spec.organization_id is not None and organizations.key_of(spec.organization_id) is None:
        problems.add(
            ErrorCode.VALIDATION,
            organizations.not_a_reference(spec.organization_id),
            [FIELD, "organizationId"],
        )
    problems.raise_if_any()
    nothing = False
    pool_path = None if viewer.at_root else viewer.org_path
    pool_id = None
    if spec.organization_id is not None:
        found = await organizations.find_visible(session, viewer, spec.organization_id)
        if found is None:
            nothing = True
        elif spec.include_descendants:
            pool_path = found.path
        else:
            pool_id = found.id
    number_id = None
    if e164 is not None:
        number_id = await session.scalar(sa.select(Number.id).where(Number.e164 == e164))
        nothing = nothing or number_id is None
    return Scope(
        pool_path=pool_path,
        pool_id=pool_id,
        actions=frozenset(spec.actions) if spec.actions is not None else None,
        actor=spec.actor,
        number_id=number_id,
        since=spec.since,
        until=spec.until,
        nothing=nothing,
    )


def _where(chosen: Scope) -> list[sa.ColumnElement[bool]]:
    if chosen.nothing:
        return [sa.false()]
    return _pools_where(chosen) + _filters(chosen)


def _filters(chosen: Scope, *, actions: bool = True) -> list[sa.ColumnElement[bool]]:
    """Everything but the pools (and the actions too, unless `actions`)."""
    where: list[sa.ColumnElement[bool]] = []
    if actions and chosen.actions is not None:
        where.append(NumberEvent.action.in_(sorted(chosen.actions)))
    if chosen.actor is not None:
        where.append(NumberEvent.actor == chosen.actor)
    if chosen.number_id is not None:
        where.append(NumberEvent.number_id == chosen.number_id)
    if chosen.since is not None:
        where.append(NumberEvent.at >= chosen.since)
    if chosen.until is not None:
        where.append(NumberEvent.at < chosen.until)
    return where


def _pools_where(chosen: Scope) -> list[sa.ColumnElement[bool]]:
    if chosen.pool_id is not None:
        return [NumberEvent.organization_id == chosen.pool_id]
    if chosen.pool_path is not None:
        pools = sa.select(Organization.id).where(subtree_clause(chosen.pool_path))
        return [NumberEvent.organization_id.in_(pools.scalar_subquery())]
    return []


async def _few_pools(session: AsyncSession, chosen: Scope) -> list[int] | None:
    """The pools of a scope that holds at most MERGED_POOLS of them; None for more."""
    if chosen.pool_id is not None:
        return [chosen.pool_id]
    if chosen.pool_path is None:
        return None
    query = sa.select(Organization.id).where(subtree_clause(chosen.pool_path))
    found = list(await session.scalars(query.limit(MERGED_POOLS + 1)))
    return found if len(found) <= MERGED_POOLS else None


@dataclass(frozen=True)
class _Range:
    """Events read newest first through one index: one pool's (organization_id, id), one
    pool's of one action (organization_id, action, id), one action's across pools
    (action, id), or every event (the primary key)."""

    pool: int | None = None
    action: str | None = None


Row = TypeVarTuple("Row")


def _ranges(chosen: Scope, pools: list[int] | None) -> list[_Range]:
    """The ranges a page reads, merged if more than one."""
    actions = sorted(chosen.actions) if chosen.actions else []
    if pools is not None and 0 < len(pools) * len(actions) <= MERGED_RANGES:
        return [_Range(pool, action) for pool in pools for action in actions]
    if pools is not None:
        return [_Range(pool) for pool in pools]
    if 0 < len(actions) <= MERGED_RANGES:
        return [_Range(action=action) for action in actions]
    # Many pools, every action: their own events are most of what a walk meets.
    return [_Range()]


def _read(
    query: sa.Select[*Row],
    chosen: Scope,
    part: _Range,
    after: list[sa.ColumnElement[bool]],
    limit: int,
) -> sa.Select[*Row]:
    """`query` reading a range's newest events that the scope selects."""
    where: list[sa.ColumnElement[bool]] = []
    order: list[sa.UnaryExpression[Any]] = []
    if part.pool is None:
        where += _pools_where(chosen)
    else:
        where.append(NumberEvent.organization_id == part.pool)
        order.append(NumberEvent.organization_id.desc())
    if part.action is not None:
        where.append(NumberEvent.action == part.action)
        order.append(NumberEvent.action.desc())
    # The range's own action is no filter as well.
    where += _filters(chosen, actions=part.action is None)
    # The index's order, so the planner reads that range, never every event.
    return query.where(*where, *after).order_by(*order, NumberEvent.id.desc()).limit(limit)


async def page(
    session: AsyncSession, chosen: Scope, request: PageRequest
) -> Page[tuple[NumberEvent, str]]:
    """A page of events with their numbers' E.164, newest first (by id), after the cursor.

    A scope of a few pools reads each pool's newest events through an index (each pool's
    of each action asked for) and merges them: a customer's page costs the same whether
    it holds 1 % of all events or all of them, and whether its actions are common or
    rare. A scope of many pools (a reseller's, the provider's) reads each asked action's
    newest events and keeps its own, or, asking no action, walks the events newest first
    and keeps its own: they are most of what it meets.
    """
    if chosen.nothing:
        return make_page([], request)
    ranges = _ranges(chosen, await _few_pools(session, chosen))
    after = [] if request.after is None else [NumberEvent.id < int(request.after[0])]
    limit = request.first + 1
    query = sa.select(NumberEvent, Number.e164).join(Number, Number.id == NumberEvent.number_id)
    if len(ranges) == 1:
        query = _read(query, chosen, ranges[0], after, limit)
    else:
        newest = [
            _read(sa.select(NumberEvent.id), chosen, part, after, limit).subquery()
            for part in ranges
        ]
        merged = sa.union_all(*(sa.select(part.c.id) for part in newest)).subquery()
        # Driven by the few ids merged, never by a walk of every event.
        query = (
            sa.select(NumberEvent, Number.e164)
            .select_from(merged)
            .join(NumberEvent, NumberEvent.id == merged.c.id)
            .join(Number, Number.id == NumberEvent.number_id)
            .order_by(merged.c.id.desc())
            .limit(limit)
        )
    rows = [(event, e164) for event, e164 in await session.execute(query)]
    return make_page(rows, request)


async def count(session: AsyncSession, chosen: Scope) -> int:
    query = sa.select(sa.func.count()).select_from(NumberEvent).where(*_where(chosen))
    return int(await session.scalar(query) or 0)


async def committed(session: AsyncSession, event_ids: Sequence[int]) -> list[LiveEvent]:
    """The events of these ids, oldest first, as live updates send them (one query)."""
    if not event_ids:
        return []
    query = (
        sa.select(NumberEvent, Number.e164, Organization.path)
        .join(Number, Number.id == NumberEvent.number_id)
        .join(Organization, Organization.id == NumberEvent.organization_id)
        .where(NumberEvent.id.in_(event_ids))
        .order_by(NumberEvent.id)
    )
    return [
        LiveEvent(
            id=event.id,
            number_id=event.number_id,
            organization_id=event.organization_id,
            organization_path=path,
            e164=e164,
            at=event.at,
            action=event.action,
            from_state=event.from_state,
            to_state=event.to_state,
            actor=event.actor,
            remark=event.remark,
        )
        for event, e164, path in await session.execute(query)
    ]
