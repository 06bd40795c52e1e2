"""Operators: the carriers numbers are bought from, kept per reseller.

A name is unique, whatever its case, per reseller; the provider's own operators are
kept by the root. A token sees the operators of the organizations in its subtree and
on its path to the root; it manages (renames, deletes) only those of its subtree.
`link` is the step adding and importing numbers take: each vendor name becomes the
operator of that name nearest the viewer, made for the viewer's reseller if none is.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain import ids, organizations, text
from domain.access import Viewer
from domain.clock import Clock
from domain.errors import DomainError, ErrorCode, Problems
from domain.organizations import subtree_clause
from domain.pagination import Page, PageRequest, make_page
from models import Number, NumberState, Organization, OrganizationKind, Role
from models.base import column_length
from models.operators import Operator

TYPE_NAME = "Operator"
MAX_NAME = column_length(Operator.name)


def name_key(name: str) -> str:
    """What makes two names the same: case-folded, cut to the column (no real name
    is near that long folded)."""
    return name.strip().casefold()[:MAX_NAME]


def _chain(viewer: Viewer) -> list[int]:
    """Organization ids from the root down to the viewer's own."""
    return [int(segment) for segment in viewer.org_path.strip("/").split("/")]


def visible_clause(viewer: Viewer) -> sa.ColumnElement[bool]:
    """Operators kept on the viewer's path to the root or in its subtree."""
    if viewer.at_root:
        return sa.true()
    subtree = sa.select(Organization.id).where(subtree_clause(viewer.org_path))
    return sa.or_(
        Operator.organization_id.in_(_chain(viewer)),
        Operator.organization_id.in_(subtree.scalar_subquery()),
    )


def sees(viewer: Viewer, keeper_path: str) -> bool:
    return viewer.org_path.startswith(keeper_path) or keeper_path.startswith(viewer.org_path)


@dataclass(frozen=True)
class Linked:
    operator_id: int
    name: str


async def link(
    session: AsyncSession, viewer: Viewer, names: Iterable[str], now: datetime
) -> dict[str, Linked]:
    """The operator each vendor name stands for, by the name as given (stripped).

    The nearest on the viewer's path keeping an operator of that name wins; with
    none, one is made for the viewer's nearest PARTNER, else the provider. Two
    requests making the same name at once make it once (INSERT … ON CONFLICT).
    """
    by_key: dict[str, list[str]] = {}
    for name in {name.strip() for name in names}:
        by_key.setdefault(name_key(name), []).append(name)
    if not by_key:
        return {}
    chain = _chain(viewer)
    kinds = dict(
        (
            await session.execute(
                sa.select(Organization.id, Organization.kind).where(Organization.id.in_(chain))
            )
        ).all()
    )
    partners = [org_id for org_id in chain if kinds[org_id] is OrganizationKind.PARTNER]
    keeper = partners[-1] if partners else chain[0]
    found = await _nearest(session, chain, list(by_key))
    missing = [key for key in by_key if key not in found]
    if missing:
        insert = (postgresql.insert if _is_postgresql(session) else sqlite.insert)(Operator)
        await session.execute(
            insert.on_conflict_do_nothing(index_elements=["organization_id", "name_key"]),
            [
                {
                    "name": min(by_key[key]),
                    "name_key": key,
                    "organization_id": keeper,
                    "created_at": now,
                }
                for key in missing
            ],
        )
        found.update(await _nearest(session, chain, missing))
    return {name: found[key] for key, spellings in by_key.items() for name in spellings}


def _is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def _nearest(session: AsyncSession, chain: list[int], keys: list[str]) -> dict[str, Linked]:
    rows = await session.execute(
        sa.select(Operator.name_key, Operator.id, Operator.name, Operator.organization_id).where(
            Operator.organization_id.in_(chain), Operator.name_key.in_(keys)
        )
    )
    depth = {org_id: index for index, org_id in enumerate(chain)}
    best: dict[str, tuple[int, Linked]] = {}
    for key, operator_id, name, keeper in rows:
        if key not in best or depth[keeper] > best[key][0]:
            best[key] = (depth[keeper], Linked(operator_id, name))
    return {key: linked for key, (_, linked) in best.items()}


