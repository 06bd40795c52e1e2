"""Plans, not timings: a prefix search in one big pool walks the e164 range.

A provider imports its stock into its own pool, all AVAILABLE. Averages over the
organizations (or stale statistics) then call the (organization, state) index
selective, and a planner that believes them reads and sorts the whole pool for a
50-row page. The page's statement must walk the e164 range under the prefix instead,
in order, with no sort.
"""

import json
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa

from domain import ids, organizations, search
from domain.access import Viewer
from domain.clock import ManualClock
from domain.csv import exports
from domain.errors import Problems
from domain.pagination import PageRequest
from models import Capability, NumberState, Organization, OrganizationKind, Role
from models.database import Database
from tests.support.world import World, new_organization

BIG_POOL = 20_000
SMALL_POOLS = 20
PREFIX = "+6560012"  # 1,000 numbers of the big pool

_FILL = {
    "sqlite": "WITH RECURSIVE gen(n) AS "
    "(SELECT 0 UNION ALL SELECT n + 1 FROM gen WHERE n < :count - 1) "
    "SELECT '+656' || printf('%07d', n) AS e164, n FROM gen",
    "postgresql": "SELECT '+656' || lpad(CAST(n AS text), 7, '0') AS e164, n "
    "FROM generate_series(0, :count - 1) AS gen(n)",
}
_INSERT = """
INSERT INTO numbers (e164, state, country, sku, vendor, capabilities, golden, ported_in,
                     organization_id, state_changed_at)
SELECT e164, :state, 'SG', 'std', 'v', CASE WHEN n % 3 = 0 THEN 1 ELSE 5 END, false, false,
       :org, :now
FROM ({fill}) AS filled
"""


async def _stock(db: Database, clock: ManualClock) -> tuple[Organization, Organization]:
    """A provider's child pool of BIG_POOL AVAILABLE numbers, and small pools elsewhere."""
    world = await World.create(db, clock)
    big = await new_organization(db, clock, "Big", OrganizationKind.PARTNER, world.root)
    small = [
        await new_organization(db, clock, f"Small {k}", OrganizationKind.CUSTOMER, world.root)
        for k in range(SMALL_POOLS)
    ]
    dialect = db.engine.dialect.name
    async with db.write() as session:
        insert = _INSERT.format(fill=_FILL[dialect])
        params: dict[str, Any] = {"now": clock.now(), "state": NumberState.AVAILABLE.name}
        await session.execute(sa.text(insert), params | {"count": BIG_POOL, "org": big.id})
        # The small pools get numbers far from the prefix, in other states.
        for k, org in enumerate(small):
            rows = [
                {
                    "e164": f"+659{k:03d}{j:04d}",
                    "org": org.id,
                    "state": (NumberState.ASSIGNED if j % 2 else NumberState.RESERVED).name,
                }
                for j in range(20)
            ]
            await session.execute(
                sa.text(
                    "INSERT INTO numbers (e164, state, country, sku, vendor, capabilities,"
                    " golden, ported_in, organization_id, state_changed_at)"
                    " VALUES (:e164, :state, 'SG', 'std', 'v', 5, false, false, :org, :now)"
                ),
                [row | {"now": clock.now()} for row in rows],
            )
    return world.root, big


async def _plan(db: Database, viewer: Viewer, spec: search.NumberFilter) -> str:
    async with db.read() as session:
        problems = Problems()
        where = await search.build(session, viewer, spec, problems)
        problems.raise_if_any()
        query = search.page_query(db.engine.dialect.name, where, PageRequest(50, None))
        compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
        if db.is_sqlite:
            rows = await session.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}"))
            return "\n".join(row[-1] for row in rows)
        rows = await session.execute(sa.text(f"EXPLAIN {compiled}"))
        return "\n".join(row[0] for row in rows)


async def _mislead_sqlite(db: Database) -> None:
    """sqlite_stat1 as a thousand-organization mix of a million numbers leaves it: each
    pool and state a sliver of the table, so the (organization, state) index looks
    selective."""
    stats = {
        "sqlite_autoindex_numbers_1": "1000000 1",  # e164
        "ix_numbers_organization_id_state": "1000000 1000 200",
        "ix_numbers_state_expires_at": "1000000 200000 2",
    }
    async with db.engine.connect() as connection:
        await connection.exec_driver_sql("ANALYZE")
        for index, stat in stats.items():
            await connection.exec_driver_sql(
                "UPDATE sqlite_stat1 SET stat = ? WHERE idx = ?", (stat, index)
            )
        await connection.commit()
    await db.dispose()  # connections made afterwards read them


def _assert_walks_the_range(plan: str, dialect: str) -> None:
    if dialect == "sqlite":
        numbers_lines = [
            line for line in plan.splitlines() if "numbers" in line and "organizations" not in line
        ]
        assert any("e164>? AND e164<?" in line for line in numbers_lines), plan
        assert "organization_id" not in "".join(numbers_lines), plan
        assert "TEMP B-TREE FOR ORDER BY" not in plan, plan
    else:
        # In order through the e164 index, no other index on numbers, no sort.
        assert "Index Scan using uq_numbers_e164" in plan, plan
        assert "ix_numbers_" not in plan, plan
        assert "Sort" not in plan, plan


