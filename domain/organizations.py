"""The organization tree: create, edit, find within a viewer's subtree, list depth first."""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain import ids, text
from domain.access import Viewer
from domain.clock import Clock
from domain.errors import ErrorCode, Problems
from domain.pagination import Page, PageRequest, make_page
from models import Number, NumberState, Organization, OrganizationKind, Role
from models.base import column_length
from models.database import Reads
from models.organizations import ancestor_ids, path_segment
from models.prepared import Prepared

TYPE_NAME = "Organization"
MAX_NAME = column_length(Organization.name)
MAX_EMAIL = {
    "billingEmail": column_length(Organization.billing_email),
    "ownerEmail": column_length(Organization.owner_email),
    "supportEmail": column_length(Organization.support_email),
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A child is never "above" its parent: partners resell, customers buy, departments split.
_KIND_RANK = {
    OrganizationKind.PROVIDER: 0,
    OrganizationKind.PARTNER: 1,
    OrganizationKind.CUSTOMER: 2,
    OrganizationKind.DEPARTMENT: 3,
}


def subtree_clause(path: str) -> sa.ColumnElement[bool]:
    """Organizations at or below `path`, as one range of the path index.

    Every descendant's path starts with `path` (which ends in "/"), and "/" sorts
    just before "0", so the subtree is exactly [path, path[:-1] + "0").
    """
    return sa.and_(Organization.path >= path, Organization.path < path[:-1] + "0")


def in_subtree(path: str, ancestor_path: str) -> bool:
    return path.startswith(ancestor_path)


def may_add_numbers(org: "OrganizationFacts") -> bool:
    """Whether the organization's ADMINs may bring numbers into the inventory.

    The provider always may; any other organization if an ADMIN above it allowed it. An
    organization is allowed only while its parent is: taking the right from one takes it
    from its whole subtree.
    """
    return org.parent_id is None or org.may_add_numbers


def use_refusal(
    row: Number,
    pool_path: str,
    owner: Organization | None,
    holders: Mapping[int, Organization],
) -> str | None:
    """Why `owner` may not take the number into use, if it may not.

    The owner must be in the pool's subtree, and a reserved number goes only to the
    organization it is held for or one below it.
    """
    if owner is not None and not in_subtree(owner.path, pool_path):
        return f"{row.e164} is in a pool {owner.name} cannot use"
    if row.state is NumberState.RESERVED and row.reserved_for_id is not None:
        holder = holders[row.reserved_for_id]
        taker_path = owner.path if owner is not None else pool_path
        if not in_subtree(taker_path, holder.path):
            return f"{row.e164} is reserved for {holder.name}"
    return None


async def get_root(session: AsyncSession) -> Organization | None:
    return (
        await session.scalars(sa.select(Organization).where(Organization.parent_id.is_(None)))
    ).one_or_none()


async def ensure_root(session: AsyncSession, name: str, clock: Clock) -> tuple[Organization, bool]:
    """The PROVIDER at the top of the tree, created on first start. True if it is new."""
    root = await get_root(session)
    if root is not None:
        return root, False
    root = Organization(name=name, kind=OrganizationKind.PROVIDER, depth=0, path="")
    root.created_at = clock.now()
    session.add(root)
    await session.flush()
    root.path = "/" + path_segment(root.id)
    await session.flush()
    return root, True


async def find_by_uuid(session: AsyncSession, key: UUID) -> Organization | None:
    return (
        await session.scalars(sa.select(Organization).where(Organization.uuid == key))
    ).one_or_none()


def key_of(ref: str) -> UUID | None:
    """The UUID an organization reference names: its global ID, or its UUID; None if neither."""
    return ids.uuid_named(ref, TYPE_NAME)


async def find_visible(session: AsyncSession, viewer: Viewer, ref: str) -> Organization | None:
    """The organization `ref` (its global ID or UUID) names, if the viewer's subtree holds it."""
    key = key_of(ref)
    if key is None:
        return None
    org = await find_by_uuid(session, key)
    return org if org is not None and viewer.sees(org) else None


def not_a_reference(ref: str) -> str:
    shown = repr(ref) if len(ref) <= 60 else f"{ref[:57]!r}…"
    return f"{shown} is neither an organization's ID nor its UUID"


async def named(
    session: AsyncSession,
    viewer: Viewer,
    ref: str,
    field: Sequence[str],
    problems: Problems,
) -> Organization | None:
    """The organization an input names by ID or UUID, or None and the problem with `field`.

    A reference that is neither form is VALIDATION; one of no organization in the
    viewer's subtree is NOT_FOUND, exactly as one of no organization at all.
    """
    if key_of(ref) is None:
        problems.add(ErrorCode.VALIDATION, not_a_reference(ref), field)
        return None
    org = await find_visible(session, viewer, ref)
    if org is None:
        problems.add(ErrorCode.NOT_FOUND, "no such organization", field)
    return org


@dataclass(frozen=True)
class OrganizationFields:
    """Editable fields; None means "not given"."""

    name: str | None = None
    billing_email: str | None = None
    owner_email: str | None = None
    support_email: str | None = None


def _check_text(fields: OrganizationFields, problems: Problems) -> None:
    """Names and e-mail addresses are lines: they reach mail headers and log lines."""
    text.check(problems, fields.name, "name")
    text.check(problems, fields.billing_email, "billingEmail")
    text.check(problems, fields.owner_email, "ownerEmail")
    text.check(problems, fields.support_email, "supportEmail")


def _check_fields(fields: OrganizationFields, problems: Problems, name_required: bool) -> None:
    _check_text(fields, problems)
    if fields.name is not None or name_required:
        name = (fields.name or "").strip()
        if not name or len(name) > MAX_NAME:
            problems.add(
                ErrorCode.VALIDATION, f"name must be 1 to {MAX_NAME} characters", ["input", "name"]
            )
    for field, value in (
        ("billingEmail", fields.billing_email),
        ("ownerEmail", fields.owner_email),
        ("supportEmail", fields.support_email),
    ):
        if value is None or value == "":
            continue
        if len(value) > MAX_EMAIL[field]:
            problems.add(
                ErrorCode.VALIDATION,
                f"{field} must be at most {MAX_EMAIL[field]} characters",
                ["input", field],
            )
        elif not _EMAIL.match(value):
            problems.add(
                ErrorCode.VALIDATION, f"{value!r} is not an e-mail address", ["input", field]
            )


def _apply_fields(org: Organization, fields: OrganizationFields) -> None:
    if fields.name is not None:
        org.name = fields.name.strip()
    # An empty string clears an address; None leaves it as it is.
    if fields.billing_email is not None:
        org.billing_email = fields.billing_email or None
    if fields.owner_email is not None:
        org.owner_email = fields.owner_email or None
    if fields.support_email is not None:
        org.support_email = fields.support_email or None


async def create(
    session: AsyncSession,
    viewer: Viewer,
    clock: Clock,
    *,
    kind: OrganizationKind,
    parent_id: str | None,
    fields: OrganizationFields,
    max_depth: int,
) -> Organization:
    """A new organization below `parent_id` (the viewer's own by default), at most
    `max_depth` levels below the provider (NUMBRA_MAX_TREE_DEPTH)."""
    viewer.require(Role.ADMIN)
    problems = Problems()
    _check_fields(fields, problems, name_required=True)
    parent: Organization | None
    if parent_id is None:
        parent = await session.get(Organization, viewer.org_id)
    else:
        parent = await named(session, viewer, parent_id, ["input", "parentId"], problems)
    if parent is not None and parent.depth >= max_depth:
        problems.add(
            ErrorCode.VALIDATION,
            f"the tree is at most {max_depth} levels deep below the provider, and "
            f"{parent.name} is on the deepest level: it can have no children",
            ["input", "parentId"],
        )
    if kind is OrganizationKind.PROVIDER:
        problems.add(ErrorCode.VALIDATION, "there is one PROVIDER: the root", ["input", "kind"])
    elif parent is not None and _KIND_RANK[kind] < _KIND_RANK[parent.kind]:
        problems.add(
            ErrorCode.VALIDATION,
            f"a {kind.value} cannot sit below a {parent.kind.value}",
            ["input", "kind"],
        )
    problems.raise_if_any()
    assert parent is not None
    return await add_child(session, parent, kind, clock, fields)


async def add_child(
    session: AsyncSession,
    parent: Organization,
    kind: OrganizationKind,
    clock: Clock,
    fields: OrganizationFields,
) -> Organization:
    """Insert an organization below `parent`; the caller has checked the rules."""
    org = Organization(kind=kind, parent_id=parent.id, depth=parent.depth + 1, path="")
    org.created_at = clock.now()
    _apply_fields(org, fields)
    session.add(org)
    await session.flush()
    # The path needs the new id, so it is set once the row exists.
    org.path = parent.path + path_segment(org.id)
    await session.flush()
    return org


async def update(
    session: AsyncSession,
    viewer: Viewer,
    org_id: str,
    fields: OrganizationFields,
    may_add_numbers: bool | None = None,
) -> Organization:
    """Edit the fields given; `may_add_numbers` (only an ADMIN above the organization may
    set it) lets its ADMINs bring numbers into the inventory, or takes that from its subtree."""
    viewer.require(Role.ADMIN)
    problems = Problems()
    _check_fields(fields, problems, name_required=False)
    org = await named(session, viewer, org_id, ["input", "id"], problems)
    if org is not None and may_add_numbers is not None:
        await _check_intake_right(session, viewer, org, may_add_numbers, problems)
    problems.raise_if_any()
    assert org is not None
    _apply_fields(org, fields)
    if may_add_numbers is not None:
        await _set_intake_right(session, org, may_add_numbers)
    await session.flush()
    return org


async def _check_intake_right(
    session: AsyncSession, viewer: Viewer, org: Organization, may: bool, problems: Problems
) -> None:
    """Only an ADMIN above `org` sets its right to add numbers; to grant it, the viewer's
    organization and `org`'s parent must have it (a reseller allowed passes it down)."""
    field = ["input", "mayAddNumbers"]
    if org.id == viewer.org_id or org.parent_id is None:
        problems.add(
            ErrorCode.FORBIDDEN,
            "only an ADMIN of an organization above it may set its mayAddNumbers",
            field,
        )
        return
    if not may:
        return
    own = await session.get(Organization, viewer.org_id)
    assert own is not None
    if not may_add_numbers(own):
        problems.add(
            ErrorCode.FORBIDDEN,
            "your organization may not add numbers, so it cannot allow others to",
            field,
        )
        return
    parent = await session.get(Organization, org.parent_id)
    assert parent is not None
    if not may_add_numbers(parent):
        problems.add(
            ErrorCode.VALIDATION,
            f"{parent.name}, above it, may not add numbers: allow it first",
            field,
        )


async def _set_intake_right(session: AsyncSession, org: Organization, may: bool) -> None:
    if may:
        org.may_add_numbers = True
        return
    # Taken from the organization, the right is taken from everything below it.
    await session.execute(
        sa.update(Organization)
        .where(subtree_clause(org.path))
        .values(may_add_numbers=False)
        .execution_options(synchronize_session=False)
    )
    org.may_add_numbers = False


async def list_subtree(
    session: AsyncSession, viewer: Viewer, page: PageRequest
) -> Page[Organization]:
    """The viewer's organization, then its subtree, depth first; keyed by path."""
    query = sa.select(Organization).where(subtree_clause(viewer.org_path))
    if page.after is not None:
        query = query.where(Organization.path > str(page.after[0]))
    rows = (await session.scalars(query.order_by(Organization.path).limit(page.first + 1))).all()
    return make_page(rows, page)


async def count_subtree(session: AsyncSession, viewer: Viewer) -> int:
    query = sa.select(sa.func.count()).where(subtree_clause(viewer.org_path))
    return (await session.execute(query)).scalar_one()


class OrganizationFacts(Protocol):
    """What the API shows of an organization and finds its relatives by: an Organization
    row, or OrganizationRead."""

    @property
    def id(self) -> int: ...
    @property
    def uuid(self) -> UUID: ...
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> OrganizationKind: ...
    @property
    def parent_id(self) -> int | None: ...
    @property
    def path(self) -> str: ...
    @property
    def depth(self) -> int: ...
    @property
    def billing_email(self) -> str | None: ...
    @property
    def owner_email(self) -> str | None: ...
    @property
    def support_email(self) -> str | None: ...
    @property
    def may_add_numbers(self) -> bool: ...
    @property
    def ancestor_ids(self) -> list[int]: ...


class OrganizationRead(NamedTuple):
    """An organization as nested views read it: a plain row, a third of an ORM object's
    cost, read by a statement run on the driver (models/prepared.py)."""

    id: int
    uuid: UUID
    name: str
    kind: OrganizationKind
    parent_id: int | None
    path: str
    depth: int
    billing_email: str | None
    owner_email: str | None
    support_email: str | None
    may_add_numbers: bool

    @property
    def ancestor_ids(self) -> list[int]:
        return ancestor_ids(self.path)


# The organizations asked for, a parameter of statements made once (building and keying
# a statement cost more than running it on the small tables they read).
ORG_IDS: sa.BindParameter[Any] = sa.bindparam("org_ids", expanding=True)
# OrganizationRead's columns, in its order.
_READ = tuple(getattr(Organization, name) for name in OrganizationRead._fields)
# Made once: a nested view loads organizations a level at a time, and building and
# keying the statement cost more than running it.
_BY_IDS = sa.select(Organization).where(Organization.id.in_(ORG_IDS))
_READ_BY_IDS = Prepared(sa.select(*_READ).where(Organization.id.in_(ORG_IDS)), OrganizationRead)
_CHILDREN = Prepared(
    sa.select(*_READ)
    .where(Organization.parent_id.in_(sa.bindparam("parent_ids", expanding=True)))
    .order_by(Organization.path),
    OrganizationRead,
)


async def by_ids(session: AsyncSession, org_ids: Sequence[int]) -> dict[int, Organization]:
    rows = await session.scalars(_BY_IDS, {"org_ids": list(org_ids)})
    return {org.id: org for org in rows}


async def read_by_ids(reads: Reads, org_ids: Sequence[int]) -> dict[int, OrganizationRead]:
    """As by_ids, plain rows (for nested views)."""
    rows: list[OrganizationRead] = await _READ_BY_IDS.rows(reads, {"org_ids": list(org_ids)})
    return {org.id: org for org in rows}


async def children_of(reads: Reads, parent_ids: Sequence[int]) -> dict[int, list[OrganizationRead]]:
    rows: list[OrganizationRead] = await _CHILDREN.rows(reads, {"parent_ids": list(parent_ids)})
    children: dict[int, list[OrganizationRead]] = {pid: [] for pid in parent_ids}
    for org in rows:
        assert org.parent_id is not None
        children[org.parent_id].append(org)
    return children