def _check_name(problems: Problems, name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        problems.add(
            ErrorCode.VALIDATION, f"name must be 1 to {MAX_NAME} characters", ["input", "name"]
        )
    text.check(problems, name, "name")
    return name


async def _taken(session: AsyncSession, keeper: int, name: str, but: int | None = None) -> bool:
    query = sa.select(Operator.id).where(
        Operator.organization_id == keeper, Operator.name_key == name_key(name)
    )
    if but is not None:
        query = query.where(Operator.id != but)
    return await session.scalar(query) is not None


async def create(
    session: AsyncSession, viewer: Viewer, clock: Clock, *, name: str, reseller_id: str | None
) -> Operator:
    viewer.require(Role.ADMIN)
    problems = Problems()
    name = _check_name(problems, name)
    keeper: int | None = viewer.org_id
    if reseller_id is not None:
        org = await organizations.named(
            session, viewer, reseller_id, ["input", "resellerId"], problems
        )
        keeper = org.id if org is not None else None
    if not problems and keeper is not None and await _taken(session, keeper, name):
        problems.add(
            ErrorCode.ALREADY_EXISTS, f"an operator named {name!r} exists", ["input", "name"]
        )
    problems.raise_if_any()
    assert keeper is not None
    row = Operator(name=name, name_key=name_key(name), organization_id=keeper)
    row.created_at = clock.now()
    session.add(row)
    await session.flush()
    return row


async def _managed(session: AsyncSession, viewer: Viewer, ref: str) -> Operator:
    """The operator `ref` names, if the viewer may change it: NOT_FOUND if it cannot see
    it, FORBIDDEN if it is kept above the viewer's organization."""
    viewer.require(Role.ADMIN)
    key = ids.decode_uuid(ref, TYPE_NAME)
    found = None
    if key is not None:
        found = (
            await session.execute(
                sa.select(Operator, Organization.path)
                .join(Organization, Organization.id == Operator.organization_id)
                .where(Operator.uuid == key)
            )
        ).one_or_none()
    if found is None or not sees(viewer, found.path):
        raise DomainError.one(ErrorCode.NOT_FOUND, "no such operator", ["input", "id"])
    if not found.path.startswith(viewer.org_path):
        raise DomainError.one(
            ErrorCode.FORBIDDEN, "an organization above yours keeps this operator", ["input", "id"]
        )
    row: Operator = found.Operator
    return row


async def rename(session: AsyncSession, viewer: Viewer, ref: str, name: str | None) -> Operator:
    """Rename an operator, and with it the vendor of every number it has."""
    problems = Problems()
    if name is not None:
        name = _check_name(problems, name)
    try:
        row = await _managed(session, viewer, ref)
    except DomainError as refused:
        problems.extend(refused)
        problems.raise_if_any()
        raise
    if name is None:
        return row
    if not problems and await _taken(session, row.organization_id, name, but=row.id):
        problems.add(
            ErrorCode.ALREADY_EXISTS, f"an operator named {name!r} exists", ["input", "name"]
        )
    problems.raise_if_any()
    row.name, row.name_key = name, name_key(name)
    await session.flush()
    await session.execute(
        sa.update(Number)
        .where(Number.operator_id == row.id)
        .values(vendor=name)
        .execution_options(synchronize_session=False)
    )
    return row


async def delete(session: AsyncSession, viewer: Viewer, ref: str) -> Operator:
    """Delete an operator none of whose numbers is in use; DELETED ones keep the name."""
    row = await _managed(session, viewer, ref)
    live = sa.select(Number.id).where(
        Number.operator_id == row.id, Number.state != NumberState.DELETED
    )
    if await session.scalar(live.limit(1)) is not None:
        raise DomainError.one(
            ErrorCode.CONFLICT,
            f"{row.name} still has numbers that are not DELETED",
            ["input", "id"],
        )
    await session.execute(
        sa.update(Number)
        .where(Number.operator_id == row.id)
        .values(operator_id=None)
        .execution_options(synchronize_session=False)
    )
    await session.delete(row)
    await session.flush()
    return row


@dataclass(frozen=True)
class OperatorFilter:
    name: str | None = None
    reseller_id: str | None = None


async def _where(
    session: AsyncSession, viewer: Viewer, spec: OperatorFilter, problems: Problems
) -> list[sa.ColumnElement[bool]]:
    where = [visible_clause(viewer)]
    if spec.name is not None:
        where.append(Operator.name_key.contains(name_key(spec.name), autoescape=True))
    if spec.reseller_id is not None:
        if organizations.key_of(spec.reseller_id) is None:
            message = organizations.not_a_reference(spec.reseller_id)
            problems.add(ErrorCode.VALIDATION, message, ["filter", "resellerId"])
        org = await organizations.find_visible(session, viewer, spec.reseller_id)
        where.append(Operator.organization_id == (org.id if org is not None else -1))
    return where


async def listed(
    session: AsyncSession, viewer: Viewer, spec: OperatorFilter, request: PageRequest
) -> tuple[Page[Operator], list[sa.ColumnElement[bool]]]:
    """A page of the operators the viewer sees, by name; and the clauses, to count them."""
    problems = Problems()
    where = await _where(session, viewer, spec, problems)
    problems.raise_if_any()
    query = sa.select(Operator).where(*where)
    if request.after is not None:
        after_key, after_id = (*request.after, "")[:2]
        if not after_id.isdigit() or len(after_id) > 18:
            raise DomainError.one(ErrorCode.VALIDATION, "after is not a cursor of this list")
        query = query.where(
            sa.or_(
                Operator.name_key > after_key,
                sa.and_(Operator.name_key == after_key, Operator.id > int(after_id)),
            )
        )
    query = query.order_by(Operator.name_key, Operator.id).limit(request.first + 1)
    return make_page((await session.scalars(query)).all(), request), where


async def count(session: AsyncSession, where: Sequence[sa.ColumnElement[bool]]) -> int:
    query = sa.select(sa.func.count()).select_from(Operator).where(*where)
    return (await session.execute(query)).scalar_one()


async def find(session: AsyncSession, viewer: Viewer, key: UUID) -> Operator | None:
    query = sa.select(Operator).where(Operator.uuid == key, visible_clause(viewer))
    return (await session.scalars(query)).one_or_none()


async def by_ids(
    session: AsyncSession, viewer: Viewer, operator_ids: Sequence[int]
) -> dict[int, Operator]:
    """The operators of these ids the viewer sees (a number's may be kept out of its sight)."""
    query = sa.select(Operator).where(Operator.id.in_(operator_ids), visible_clause(viewer))
    return {row.id: row for row in await session.scalars(query)}


async def state_counts(
    session: AsyncSession, viewer: Viewer, operator_ids: Sequence[int]
) -> dict[int, dict[NumberState, int]]:
    """Per operator, how many of its numbers in each state the viewer sees: one query."""
    query = sa.select(Number.operator_id, Number.state, sa.func.count()).where(
        Number.operator_id.in_(operator_ids)
    )
    if not viewer.at_root:
        pools = sa.select(Organization.id).where(subtree_clause(viewer.org_path))
        query = query.where(Number.organization_id.in_(pools.scalar_subquery()))
    found = {operator_id: dict.fromkeys(NumberState, 0) for operator_id in operator_ids}
    for operator_id, state, n in await session.execute(
        query.group_by(Number.operator_id, Number.state)
    ):
        found[operator_id or 0][state] = n
    return found


async def keepers(session: AsyncSession, keeper_ids: Sequence[int]) -> dict[int, Organization]:
    return await organizations.by_ids(session, keeper_ids)