SPEC = search.NumberFilter(
    states=[NumberState.AVAILABLE], pattern=PREFIX, capabilities=[Capability.SMS]
)


async def _assert_both_viewers_walk_the_range(
    db: Database, root: Organization, big: Organization
) -> None:
    dialect = db.engine.dialect.name
    # The pool's own token (the pool is its subtree)...
    tenant = Viewer(0, "big admin", Role.ADMIN, big.id, big.path)
    _assert_walks_the_range(await _plan(db, tenant, SPEC), dialect)
    # ... and the provider's, asking for that pool.
    by_org = replace(SPEC, organization_id=ids.encode(organizations.TYPE_NAME, big.uuid))
    admin = Viewer(0, "root admin", Role.ADMIN, root.id, root.path)
    _assert_walks_the_range(await _plan(db, admin, by_org), dialect)


@pytest.mark.slow
async def test_a_prefix_page_in_one_big_pool_walks_the_e164_range_whatever_the_statistics(
    db: Database, clock: ManualClock
) -> None:
    """On SQLite the statistics of a thousand-organization mix; on PostgreSQL its own,
    current ones, which cannot say which pools a subtree's subquery selects and so take
    an average pool."""
    root, big = await _stock(db, clock)
    if db.is_sqlite:
        await _mislead_sqlite(db)
    else:
        await db.refresh_statistics()
    await _assert_both_viewers_walk_the_range(db, root, big)


# PostgreSQL has statistics from its first ANALYZE on (after bulk imports and
# migrations, then autovacuum); SQLite has none until something runs ANALYZE.
@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_prefix_page_in_one_big_pool_walks_the_e164_range_before_any_statistics(
    db: Database, clock: ManualClock
) -> None:
    root, big = await _stock(db, clock)
    await _assert_both_viewers_walk_the_range(db, root, big)


# ---- no prefix: the counters decide (search.page_statement) ----


async def _statement_plan(db: Database, viewer: Viewer, spec: search.NumberFilter) -> str:
    async with db.read() as session:
        query = await search.page_statement(session, viewer, spec, PageRequest(50, None))
        compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
        rows = await session.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}"))
        return "\n".join(row[-1] for row in rows)


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_page_without_a_prefix_walks_e164_in_a_big_pool_and_reads_a_small_one(
    db: Database, clock: ManualClock
) -> None:
    """The big pool's first page (AVAILABLE, SMS; no pattern) walks the numbers in e164
    order and stops after the page, never reading and sorting its 20,000; a small pool's
    reads its own few through the pool's index, never walking the whole table."""
    _root, big = await _stock(db, clock)
    await _mislead_sqlite(db)
    spec = replace(SPEC, pattern=None)
    tenant = Viewer(0, "big admin", Role.ADMIN, big.id, big.path)
    plan = await _statement_plan(db, tenant, spec)
    assert "SCAN numbers USING INDEX sqlite_autoindex_numbers_1" in plan, plan
    assert "TEMP B-TREE FOR ORDER BY" not in plan, plan
    async with db.read() as session:
        small_id = await session.scalar(
            sa.select(Organization.id).where(Organization.name == "Small 3")
        )
        small = await session.get(Organization, small_id)
    assert small is not None
    customer = Viewer(0, "small admin", Role.ADMIN, small.id, small.path)
    plan = await _statement_plan(db, customer, replace(spec, states=None, capabilities=None))
    assert "ix_numbers_organization_id" in plan, plan
    assert "sqlite_autoindex_numbers_1" not in plan, plan


# ---- exports: every page reads on from where the last stopped ----


async def _export_plan(db: Database, viewer: Viewer, spec: search.NumberFilter) -> str:
    async with db.read() as session:
        problems = Problems()
        where = await search.build(session, viewer, spec, problems)
        problems.raise_if_any()
        query = exports.page_statement(db.engine.dialect.name, where, "+6560010000", 5_000)
        compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
        explain = "EXPLAIN QUERY PLAN" if db.is_sqlite else "EXPLAIN"
        rows = await session.execute(sa.text(f"{explain} {compiled}"))
        return "\n".join(str(row[-1] if db.is_sqlite else row[0]) for row in rows)


