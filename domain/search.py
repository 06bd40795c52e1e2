"""Finding numbers: one filter language for lists, counts and exports.

Every query is scoped to the viewer's subtree and ordered by e164, paged by cursor.
"""

import functools
import json
import time
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import BinaryExpression, UnaryExpression
from sqlalchemy.sql.selectable import ScalarSelect

from domain import ids, lookups, organizations, patterns, phone, quick_filters
from domain.access import Viewer
from domain.details import capability_mask
from domain.errors import ErrorCode, Problems
from domain.organizations import ORG_IDS, subtree_clause
from domain.pagination import Page, PageRequest, make_page
from domain.series import TYPE_NAME as SERIES_TYPE
from models import (
    Capability,
    DeletionReason,
    Number,
    NumberState,
    Organization,
    QuickFilter,
    RegistrationStatus,
    ReservationReason,
    Series,
)
from models.numbers import (
    NUMBER_COLUMNS,
    NumberQuickFilterCount,
    NumberRecord,
    NumberStateCount,
)
from models.prepared import Prepared

MAX_FILTER_NUMBERS = 10_000


@dataclass(frozen=True)
class NumberFilter:
    states: Sequence[NumberState] | None = None
    pattern: str | None = None
    numbers: Sequence[str] | None = None
    capabilities: Sequence[Capability] | None = None
    sku: str | None = None
    vendor: str | None = None
    country: str | None = None
    routing: str | None = None
    golden: bool | None = None
    ported_in: bool | None = None
    visible_to_domain: str | None = None
    subscription_uuid: UUID | None = None
    owner_uuid: UUID | None = None
    tag: str | None = None
    series_id: str | None = None
    organization_id: str | None = None
    include_descendants: bool = False
    expires_before: datetime | None = None
    notes: str | None = None
    reservation_reasons: Sequence[ReservationReason] | None = None
    reserved_for_id: str | None = None
    deletion_reasons: Sequence[DeletionReason] | None = None
    operator_ids: Sequence[str] | None = None
    renews: bool | None = None
    registration_statuses: Sequence[RegistrationStatus] | None = None
    quick_filter: QuickFilter | None = None


async def build(
    session: AsyncSession, viewer: Viewer, spec: NumberFilter | None, problems: Problems
) -> list[sa.ColumnElement[bool]]:
    """WHERE clauses for a filter, within the viewer's subtree; problems if it is wrong."""
    spec = spec or NumberFilter()
    where = await _pools(session, viewer, spec, Number.organization_id, problems)
    if spec.states:
        where.append(_among_states(Number.state, spec.states))
    if spec.pattern is not None:
        sqlite = session.get_bind().dialect.name == "sqlite"
        clause = patterns.clause(spec.pattern, problems, trigram_table=sqlite)
        if clause is not None:
            where.append(clause)
    if spec.numbers is not None:
        where.append(among(session, Number.e164, _normalised(spec.numbers, problems)))
    if spec.capabilities:
        where.append(_having_all(capability_mask(spec.capabilities)))
    for column, value in (
        (Number.sku, spec.sku),
        (Number.vendor, spec.vendor),
        (Number.country, spec.country.upper() if spec.country else None),
        (Number.routing, spec.routing),
        (Number.golden, spec.golden),
        (Number.ported_in, spec.ported_in),
        (Number.visible_to_domain, spec.visible_to_domain),
        (Number.subscription_uuid, spec.subscription_uuid),
    ):
        if value is not None:
            where.append(column == value)
    if spec.tag is not None:
        where.append(sa.or_(Number.tag == spec.tag, Number.reservation_tag == spec.tag))
    if spec.owner_uuid is not None:
        owner = sa.select(Organization.id).where(Organization.uuid == spec.owner_uuid)
        where.append(Number.owner_id.in_(owner.scalar_subquery()))
    if spec.expires_before is not None:
        where.append(Number.expires_at < spec.expires_before)
    if spec.series_id is not None:
        key = ids.decode_uuid(spec.series_id, SERIES_TYPE)
        series_id = await session.scalar(sa.select(Series.id).where(Series.uuid == key))
        # An unknown series selects nothing, as a filter on any other unknown value does.
        where.append(Number.series_id == (series_id or -1))
    if spec.renews is not None:
        where.append(quick_filters.renews_clause(spec.renews))
    if spec.registration_statuses:
        where.append(Number.registration_status.in_(spec.registration_statuses))
    if spec.quick_filter is not None:
        where.append(quick_filters.condition(spec.quick_filter))
    where += await lookups.clauses(
        session,
        viewer,
        problems,
        notes=spec.notes,
        reservation_reasons=spec.reservation_reasons,
        reserved_for_id=spec.reserved_for_id,
        deletion_reasons=spec.deletion_reasons,
        operator_ids=spec.operator_ids,
    )
    return where


