"""The organization tree: create, edit, find within a viewer's subtree, list depth first."""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain import ids, text
from domain.access import Viewer
from domain.clock import Clock
from domain.errors import ErrorCode, Problems
from domain.pagination import Page, PageRequest, make_page
from models import Number, NumberState, Organization, OrganizationKind, Role
from models.organizations import path_segment

TYPE_NAME = "Organization"
MAX_NAME = 200
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


async def find_visible(
    session: AsyncSession, viewer: Viewer, global_id: str
) -> Organization | None:
    """The organization a global id names, if the viewer's subtree holds it."""
    key = ids.decode_uuid(global_id, TYPE_NAME)
    if key is None:
        return None
    org = await find_by_uuid(session, key)
    return org if org is not None and viewer.sees(org) else None


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
        if value is not None and value != "" and not _EMAIL.match(value):
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
) -> Organization:
    viewer.require(Role.ADMIN)
    problems = Problems()
    _check_fields(fields, problems, name_required=True)
    parent: Organization | None
    if parent_id is None:
        parent = await session.get(Organization, viewer.org_id)
    else:
        parent = await find_visible(session, viewer, parent_id)
        if parent is None:
            problems.add(ErrorCode.NOT_FOUND, "no such organization", ["input", "parentId"])
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
    session: AsyncSession, viewer: Viewer, org_id: str, fields: OrganizationFields
) -> Organization:
    viewer.require(Role.ADMIN)
    problems = Problems()
    _check_fields(fields, problems, name_required=False)
    org = await find_visible(session, viewer, org_id)
    if org is None:
        problems.add(ErrorCode.NOT_FOUND, "no such organization", ["input", "id"])
    problems.raise_if_any()
    assert org is not None
    _apply_fields(org, fields)
    await session.flush()
    return org


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


async def by_ids(session: AsyncSession, org_ids: Sequence[int]) -> dict[int, Organization]:
    rows = await session.scalars(sa.select(Organization).where(Organization.id.in_(org_ids)))
    return {org.id: org for org in rows}


async def children_of(
    session: AsyncSession, parent_ids: Sequence[int]
) -> dict[int, list[Organization]]:
    rows = await session.scalars(
        sa.select(Organization)
        .where(Organization.parent_id.in_(parent_ids))
        .order_by(Organization.path)
    )
    children: dict[int, list[Organization]] = {pid: [] for pid in parent_ids}
    for org in rows:
        assert org.parent_id is not None
        children[org.parent_id].append(org)
    return children
