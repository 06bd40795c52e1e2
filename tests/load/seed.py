"""The inventory the load runs on: a tree, three series, tokens, and numbers set-based.

Provider -> PARTNERS partners -> customers -> departments, through the domain layer.
Numbers go in with one INSERT ... SELECT over generate_series, each with its ADDED
event, as `addNumbers` would leave them: half in the allocation series, most of them
in the provider's pool and up to ALLOCATION_PER_POOL in each pool (so allocations and
withdrawals meet pools that run dry); half in the search series, spread over every
pool; and HOT numbers of a third series in the first customer's pool, where every
client reserves and locks them.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from domain import ids, organizations, series, tokens
from domain.clock import Clock, SystemClock
from models import Number, Organization, OrganizationKind, Role, Series
from models.database import Database
from tests.load.plan import Inventory, Org

PARTNERS = 3
CUSTOMERS_PER_PARTNER = 3
DEPARTMENTS_PER_CUSTOMER = 2
HOT = 48
ALLOCATION_PER_POOL = 20  # allocation-series numbers seeded outside the provider's, at most
ALLOCATION_PREFIX, SEARCH_PREFIX, HOT_PREFIX = "+6561", "+6562", "+6566"
MAX_NUMBERS = 2_000_000  # six digits after each prefix, two series
ACTOR = "load seed"

_NUMBERS_SQL = """
INSERT INTO numbers (
    e164, state, country, sku, vendor, capabilities, golden, ported_in,
    organization_id, series_id, state_changed_at
)
SELECT
    CASE WHEN g < :hot THEN :hot_prefix || lpad(CAST(g AS text), 6, '0')
         WHEN g % 2 = 0 THEN :allocation_prefix || lpad(CAST(g / 2 AS text), 6, '0')
         ELSE :search_prefix || lpad(CAST(g / 2 AS text), 6, '0') END,
    'AVAILABLE', 'SG', 'DID-SG', 'load',
    (ARRAY[1, 5, 7, 3])[1 + g % 4],  -- VOICE, VOICE+SMS, all three, VOICE+FAX
    false, false,
    CASE WHEN g < :hot THEN :hot_pool
         WHEN g % 2 = 0 AND (g % 4 = 0 OR g >= :spread) THEN :root
         ELSE (:pools)[1 + (g * 7919) % cardinality(:pools)] END,
    CASE WHEN g < :hot THEN :hot_series WHEN g % 2 = 0 THEN :allocation_series
         ELSE :search_series END,
    :now