def _among_states(column: Any, states: Sequence[NumberState]) -> sa.ColumnElement[bool]:
    """`column IN states`; one state as `=`, whose SQL is made once, where an IN's list
    is rendered into the SQL again at every execution (SQLAlchemy's expanding parameter)."""
    if len(states) == 1:
        return cast(sa.ColumnElement[bool], column == states[0])
    return cast(sa.ColumnElement[bool], column.in_(states))


async def _pools(
    session: AsyncSession,
    viewer: Viewer,
    spec: NumberFilter,
    pool: InstrumentedAttribute[int],
    problems: Problems,
) -> list[sa.ColumnElement[bool]]:
    """Clauses on a pool column: the viewer's subtree, and the filter's organization."""
    where: list[sa.ColumnElement[bool]] = []
    if not viewer.at_root:
        pools = sa.select(Organization.id).where(subtree_clause(viewer.org_path))
        where.append(pool.in_(pools.scalar_subquery()))
    if spec.organization_id is not None:
        if organizations.key_of(spec.organization_id) is None:
            message = organizations.not_a_reference(spec.organization_id)
            problems.add(ErrorCode.VALIDATION, message, ["filter", "organizationId"])
        found = await organizations.find_visible(session, viewer, spec.organization_id)
        if found is None:
            where.append(sa.false())
        elif spec.include_descendants:
            pools = sa.select(Organization.id).where(subtree_clause(found.path))
            where.append(pool.in_(pools.scalar_subquery()))
        else:
            where.append(pool == found.id)
    return where


def _normalised(raws: Sequence[str], problems: Problems) -> list[str]:
    if len(raws) > MAX_FILTER_NUMBERS:
        problems.add(
            ErrorCode.LIMIT_EXCEEDED,
            f"at most {MAX_FILTER_NUMBERS} numbers in a filter",
            ["filter", "numbers"],
        )
        return []
    found = []
    for index, raw in enumerate(raws):
        e164 = phone.normalise(raw)
        if e164 is None:
            problems.add(
                ErrorCode.VALIDATION,
                f"{raw!r} is not a phone number",
                ["filter", "numbers", str(index)],
                raw,
            )
        else:
            found.append(e164)
    return found


def among(session: AsyncSession, column: Any, values: list[str]) -> sa.ColumnElement[bool]:
    """`column IN values`, the values as one parameter.

    SQLAlchemy takes longer to render thousands of bind parameters than the
    database takes to answer the query. On PostgreSQL `= ANY(array)`, not `IN`:
    for a long `IN` list the planner takes the trigram index instead of e164's.
    """
    if session.get_bind().dialect.name == "sqlite":
        listed = sa.func.json_each(sa.literal(json.dumps(values))).table_valued("value")
        return cast(sa.ColumnElement[bool], column.in_(sa.select(listed.c.value)))
    return cast(
        sa.ColumnElement[bool], column == sa.any_(sa.literal(values, postgresql.ARRAY(sa.String)))
    )


# Columns of few distinct values whose indexes a skewed inventory makes useless for a
# page: one pool holding nearly every number, nearly all of them AVAILABLE.
_LOW_CARDINALITY = frozenset({"organization_id", "state", "series_id", "owner_id"})


def _numbers_column(element: Any, names: frozenset[str]) -> bool:
    return (
        isinstance(element, sa.Column)
        and element.table is Number.__table__
        and element.name in names
    )


def _bounded_by_prefix(where: Sequence[sa.ColumnElement[bool]]) -> bool:
    """Whether a literal prefix bounds the e164 range (`e164 >= prefix` from pattern_clause)."""
    return any(
        isinstance(node, BinaryExpression)
        and node.operator is operators.ge
        and _numbers_column(node.left, frozenset({"e164"}))
        for clause in where
        for node in visitors.iterate(clause)
    )