@pytest.mark.slow
async def test_an_export_walks_the_numbers_in_e164_order_whatever_the_statistics(
    db: Database, clock: ManualClock
) -> None:
    """A page of an export reads on in e164 order from the last page's end, for the whole
    inventory and for one pool: no page reads and sorts the pool again (a million
    numbers took 78 s on SQLite that way, the same rows sorted for every page)."""
    root, big = await _stock(db, clock)
    if db.is_sqlite:
        await _mislead_sqlite(db)
    else:
        await db.refresh_statistics()
    admin = Viewer(0, "root admin", Role.ADMIN, root.id, root.path)
    tenant = Viewer(0, "big admin", Role.ADMIN, big.id, big.path)
    by_org = search.NumberFilter(organization_id=ids.encode(organizations.TYPE_NAME, big.uuid))
    for viewer, spec in (
        (admin, search.NumberFilter()),
        (tenant, search.NumberFilter()),
        (admin, by_org),
    ):
        plan = await _export_plan(db, viewer, spec)
        if db.is_sqlite:
            assert "SEARCH numbers USING INDEX sqlite_autoindex_numbers_1 (e164>?)" in plan, plan
            assert "TEMP B-TREE FOR ORDER BY" not in plan, plan
        else:
            assert "Index Scan using uq_numbers_e164" in plan, plan
            assert "Sort" not in plan, plan


# ---- PostgreSQL's generic plan: what a prepared statement runs after a few runs ----


async def _generic_plan(db: Database, viewer: Viewer, spec: search.NumberFilter) -> str:
    """The plan PostgreSQL keeps for any parameters of the page's statement (asyncpg
    prepares every statement; from its sixth run the server may keep one generic plan,
    made without seeing the prefix's range or the subtree's pools)."""
    async with db.read() as session:
        problems = Problems()
        where = await search.build(session, viewer, spec, problems)
        problems.raise_if_any()
        query = search.page_query("postgresql", where, PageRequest(50, None))
        compiled = query.compile(db.engine)
        values = ", ".join(_literal(compiled.params[name]) for name in compiled.positiontup or ())
        connection = await session.connection()
        await connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        await connection.exec_driver_sql(f"PREPARE numbra_page AS {compiled}")
        explained = await connection.exec_driver_sql(
            f"EXPLAIN (FORMAT JSON) EXECUTE numbra_page({values})"
        )
        found = explained.scalar_one()
        await connection.exec_driver_sql("DEALLOCATE numbra_page")
        await connection.exec_driver_sql("RESET plan_cache_mode")
    found = json.loads(found) if isinstance(found, str) else found
    lines: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        index = f" using {node['Index Name']}" if "Index Name" in node else ""
        lines.append(f"{node['Node Type']}{index}")
        for child in node.get("Plans", ()):
            walk(child)

    walk(found[0]["Plan"])
    return "\n".join(lines)


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_prefix_page_in_one_big_pool_walks_the_range_in_the_generic_plan_too(
    db: Database, clock: ManualClock
) -> None:
    """The pool's own token, whose subtree is a subquery: the generic plan joined the
    pools to the range and sorted every match (800 ms a page in a pool of a million),
    and the custom plans read the range by bitmap and sorted it (35 ms)."""
    _root, big = await _stock(db, clock)
    await db.refresh_statistics()
    tenant = Viewer(0, "big admin", Role.ADMIN, big.id, big.path)
    plan = await _generic_plan(db, tenant, SPEC)
    assert "Index Scan using uq_numbers_e164" in plan, plan
    assert "ix_numbers_" not in plan, plan
    assert "Sort" not in plan, plan
    assert "Join" not in plan, plan
    assert "Nested Loop" not in plan, plan


def _literal(value: object) -> str:
    return str(value) if isinstance(value, int) else "'" + str(value).replace("'", "''") + "'"


# ---- nested views: each organization's page read as a search page is ----


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_pages_per_organization_walk_a_big_pool_and_read_a_small_one(
    db: Database, clock: ManualClock
) -> None:
    """An organization view's first 20 numbers, for a big pool and a small one in one
    statement: the big pool's walks the numbers in e164 order and stops after its page,
    the small one's reads its few through the pool's index; neither ranks a whole pool
    (a window over the provider's 400,000 numbers took 564 ms a view)."""
    root, big = await _stock(db, clock)
    await _mislead_sqlite(db)
    async with db.read() as session:
        small = await session.scalar(sa.select(Organization).where(Organization.name == "Small 3"))
    admin = Viewer(0, "root admin", Role.ADMIN, root.id, root.path)
    assert small is not None
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        seen.append((statement, parameters))

    sa.event.listen(db.read_engine.sync_engine, "before_cursor_execute", record)
    try:
        async with db.read_connection() as connection:
            pages = await search.pages_per_organization(
                connection,
                admin,
                search.NumberFilter(),
                [big.id, small.id],
                False,
                PageRequest(20, None),
            )
    finally:
        sa.event.remove(db.read_engine.sync_engine, "before_cursor_execute", record)
    assert [row.e164 for row in pages[big.id].rows] == [f"+656{n:07d}" for n in range(20)]
    assert [row.e164 for row in pages[small.id].rows] == [f"+659003{j:04d}" for j in range(20)]
    statement, parameters = next((s, p) for s, p in seen if "UNION ALL" in s)
    async with db.engine.connect() as connection:
        plan = "\n".join(
            row[-1]
            for row in await connection.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {statement}", parameters
            )
        )
    assert "SCAN numbers USING INDEX sqlite_autoindex_numbers_1" in plan, plan
    assert "ix_numbers_organization_id" in plan, plan
    assert "row_number" not in statement.lower()