FROM generate_series(0, :count - 1) AS g
"""

# Bound as integers: asyncpg infers nothing from a CASE.
_INTEGERS = ("count", "hot", "root", "hot_pool", "hot_series", "allocation_series", "search_series")

_EVENTS_SQL = """
INSERT INTO number_events (number_id, organization_id, at, action, from_state, to_state, actor)
SELECT id, organization_id, :now, 'ADDED', NULL, 'AVAILABLE', :actor FROM numbers
"""


@dataclass(frozen=True)
class Seeded:
    """What the checks compare the end state with."""

    total: int
    allocation_series_id: int
    allocation: dict[str, int]  # allocation-series numbers per pool (global id) at the start
    names: dict[str, str]  # organization names by global id, for the messages
    root_viewer: str


def gid(org: Organization) -> str:
    return ids.encode(organizations.TYPE_NAME, org.uuid)


async def _tree(
    session: AsyncSession, root: Organization, clock: Clock
) -> list[tuple[Organization, Organization | None]]:
    """(organization, parent) for the whole tree, root first."""
    tree: list[tuple[Organization, Organization | None]] = [(root, None)]
    levels = (
        (OrganizationKind.PARTNER, PARTNERS),
        (OrganizationKind.CUSTOMER, CUSTOMERS_PER_PARTNER),
        (OrganizationKind.DEPARTMENT, DEPARTMENTS_PER_CUSTOMER),
    )
    parents = [root]
    for kind, per_parent in levels:
        made = []
        for parent in parents:
            for n in range(per_parent):
                fields = organizations.OrganizationFields(name=f"{parent.name} / {kind} {n}")
                child = await organizations.add_child(session, parent, kind, clock, fields)
                tree.append((child, parent))
                made.append(child)
        parents = made
    return tree


async def _series(session: AsyncSession, clock: Clock) -> list[Series]:
    made = [
        Series(name=f"Singapore {prefix}", prefix=prefix, country="SG", created_at=clock.now())
        for prefix in (ALLOCATION_PREFIX, SEARCH_PREFIX, HOT_PREFIX)
    ]
    session.add_all(made)
    await session.flush()
    return made


async def _numbers(
    session: AsyncSession,
    count: int,
    tree: Sequence[Organization],
    hot_pool: Organization,
    made: Sequence[Series],
    clock: Clock,
) -> None:
    """`count` numbers with their ADDED events; `tree` is every organization, root first."""
    allocation, search, hot = made
    now = clock.now()
    statement = sa.text(_NUMBERS_SQL).bindparams(
        sa.bindparam("pools", type_=ARRAY(sa.Integer)),
        sa.bindparam("now", type_=sa.DateTime(timezone=True)),
        *(sa.bindparam(name, type_=sa.Integer) for name in _INTEGERS),
    )
    await session.execute(
        statement,
        {
            "count": count,
            "hot": HOT,
            "spread": 4 * ALLOCATION_PER_POOL * len(tree),
            "hot_prefix": HOT_PREFIX,
            "allocation_prefix": ALLOCATION_PREFIX,
            "search_prefix": SEARCH_PREFIX,
            "root": tree[0].id,
            "hot_pool": hot_pool.id,
            "pools": [org.id for org in tree],
            "hot_series": hot.id,
            "allocation_series": allocation.id,
            "search_series": search.id,
            "now": now,
        },
    )
    await session.execute(sa.text(_EVENTS_SQL), {"now": now, "actor": ACTOR})


async def _orgs(
    session: AsyncSession, tree: Sequence[tuple[Organization, Organization | None]], clock: Clock
) -> tuple[list[Org], dict[int, str]]:
    """A VIEWER token for every organization, an ADMIN token for every parent."""
    orgs, admins = [], {}
    for org, parent in tree:
        if org.kind is not OrganizationKind.DEPARTMENT:
            name = f"{org.name} admin"
            admins[org.id] = await tokens.issue(session, org, name, Role.ADMIN, clock)
        viewer = await tokens.issue(session, org, f"{org.name} viewer", Role.VIEWER, clock)
        orgs.append(
            Org(
                id=gid(org),
                name=org.name,
                parent=gid(parent) if parent else None,
                parent_admin=admins[parent.id] if parent else None,
                viewer=viewer,
            )
        )
    return orgs, admins


async def seed(url: str, count: int) -> tuple[Inventory, Seeded]:
    """Build the inventory on a fresh, migrated database; `count` numbers in all."""
    if not HOT * 2 <= count <= MAX_NUMBERS:
        raise ValueError(f"--numbers must be from {HOT * 2} to {MAX_NUMBERS:,}")
    db = Database(url)
    clock = SystemClock()
    try:
        async with db.write() as session:
            root, _ = await organizations.ensure_root(session, "Provider", clock)
            tree = await _tree(session, root, clock)
            made = await _series(session, clock)
            hot_pool = next(org for org, _ in tree if org.kind is OrganizationKind.CUSTOMER)
            await _numbers(session, count, [org for org, _ in tree], hot_pool, made, clock)
            orgs, admins = await _orgs(session, tree, clock)
            operator = await tokens.issue(session, hot_pool, "hot operator", Role.OPERATOR, clock)
            pools = await allocation_pools(session, made[0].id)
        async with db.engine.connect() as conn:
            await conn.exec_driver_sql("ANALYZE")  # plans for the inventory, not empty tables
            await conn.commit()
    finally:
        await db.dispose()
    inventory = Inventory(
        orgs=tuple(orgs),
        allocation_series=ids.encode(series.TYPE_NAME, made[0].uuid),
        search_prefixes=(ALLOCATION_PREFIX, SEARCH_PREFIX),
        hot=tuple(f"{HOT_PREFIX}{n:06d}" for n in range(HOT)),
        holders=tuple(gid(org) for org, parent in tree if hot_pool in (org, parent)),
        hot_operator=operator,
        hot_admin=admins[hot_pool.id],
    )
    names = {org.id: org.name for org in orgs}
    return inventory, Seeded(count, made[0].id, pools, names, root_viewer=orgs[0].viewer)


async def allocation_pools(session: AsyncSession, series_id: int) -> dict[str, int]:
    """Numbers of the allocation series in each organization's pool, by global id."""
    query = (
        sa.select(Organization.uuid, sa.func.count(Number.id))
        .outerjoin(
            Number,
            sa.and_(Number.organization_id == Organization.id, Number.series_id == series_id),
        )
        .group_by(Organization.uuid)
    )
    rows = await session.execute(query)
    return {ids.encode(organizations.TYPE_NAME, key): n for key, n in rows}