def walk_in_order(
    dialect: str, where: Sequence[sa.ColumnElement[bool]]
) -> list[sa.ColumnElement[bool]]:
    """The filter, for a statement that must walk numbers in e164 order: its
    low-cardinality columns kept off their indexes (`_off_index`), and on PostgreSQL a
    pool column `IN (subquery)` as `= ANY (ARRAY(subquery))`, run once before the walk.
    As a semi-join PostgreSQL hashes the subtree's pools and joins the walk to them,
    losing its order, and sorts every match (a prefix page in one pool of a million:
    35 ms, and 800 ms once the prepared statement's generic plan took over)."""
    if dialect == "postgresql":
        where = [visitors.replacement_traverse(clause, {}, _any_of_array) for clause in where]
    return [_off_index(dialect, clause) for clause in where]


def _any_of_array(element: Any, **_kw: Any) -> Any:
    if (
        isinstance(element, BinaryExpression)
        and element.operator is operators.in_op
        and isinstance(element.right, ScalarSelect)
        and _numbers_column(element.left, _LOW_CARDINALITY)
    ):
        return element.left == sa.any_(sa.func.array(element.right))
    return None


def _having_all(mask: int) -> sa.ColumnElement[bool]:
    """Numbers with every capability of the mask, as `capabilities IN (the masks that
    include it)`, not `capabilities & mask = mask`: the planner knows how common each
    stored value is, where it guesses 0.5 % for the expression, and a prefix page that
    guess starved of matches read and sorted the whole range rather than walk it."""
    every = sum(flag.value for flag in Capability)  # each flag a bit of its own
    having = [value for value in range(every + 1) if value & mask == mask]
    return Number.capabilities.in_([sa.literal_column(str(value)) for value in having])


def _off_index(dialect: str, clause: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    """`clause` with its low-cardinality columns as expressions no index on them serves,
    of the same values: SQLite's unary `+`; on PostgreSQL `+ 0` on the integer ones."""

    def replace(element: Any, **_kw: Any) -> Any:
        if not _numbers_column(element, _LOW_CARDINALITY):
            return None
        if dialect == "sqlite":
            return UnaryExpression(element, operator=operators.custom_op("+"), type_=element.type)
        if isinstance(element.type, sa.Integer):
            return element + sa.literal_column("0", sa.Integer)
        # The state keeps its index on PostgreSQL: an expression would lose the column's
        # statistics (its common values), estimate a handful of matches and read the
        # whole range to sort them rather than walk it in order.
        return None

    return visitors.replacement_traverse(clause, {}, replace)


# Columns every page's rows have, whatever else it selects: the key, and the e164 the
# page is ordered by and its cursors are made of.
PAGE_KEY_COLUMNS = frozenset({"id", "e164"})


@functools.lru_cache(maxsize=256)
def selected_columns(columns: frozenset[str] | None) -> tuple[sa.ColumnElement[Any], ...]:
    """The columns of numbers a page selects, in the table's order: those named and the
    page's own (PAGE_KEY_COLUMNS); None names them all."""
    if columns is None:
        return NUMBER_COLUMNS
    named = columns | PAGE_KEY_COLUMNS
    return tuple(column for column in NUMBER_COLUMNS if column.name in named)


def page_query(
    dialect: str,
    where: Sequence[sa.ColumnElement[bool]],
    request: PageRequest,
    *,
    in_order: bool = False,
    columns: frozenset[str] | None = None,
) -> sa.Select[Any]:
    """The statement of a page: numbers in e164 order, one more than asked; of the
    columns named and the page's own (`selected_columns`), or all of them.

    When a prefix bounds the e164 range, the database walks that range in order and
    stops after the page, whatever its statistics say. Left to them, with one pool (or
    state) holding nearly everything, it takes the (organization, state) index, which
    averages call selective, and reads and sorts the whole pool: 107 ms against 1 ms
    for a 50-row page in one SQLite pool of a million. PostgreSQL does the same when
    the pool comes from a subquery (the viewer's subtree). The range walk reads at most
    the numbers under the prefix. `in_order` asks for that walk without a prefix (see
    `page_statement`). tests/domain/test_search_plans.py checks the plans.
    """
    if in_order or _bounded_by_prefix(where):
        where = walk_in_order(dialect, where)
    query = sa.select(*selected_columns(columns)).where(*where)
    if request.after is not None:
        query = query.where(Number.e164 > sa.bindparam(AFTER, str(request.after[0])))
    return query.order_by(Number.e164).limit(request.first + 1)


async def page(
    connection: AsyncConnection,
    viewer: Viewer,
    spec: NumberFilter,
    request: PageRequest,
    columns: frozenset[str] | None = None,
) -> Page[NumberRecord]:
    """A page of the numbers a filter selects (DomainError if the filter is wrong), its
    rows of the columns named and the page's own, or of all (None).

    Rows, not entities (a third less to load), read on a connection (the session's ORM
    execution path costs a third more for them). The statement comes from
    `_page_statements` when this filter's has been made before for the same subtree and
    columns; only a statement to make opens a session (on the same connection), for
    the lookups a filter may need: 45 µs a request less on the one kept.
    """
    dialect = connection.dialect.name
    key = _statement_key(dialect, viewer, spec, request, columns)
    prepared = _kept(key) if key is not None else None
    parameters = {AFTER: str(request.after[0])} if request.after is not None else {}
    if prepared is None:
        async with AsyncSession(bind=connection) as session:
            query = await page_statement(session, viewer, spec, request, columns)
        return make_page(await _first_rows(connection, key, query, parameters), request)
    return make_page(await prepared.rows(connection, parameters), request)


async def page_statement(
    session: AsyncSession,
    viewer: Viewer,
    spec: NumberFilter,
    request: PageRequest,
    columns: frozenset[str] | None = None,
) -> sa.Select[Any]:
    """The statement of a page (DomainError if the filter is wrong); `columns` as `page`'s.

    Without a prefix, the pools' and states' counters decide how it reads: a scope whose
    pools and states hold M of the N numbers finds a page's first + 1 of them after
    about (first + 1) N / M numbers walked in e164 order, or reads all M through the
    pool and state indexes and sorts them. The walk wins when M² > (first + 1) N: a
    reseller holding most of a million numbers gets its first page in a millisecond
    rather than the 200 ms of reading and sorting its whole pool, a customer holding a
    hundred reads its hundred. Either way at most about √((first + 1) N) rows are read.
    SQLite only: PostgreSQL, its pool column hidden without a range to walk, reads the
    whole table and sorts it; its own choice is kept there.
    """
    problems = Problems()
    where = await build(session, viewer, spec, problems)
    problems.raise_if_any()
    dialect = session.get_bind().dialect.name
    in_order = (
        dialect == "sqlite"
        and not _bounded_by_prefix(where)
        and await _holds_most(session, viewer, spec, request)
    )
    return page_query(dialect, where, request, in_order=in_order, columns=columns)


async def _holds_most(
    session: AsyncSession, viewer: Viewer, spec: NumberFilter, request: PageRequest
) -> bool:
    """Whether the scope's pools and states hold enough numbers for the e164 walk."""
    if viewer.at_root and spec.organization_id is None:
        return False  # no pools to leave aside (a state alone is left to the planner)
    problems = Problems()
    pools = await _pools(session, viewer, spec, NumberStateCount.organization_id, problems)
    if problems:
        return False
    held = sa.select(NumberStateCount.total()).where(*pools)
    if spec.states:
        held = held.where(NumberStateCount.state.in_(spec.states))
    everything = sa.select(NumberStateCount.total())
    counted = await session.execute(sa.select(held.scalar_subquery(), everything.scalar_subquery()))
    scoped, total = counted.one()
    return _walk_wins(scoped, total, request)


def _walk_wins(scoped: int | None, total: int | None, request: PageRequest) -> bool:
    """`page_statement`'s rule: pools and states holding M of the N numbers are read by
    walking e164 in order when M² > (first + 1) N."""
    return (scoped or 0) ** 2 > (request.first + 1) * (total or 0)


# Page statements made, the most recently used last. A statement object keeps the cache
# key SQLAlchemy finds its compiled SQL by, so one made before is neither built, nor
# rewritten for the prefix walk, nor keyed again: about a third of a page request's time
# in Python (the filter an SPA's tab or a partner's search sends again and again). Only
# filters whose statement follows from the filter and the viewer's subtree alone are
# kept: those naming an organization, a series or a lookup value read the database.
# Kept for PLAN_SECONDS: a statement holds its plan's choice (the walk in e164 order or
# not, on SQLite), which a pool that grew since (an import) may have made wrong.
PAGE_STATEMENTS = 512
# How long a choice of plan (a kept statement, a walk decision) is kept.
PLAN_SECONDS = 60.0
_page_statements: "OrderedDict[Hashable, tuple[Prepared, float]]" = OrderedDict()
_LOOKED_UP = (
    "organization_id",
    "series_id",
    "notes",
    "reservation_reasons",
    "reserved_for_id",
    "deletion_reasons",
    "operator_ids",
)
# The cursor's key, a parameter of the statement (a page after another runs the same one).
AFTER = "after_e164"


def _statement_key(
    dialect: str,
    viewer: Viewer,
    spec: NumberFilter,
    request: PageRequest,
    columns: frozenset[str] | None,
) -> Hashable | None:
    if any(getattr(spec, name) is not None for name in _LOOKED_UP):
        return None
    first, after = request.first, request.after is None
    key = (dialect, viewer.at_root, viewer.org_path, spec, first, after, columns)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _kept(key: Hashable) -> Prepared | None:
    return _fresh(_page_statements, key)


async def _first_rows(
    connection: AsyncConnection,
    key: Hashable | None,
    query: sa.Select[Any],
    parameters: dict[str, Any],
) -> list[Any]:
    """The rows of a statement just made, kept (prepared) under `key` for the requests
    that follow; without a key, run through SQLAlchemy (and its cache of compiled SQL)."""
    if key is None:
        return list((await connection.execute(query, parameters)).all())
    prepared = Prepared(query)
    _store(_page_statements, key, prepared, PAGE_STATEMENTS)
    return await prepared.rows(connection, parameters)


def _fresh(kept: "OrderedDict[Any, tuple[Any, float]]", key: Hashable) -> Any | None:
    """What `kept` holds under `key`, if it was put there less than PLAN_SECONDS ago
    (then the most recently used)."""
    found = kept.get(key)
    if found is None or time.monotonic() - found[1] >= PLAN_SECONDS:
        return None
    kept.move_to_end(key)
    return found[0]


def _store(
    kept: "OrderedDict[Any, tuple[Any, float]]", key: Hashable, value: Any, bound: int
) -> None:
    """Put `value` in `kept` under `key`, dropping the least recently used past `bound`."""
    kept[key] = (value, time.monotonic())
    kept.move_to_end(key)
    while len(kept) > bound:
        kept.popitem(last=False)


async def count(session: AsyncSession, where: Sequence[sa.ColumnElement[bool]]) -> int:
    query = sa.select(sa.func.count()).select_from(Number).where(*where)
    return (await session.execute(query)).scalar_one()


async def counts_by_state(
    session: AsyncSession, viewer: Viewer, spec: NumberFilter, problems: Problems
) -> dict[NumberState, int]:
    """How many numbers of each state a filter selects.

    A filter of pools and states only is answered by the counters the triggers keep
    (thousands of rows at most); any other is counted over the numbers it selects.
    """
    pools_and_states = replace(spec, states=None, organization_id=None, include_descendants=False)
    if pools_and_states == NumberFilter():
        where = await _pools(session, viewer, spec, NumberStateCount.organization_id, problems)
        problems.raise_if_any()
        if spec.states:
            where.append(NumberStateCount.state.in_(spec.states))
        total = NumberStateCount.total()
        query = sa.select(NumberStateCount.state, total).where(*where)
        query = query.group_by(NumberStateCount.state)
    else:
        where = await build(session, viewer, spec, problems)
        problems.raise_if_any()
        query = sa.select(Number.state, sa.func.count()).where(*where).group_by(Number.state)
    found = dict.fromkeys(NumberState, 0)
    for state, n in await session.execute(query):
        found[state] = n
    return found


async def counts_by_quick_filter(
    session: AsyncSession, viewer: Viewer, spec: NumberFilter, problems: Problems
) -> dict[QuickFilter, int]:
    """How many numbers of each tab a filter (its own quickFilter ignored) selects.

    A filter of pools only is answered by the counters the triggers keep per pool and tab;
    any other is counted over the numbers it selects, every tab in one scan.
    """
    spec = replace(spec, quick_filter=None)
    if replace(spec, organization_id=None, include_descendants=False) == NumberFilter():
        counted = NumberQuickFilterCount
        where = await _pools(session, viewer, spec, counted.organization_id, problems)
        problems.raise_if_any()
        query = (
            sa.select(counted.quick_filter, counted.total())
            .where(*where)
            .group_by(counted.quick_filter)
        )
        found = dict.fromkeys(QuickFilter, 0)
        for tab, n in await session.execute(query):
            found[tab] = n
        return found
    where = await build(session, viewer, spec, problems)
    problems.raise_if_any()
    row = (await session.execute(sa.select(*quick_filters.tab_sums()).where(*where))).one()
    return quick_filters.as_counts(list(row))


def per_organization(
    org_ids: Sequence[int] | sa.BindParameter[Any],
    include_descendants: bool,
    held: type[Number] | type[NumberStateCount] = Number,
) -> tuple[Any, Any]:
    """The column naming the organization a row of `held` counts for, and what to select from.

    Own pool: the row's organization. Subtree: every listed organization above the
    pool (joined on the path range), so one query serves a whole nested view.
    """
    if not include_descendants:
        return held.organization_id, sa.select(held.organization_id.label("owner_org"))
    top = aliased(Organization)
    pool = aliased(Organization)
    source = (
        sa.select(top.id.label("owner_org"))
        .select_from(top)
        .join(pool, _below(pool, top))
        .join(held, held.organization_id == pool.id)
        .where(top.id.in_(org_ids))
    )
    return top.id, source


# Organizations whose pages one statement reads (SQLite allows 500 SELECTs in a UNION):
# a nested view of up to this many runs as many statements as one of a few.
PAGES_PER_STATEMENT = 400


async def pages_per_organization(
    connection: AsyncConnection,
    viewer: Viewer,
    spec: NumberFilter,
    org_ids: Sequence[int],
    include_descendants: bool,
    request: PageRequest,
    columns: frozenset[str] | None = None,
) -> dict[int, Page[NumberRecord]]:
    """The same page of numbers a filter selects for each organization (its own pool, or
    its subtree's), in one query of a SELECT per organization joined by UNION ALL
    (DomainError if the filter is wrong); `columns` as `page`'s.

    Each organization's page is read as a search page is: on SQLite, walking the
    numbers in e164 order where its pools hold enough of them (the filter's states
    counted), else through the pool's index. One window ranking every pool's numbers
    read the pools whole: the provider's first 20 of its 400,000 numbers took 564 ms.
    The statement is kept as a search page's is (`_page_statements`), the
    organizations its parameters: an SPA asks the same view again and again.
    """
    dialect = connection.dialect.name
    walks = (
        await _walks_per_organization(
            connection, org_ids, include_descendants, spec.states, request
        )
        if dialect == "sqlite"
        else {}
    )
    key = _statement_key(dialect, viewer, spec, request, columns)
    where: list[sa.ColumnElement[bool]] | None = None
    parameters: dict[str, Any] = {AFTER: str(request.after[0])} if request.after is not None else {}
    rows: dict[int, list[NumberRecord]] = {org_id: [] for org_id in org_ids}
    for start in range(0, len(org_ids), PAGES_PER_STATEMENT):
        chunk = org_ids[start : start + PAGES_PER_STATEMENT]
        in_order = tuple(walks.get(org_id, False) for org_id in chunk)
        shape = (key, "organizations", include_descendants, in_order) if key else None
        prepared = _kept(shape) if shape is not None else None
        arguments = parameters | {f"owner_{i}": org_id for i, org_id in enumerate(chunk)}
        if prepared is not None:
            read = await prepared.rows(connection, arguments)
        else:
            if where is None:
                problems = Problems()
                async with AsyncSession(bind=connection) as session:
                    where = await build(session, viewer, spec, problems)
                problems.raise_if_any()
            query = _pages_statement(
                dialect, where, include_descendants, request, in_order, columns
            )
            read = await _first_rows(connection, shape, query, arguments)
        for number in read:
            rows[number.owner_org].append(number)
    return {org_id: make_page(found, request) for org_id, found in rows.items()}


def _pages_statement(
    dialect: str,
    where: Sequence[sa.ColumnElement[bool]],
    include_descendants: bool,
    request: PageRequest,
    in_order: Sequence[bool],
    columns: frozenset[str] | None,
) -> sa.Select[Any]:
    """The pages of as many organizations as `in_order` has flags, the i-th organization
    the parameter `owner_i`."""
    pages = []
    for i, walks in enumerate(in_order):
        owner = sa.bindparam(f"owner_{i}", type_=sa.Integer)
        scope = _scope(owner, include_descendants)
        page = page_query(dialect, [*where, scope], request, in_order=walks, columns=columns)
        pages.append(page.add_columns(owner.label("owner_org")))
    return pages[0] if len(pages) == 1 else _in_turn(pages)


def _in_turn(pages: Sequence[sa.Select[Any]]) -> sa.Select[Any]:
    """Pages of several organizations as one statement, each read by its own plan."""
    union = sa.union_all(*(sa.select(page.subquery()) for page in pages)).subquery()
    return sa.select(union).order_by(union.c.owner_org, union.c.e164)


def _scope(org_id: sa.BindParameter[int], include_descendants: bool) -> sa.ColumnElement[bool]:
    """The numbers of an organization's own pool, or of every pool of its subtree."""
    if not include_descendants:
        return Number.organization_id == org_id
    top, pool = aliased(Organization), aliased(Organization)
    pools = sa.select(pool.id).join(top, top.id == org_id).where(_below(pool, top))
    return Number.organization_id.in_(pools.scalar_subquery())


def _below(pool: Any, top: Any) -> sa.ColumnElement[bool]:
    """`pool` is `top` or below it: its path in top's range (organizations.subtree_clause's
    range, of a path read from the row)."""
    return sa.and_(
        pool.path >= top.path,
        pool.path < sa.func.substr(top.path, 1, sa.func.length(top.path) - 1) + "0",
    )


async def _walks_per_organization(
    reads: AsyncConnection,
    org_ids: Sequence[int],
    include_descendants: bool,
    states: Sequence[NumberState] | None,
    request: PageRequest,
) -> dict[int, bool]:
    """Per organization, whether its page walks the numbers in e164 order (`page_statement`'s
    rule: its pools' M of the N numbers, M² > (first + 1) N), from the state counters.

    Decided per database, organization and page shape, and kept for PLAN_SECONDS
    (`_walks`): the choice of a plan only, never of rows, so an SPA's view does not
    count again at every look (a statement of its ten), and a pool that grew (an
    import) is walked within a minute.
    """
    shape = (str(reads.engine.url), include_descendants, tuple(states or ()), request.first)
    walks = {
        org_id: walk for org_id in org_ids if (walk := _fresh(_walks, (shape, org_id))) is not None
    }
    missing = [org_id for org_id in org_ids if org_id not in walks]
    if missing:
        held = _walks_statement(include_descendants, tuple(states or ()))
        counted = await held.rows(reads, {"org_ids": missing})
        decided = dict.fromkeys(missing, False)
        decided |= {org_id: _walk_wins(scoped, total, request) for org_id, scoped, total in counted}
        for org_id, walk in decided.items():
            _store(_walks, (shape, org_id), walk, WALKS)
        walks |= decided
    return walks


# Walk decisions made (`_walks_per_organization`) and when, the most recently made last.
WALKS = 4_096
_walks: "OrderedDict[tuple[Hashable, int], tuple[bool, float]]" = OrderedDict()


@functools.lru_cache(maxsize=64)
def _walks_statement(include_descendants: bool, states: tuple[NumberState, ...]) -> Prepared:
    owner, source = per_organization(ORG_IDS, include_descendants, NumberStateCount)
    everything = sa.select(NumberStateCount.total()).correlate(None).scalar_subquery()
    held = source.with_only_columns(owner, NumberStateCount.total(), everything).group_by(owner)
    if not include_descendants:
        held = held.where(NumberStateCount.organization_id.in_(ORG_IDS))
    if states:
        held = held.where(NumberStateCount.state.in_(states))
    return Prepared(held)


async def counts_per_organization(
    session: AsyncSession,
    org_ids: Sequence[int],
    include_descendants: bool,
    where: Sequence[sa.ColumnElement[bool]],
) -> dict[int, int]:
    owner, source = per_organization(org_ids, include_descendants)
    query = source.with_only_columns(owner, sa.func.count()).where(*where).group_by(owner)
    if not include_descendants:
        query = query.where(Number.organization_id.in_(org_ids))
    found = dict.fromkeys(org_ids, 0)
    for org_id, n in await session.execute(query):
        found[org_id] = n
    return found
