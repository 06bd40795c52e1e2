"""Search at a million numbers, over HTTP against `numbra serve`, beside the floor.

For SQLite (a temporary file) and, when reachable, PostgreSQL (a database of its own on
127.0.0.1:5432, dropped at the end):

1. Build the inventory set-based: 1,000 organizations four levels deep (provider,
   partners, customers, departments), then 1,000,000 numbers in one INSERT ... SELECT
   over a recursive CTE (SQLite) or generate_series (PostgreSQL) joined to small lookup
   tables: eight SG series, 50% AVAILABLE / 10% RESERVED / 5% LOCKED / 30% ASSIGNED /
   5% DELETED, capability masks, numbers inserted in shuffled blocks of 1,000 and held
   in blocks of 100 by the pools (40% the provider's). A second inventory, "one pool",
   skews both: 99% of the numbers in one partner's pool, 95% AVAILABLE (a provider's
   fresh stock), searched with that partner's token; every measure runs on both
   shapes (`--shape` picks). The migration's secondary indexes
   are dropped for the load and made again from their own definitions; on PostgreSQL
   the foreign-key triggers are off for it (the rows are checked after). SQLite's FTS5
   trigram table is filled by the insert trigger of migration 0003. Then ANALYZE (and
   PRAGMA optimize on SQLite, VACUUM on PostgreSQL). Reservations and locks end months
   from now, so the sweep `numbra serve` runs in process finds nothing to do.
2. Capture the SQL the API runs for every measured request: the real app, in process,
   with a listener on its engines (the token lookup and the search; not BEGIN).
3. Serve `numbra serve` (uvicorn, one process, default settings) and the floor: a
   minimal Starlette app (`python -m tests.perf.search floor`) that replays exactly that SQL
   through the same driver (the read engine of a `models.database.Database` on the same
   URL) and answers the same JSON. Both answers are checked equal to the API's before
   anything is timed.
4. Time every measure as the median of many sequential keep-alive requests, API and
   floor interleaved (page 1 and the deep page too), with each server's CPU time per
   request; walk the cursor 1,000 pages deep through the API and check it lands where
   SQL says; drive the prefix search with concurrent keep-alive connections from a
   client process for throughput. Servers are pinned to CPU 0, clients to CPU 1 (when
   taskset and two CPUs are there); the CPU other processes took meanwhile is printed.
   With the full inventory, the plan of every search statement follows the table
   (EXPLAIN QUERY PLAN on SQLite, EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL).

    python -m tests.perf.search [--quick] [--numbers N] [--sqlite-only] [--shape KEY ...]

`--quick` (CI) uses 20,000 numbers, 50 organizations and a few runs per measure;
`--numbers` another inventory (one organization per 1,000 numbers) with full runs.
"""

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import pickle
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.perf import UNLIMITED_BUDGET, drive_client
from tests.perf.pinning import CLIENT_CPU, SERVER_CPU, can_pin, pinned, this_process_on

ROOT = Path(__file__).resolve().parent.parent.parent
CONCURRENCY = 8
WORKERS = 2  # `numbra serve --workers` for the workers' throughput row (PostgreSQL)
BLOCK = 1_000  # numbers are laid out in blocks of this many, in a shuffled order
SERIES = ("+6561", "+6562", "+6566", "+6581", "+6582", "+6590", "+6591", "+6598")
STATES = ("AVAILABLE", "RESERVED", "LOCKED", "ASSIGNED", "DELETED")
CAPABILITIES = (("VOICE", 1), ("FAX", 2), ("SMS", 4))
NODE = "edges { node { e164 state capabilities sku } }"
NA = "n/a (see CSV import/export)"
# The SPA's organization page: its counts per state, allocations per series, the first
# 20 numbers of its pool, and its children with their counts.
ORG_VIEW = """{ viewer { organization { id name kind
  numberCounts { state count }
  allocations { allocated unused series { prefix } }
  numbers(first: 20) { edges { node { e164 state capabilities sku } } pageInfo { endCursor } }
  children { id name kind numberCounts { state count } }
} } }"""


@dataclass(frozen=True)
class Size:
    numbers: int
    organizations: int
    depth: int  # pages walked through cursors
    runs: int  # timed requests per measure (heavier measures take fewer)
    seconds: float  # throughput run
    warmup: float

    @classmethod
    def for_mode(cls, quick: bool, numbers: int | None = None) -> "Size":
        if quick:
            return cls(20_000, 50, 20, 5, 0.3, 0.1)
        if numbers is not None:
            return cls(numbers, max(50, numbers // 1_000), 1_000, 120, 4.0, 0.5)
        return cls(1_000_000, 1_000, 1_000, 120, 4.0, 0.5)

    @property
    def per_series(self) -> int:
        return self.numbers // len(SERIES)


@dataclass(frozen=True)
class Measure:
    key: str
    title: str
    target: str
    query: str
    variables: dict[str, Any] = field(default_factory=dict)
    first: int = 50  # for the floor's JSON; 0 for counts
    page_info: bool = False
    runs_share: float = 1.0  # of Size.runs
    # A view of several statements (the nested org view): the floor runs every one of
    # them, then answers the API's JSON; other measures run two (token, search).
    view: bool = False

    def body(self) -> bytes:
        return json.dumps({"query": self.query, "variables": self.variables}).encode()


# --- Building the inventory ---------------------------------------------------------

_NUMBERS_SQL = """
INSERT INTO numbers (
    e164, state, country, sku, vendor, capabilities, golden, ported_in, tag,
    organization_id, series_id, state_changed_at, expires_at,
    reservation_kind, reservation_reason, reserved_for_id, reservation_tag, reserved_at,
    lock_remark, locked_at, subscription_uuid, owner_id, deletion_reason
)
{with_gen}
SELECT
    bench_series.prefix || {pad6_j}, st.state, 'SG', bench_series.sku, bench_series.vendor,
    caps.capabilities, (x.h % 97 = 0), (x.h % 53 = 0),
    CASE WHEN x.h % 13 = 0 THEN 'tag-' || (x.h % 7) END,
    x.org, x.s + 1, st.changed_at, st.expires_at,
    st.reservation_kind, st.reservation_reason, CASE WHEN st.reserved THEN x.org END,
    CASE WHEN st.reserved AND x.h % 5 = 0 THEN 'campaign' END, st.reserved_at,
    st.lock_remark, st.locked_at,
    CASE WHEN st.assigned THEN {uuid_g} END, CASE WHEN st.assigned THEN x.org END,
    st.deletion_reason
FROM (
    -- LIMIT keeps both planners from inlining (and so recomputing) these expressions.
    SELECT g, g / :per_series AS s, g % :per_series AS j, h,
           CASE WHEN oh % 100 < :pool_share THEN :pool ELSE 2 + (oh / 100) % :others END AS org
    FROM (
        SELECT g, ((g * 2654435761) % 4294967296) / 256 AS h,
               (((g / 100) * 2654435761) % 4294967296) / 256 AS oh
        FROM (
            SELECT (((n / {block}) * :stride) % :blocks) * {block} + n % {block} AS g
            FROM {gen}
        ) AS shuffled
    ) AS hashed
    LIMIT :count
) AS x
JOIN bench_states AS st ON st.bucket = x.h % 20
JOIN bench_caps AS caps ON caps.bucket = (x.h / 20) % 20
JOIN bench_series ON bench_series.id = x.s + 1
"""
_DIALECT_SQL = {
    "sqlite": {
        "with_gen": "WITH RECURSIVE gen(n) AS "
        "(SELECT 0 UNION ALL SELECT n + 1 FROM gen WHERE n < :count - 1)",
        "gen": "gen",
        "pad6_j": "printf('%06d', x.j)",
        "uuid_g": "'00000000000040008000' || printf('%012x', x.g)",
    },
    "postgresql": {
        "with_gen": "",
        "gen": "generate_series(0, :count - 1) AS gen(n)",
        "pad6_j": "lpad(CAST(x.j AS text), 6, '0')",
        "uuid_g": "CAST('00000000-0000-4000-8000-' || lpad(to_hex(x.g), 12, '0') AS uuid)",
    },
}
# Small lookup tables the INSERT joins: a state profile per 5% bucket (50% AVAILABLE,
# 10% RESERVED, 5% LOCKED, 30% ASSIGNED, 5% DELETED), capability masks per 5% bucket
# (40% VOICE+SMS, 30% VOICE, 15% all three, 10% SMS, 5% FAX), and the series.
_LOOKUP_DDL = [
    "CREATE TEMPORARY TABLE bench_states (bucket INTEGER PRIMARY KEY, state VARCHAR(32),"
    " changed_at {ts}, expires_at {ts}, reservation_kind VARCHAR(32),"
    " reservation_reason VARCHAR(32), reserved BOOLEAN, reserved_at {ts},"
    " lock_remark VARCHAR(200), locked_at {ts}, assigned BOOLEAN, deletion_reason VARCHAR(32))",
    "CREATE TEMPORARY TABLE bench_caps (bucket INTEGER PRIMARY KEY, capabilities INTEGER)",
    "CREATE TEMPORARY TABLE bench_series (id INTEGER PRIMARY KEY, prefix VARCHAR(16),"
    " sku VARCHAR(100), vendor VARCHAR(100))",
]
_STATE_BUCKETS = ["AVAILABLE"] * 10 + ["RESERVED"] * 2 + ["LOCKED"] + ["ASSIGNED"] * 6
_STATE_BUCKETS += ["DELETED"]


@dataclass(frozen=True)
class Shape:
    """How the inventory is spread over pools and states, and whose token searches it."""

    key: str
    title: str
    pool: int  # the organization holding pool_share % of the numbers
    pool_share: int
    states: tuple[str, ...]  # one per 5% bucket
    viewer: int  # the organization of the bench's ADMIN token


SHAPES = (
    Shape(
        "mixed",
        "the 1,000-organization mix (40% in the provider's pool; 50% AVAILABLE), root token",
        pool=1,
        pool_share=40,
        states=tuple(_STATE_BUCKETS),
        viewer=1,
    ),
    # A provider's stock imported into one pool, fresh, so nearly all AVAILABLE: the
    # shape whose averages mislead a planner into reading and sorting the whole pool.
    Shape(
        "one-pool",
        "one big pool (99% of the numbers in a partner's pool; 95% AVAILABLE), its token",
        pool=2,
        pool_share=99,
        states=("AVAILABLE",) * 19 + ("ASSIGNED",),
        viewer=2,
    ),
)
SHAPE_KEYS = tuple(shape.key for shape in SHAPES)
_CAPABILITY_BUCKETS = [5] * 8 + [1] * 6 + [7] * 3 + [4] * 2 + [2]


def _lookup_rows(dialect: str, shape: Shape) -> dict[str, list[dict[str, Any]]]:
    from datetime import timedelta

    # Everything lapses months from now: the sweep that `numbra serve` runs in process
    # finds nothing due (no lapses, no notices) while the bench measures.
    changed = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)

    def ts(value: datetime | None) -> Any:
        if value is None or dialect != "sqlite":
            return value
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")  # how SQLAlchemy stores it on SQLite

    states = []
    for bucket, state in enumerate(shape.states):
        reserved, locked = state == "RESERVED", state == "LOCKED"
        free = reserved and bucket % 2 == 0
        expires = changed + timedelta(days=210) if free else None
        states.append(
            {
                "bucket": bucket,
                "state": state,
                "changed_at": ts(changed),
                "expires_at": ts(changed + timedelta(days=395) if locked else expires),
                "reservation_kind": ("FREE" if free else "CHARGED") if reserved else None,
                "reservation_reason": "MANUAL" if reserved else None,
                "reserved": reserved,
                "reserved_at": ts(changed) if reserved else None,
                "lock_remark": "bench lock" if locked else None,
                "locked_at": ts(changed) if locked else None,
                "assigned": state == "ASSIGNED",
                "deletion_reason": "PORTED_OUT" if state == "DELETED" else None,
            }
        )
    skus = ("SG-MOBILE", "SG-FIXED", "SG-PREMIUM")
    vendors = ("Singtel", "StarHub", "M1")
    return {
        "bench_states": states,
        "bench_caps": [{"bucket": b, "capabilities": c} for b, c in enumerate(_CAPABILITY_BUCKETS)],
        "bench_series": [
            {"id": n, "prefix": p, "sku": skus[n % 3], "vendor": vendors[n % 3]}
            for n, p in enumerate(SERIES, start=1)
        ],
    }


_INDEXES_SQL = {
    "sqlite": "SELECT name, sql FROM sqlite_master "
    "WHERE type = 'index' AND tbl_name = 'numbers' AND sql IS NOT NULL",
    "postgresql": "SELECT indexname, indexdef FROM pg_indexes "
    "WHERE schemaname = current_schema() AND tablename = 'numbers' AND indexname NOT IN "
    "(SELECT conname FROM pg_constraint WHERE conrelid = 'numbers'::regclass)",
}


_RECOUNT_SQL = """
INSERT INTO number_state_counts (organization_id, state, slot, count)
SELECT organization_id, state, 0, count(*) FROM numbers GROUP BY organization_id, state
"""

_RECOUNT_SERIES_SQL = """
INSERT INTO number_series_counts (organization_id, series_id, slot, allocated, unused)
SELECT organization_id, series_id, 0, sum(CASE WHEN state <> 'DELETED' THEN 1 ELSE 0 END),
       sum(CASE WHEN state = 'AVAILABLE' THEN 1 ELSE 0 END)
FROM numbers WHERE series_id IS NOT NULL GROUP BY organization_id, series_id
"""

_ORPHANS_SQL = """
SELECT count(*) FROM numbers
LEFT JOIN organizations AS pool ON pool.id = numbers.organization_id
LEFT JOIN organizations AS owner ON owner.id = numbers.owner_id
LEFT JOIN organizations AS holder ON holder.id = numbers.reserved_for_id
LEFT JOIN series ON series.id = numbers.series_id
WHERE pool.id IS NULL OR series.id IS NULL
   OR (numbers.owner_id IS NOT NULL AND owner.id IS NULL)
   OR (numbers.reserved_for_id IS NOT NULL AND holder.id IS NULL)
"""


def _stride(blocks: int) -> int:
    """A multiplier coprime to `blocks`, so block b goes to (b * stride) % blocks once."""
    import math

    stride = max(1, int(blocks * 0.618))
    while math.gcd(stride, blocks) != 1:
        stride += 1
    return stride


def _e164(size: Size, g: int) -> str:
    """The number the builder makes for position g (0 <= g < size.numbers)."""
    series, suffix = divmod(g, size.per_series)
    return f"{SERIES[series]}{suffix:06d}"


def _organization_rows(count: int, now: datetime) -> list[dict[str, Any]]:
    """Ids 2..count below the root (id 1): ~1% partners, ~9% customers, the rest departments."""
    from models import OrganizationKind
    from models.organizations import path_segment

    partners = max(1, round(count / 100))
    customers = max(1, round(count * 0.09))
    departments = count - 1 - partners - customers
    paths = {1: "/" + path_segment(1)}
    rows = []
    next_id = 2
    levels = (
        (OrganizationKind.PARTNER, partners),
        (OrganizationKind.CUSTOMER, customers),
        (OrganizationKind.DEPARTMENT, departments),
    )
    parents = [1]
    for depth, (kind, how_many) in enumerate(levels, start=1):
        made = []
        for k in range(how_many):
            parent = parents[k % len(parents)]
            paths[next_id] = paths[parent] + path_segment(next_id)
            rows.append(
                {
                    "id": next_id,
                    "uuid": uuid.uuid4(),
                    "name": f"{kind.value.title()} {next_id}",
                    "kind": kind,
                    "parent_id": parent,
                    "path": paths[next_id],
                    "depth": depth,
                    "created_at": now,
                }
            )
            made.append(next_id)
            next_id += 1
        parents = made
    return rows


@dataclass
class Built:
    token: str
    seconds: dict[str, float]


async def _recount_tabs(session: Any) -> None:
    """The per-pool quick-filter counters, whose triggers were off with the rest."""
    import sqlalchemy as sa

    from domain import quick_filters
    from models import Number, QuickFilter
    from models.numbers import NumberQuickFilterCount

    for tab in QuickFilter:
        counted = (
            sa.select(Number.organization_id, sa.literal(tab.value), sa.literal(0), sa.func.count())
            .where(quick_filters.condition(tab))
            .group_by(Number.organization_id)
        )
        columns = ["organization_id", "quick_filter", "slot", "count"]
        await session.execute(sa.insert(NumberQuickFilterCount).from_select(columns, counted))


async def _build(url: str, size: Size, shape: Shape) -> Built:
    import sqlalchemy as sa

    from domain import organizations, tokens
    from domain.clock import SystemClock
    from models import Organization, Role, Series
    from models.database import Database

    seconds: dict[str, float] = {}
    db = Database(url)
    dialect = db.engine.dialect.name
    clock = SystemClock()
    start = time.perf_counter()
    async with db.write() as session:
        root, _ = await organizations.ensure_root(session, "Provider", clock)
        assert root.id == 1, "the bench needs a fresh database"
        now = clock.now()
        await session.execute(
            sa.insert(Series),
            [
                {
                    "id": n,
                    "uuid": uuid.uuid4(),
                    "name": f"SG {prefix}",
                    "prefix": prefix,
                    "country": "SG",
                    "created_at": now,
                }
                for n, prefix in enumerate(SERIES, start=1)
            ],
        )
        await session.execute(sa.insert(Organization), _organization_rows(size.organizations, now))
        viewer = await session.get(Organization, shape.viewer)
        assert viewer is not None
        token = await tokens.issue(session, viewer, "bench", Role.ADMIN, clock)
        if dialect == "postgresql":
            for table in ("organizations", "series"):
                await session.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
    seconds["organizations"] = time.perf_counter() - start

    start = time.perf_counter()
    blocks = size.numbers // BLOCK
    sql = _NUMBERS_SQL.format(block=BLOCK, **_DIALECT_SQL[dialect])
    ts_type = "TIMESTAMP WITH TIME ZONE" if dialect == "postgresql" else "DATETIME"
    async with db.write() as session:
        if dialect == "sqlite":
            # Index pages stay in memory while the million rows go in.
            await session.execute(sa.text("PRAGMA cache_size = -1000000"))
        for ddl in _LOOKUP_DDL:
            await session.execute(sa.text(ddl.format(ts=ts_type)))
        for table, rows in _lookup_rows(dialect, shape).items():
            columns = ", ".join(rows[0])
            values = ", ".join(f":{c}" for c in rows[0])
            await session.execute(
                sa.text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), rows
            )
        # The migration's secondary indexes are dropped for the load and made again
        # from their own definitions: building an index once beats a million updates.
        indexes = (await session.execute(sa.text(_INDEXES_SQL[dialect]))).all()
        for name, _definition in indexes:
            await session.execute(sa.text(f'DROP INDEX "{name}"'))
        if dialect == "postgresql":
            # Foreign-key triggers would take 2/3 of the load; the rows are consistent
            # by construction, and checked below.
            await session.execute(sa.text("SET LOCAL session_replication_role = replica"))
        await session.execute(
            sa.text(sql),
            {
                "count": size.numbers,
                "blocks": blocks,
                "stride": _stride(blocks),
                "per_series": size.per_series,
                "others": size.organizations - 1,
                "pool": shape.pool,
                "pool_share": shape.pool_share,
            },
        )
        if dialect == "postgresql":
            # The triggers that keep the counters were off with the rest.
            await session.execute(sa.text(_RECOUNT_SQL))
            await session.execute(sa.text(_RECOUNT_SERIES_SQL))
            await _recount_tabs(session)
        seconds["numbers"] = time.perf_counter() - start
        start = time.perf_counter()
        if dialect == "postgresql":
            await session.execute(sa.text("SET LOCAL maintenance_work_mem = '256MB'"))
        for _name, definition in indexes:
            await session.execute(sa.text(definition))
        for table in _lookup_rows(dialect, shape):
            await session.execute(sa.text(f"DROP TABLE {table}"))
    seconds["indexes"] = time.perf_counter() - start

    start = time.perf_counter()
    if dialect == "sqlite":
        async with db.engine.connect() as conn:
            await conn.exec_driver_sql("INSERT INTO numbers_fts(numbers_fts) VALUES ('optimize')")
            await conn.commit()
            await conn.exec_driver_sql("ANALYZE")
            await conn.commit()
            await conn.exec_driver_sql("PRAGMA optimize")
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            await conn.commit()
    else:
        autocommit = db.engine.execution_options(isolation_level="AUTOCOMMIT")
        async with autocommit.connect() as conn:
            await conn.exec_driver_sql("VACUUM (ANALYZE)")
    seconds["analyze"] = time.perf_counter() - start
    async with db.engine.connect() as conn:
        count = (await conn.exec_driver_sql("SELECT count(*) FROM numbers")).scalar_one()
        orphans = (await conn.exec_driver_sql(_ORPHANS_SQL)).scalar_one()
        counted = (
            await conn.exec_driver_sql("SELECT sum(count) FROM number_state_counts")
        ).scalar_one()
        fts = None
        if dialect == "sqlite":
            fts = (
                await conn.exec_driver_sql(
                    "SELECT count(*) FROM numbers_fts WHERE numbers_fts MATCH '\"+6561\"'"
                )
            ).scalar_one()
    await db.dispose()
    if count != size.numbers or orphans:
        raise RuntimeError(f"built {count} numbers ({orphans} orphans), expected {size.numbers}")
    if counted != count:
        raise RuntimeError(f"the per-state counters hold {counted} numbers, not {count}")
    if fts is not None and fts != size.per_series:
        raise RuntimeError(f"the FTS5 table finds {fts} numbers with +6561, not {size.per_series}")
    return Built(token, seconds)


# --- The measures --------------------------------------------------------------------


def _measures(size: Size, deep_cursor: str) -> list[Measure]:
    step = size.numbers // 1000
    bulk = [_e164(size, i * step + (i * 7) % step) for i in range(1000)]
    page = f"query($after: String) {{ numbers(first: 50, after: $after) {{ {NODE} "
    page += "pageInfo { endCursor hasNextPage } } }"
    return [
        Measure(
            "prefix",
            'prefix "+6561" AVAILABLE SMS, first 50',
            "≤ 15 ms, ≤ 3x floor",
            '{ numbers(filter: {pattern: "+6561", states: [AVAILABLE], capabilities: [SMS]}, '
            f"first: 50) {{ {NODE} }} }}",
        ),
        Measure(
            "contains",
            'contains "*4567*", first 50',
            "≤ 50 ms",
            f'{{ numbers(filter: {{pattern: "*4567*"}}, first: 50) {{ {NODE} }} }}',
        ),
        Measure(
            "counts",
            "numberCounts, whole inventory",
            "≤ 100 ms",
            "{ numberCounts { state count } }",
            first=0,
            runs_share=0.15,
        ),
        Measure(
            "tabs",
            "quickFilterCounts, whole inventory (all eight tabs)",
            "≤ 20 ms",
            "{ quickFilterCounts { quickFilter count } }",
            first=0,
            runs_share=0.15,
            # The floor answers the API's captured JSON (its rows are not numberCounts').
            view=True,
        ),
        Measure(
            "bulk",
            "bulk input of 1,000 numbers, first 500",
            "≤ 35 ms",
            "query($numbers: [String!]!) { numbers(filter: {numbers: $numbers}, first: 500) "
            f"{{ {NODE} }} }}",
            {"numbers": bulk},
            first=500,
            runs_share=0.25,
        ),
        Measure(
            "org",
            "nested org view: counts, allocations, first 20 numbers, children",
            "≤ 3x floor",
            ORG_VIEW,
            first=0,
            runs_share=0.5,
            view=True,
        ),
        Measure("page1", "page 1, first 50", "(reference)", page, {"after": None}, page_info=True),
        Measure(
            "deep",
            f"page {size.depth:,} deep through cursors",
            "page 1 ± 20%",
            page,
            {"after": deep_cursor},
            page_info=True,
        ),
    ]


async def _deep_cursor(url: str, size: Size, shape: Shape) -> str:
    """The endCursor of page depth - 1 of the numbers the bench's token sees: where page
    `depth` starts, straight from SQL."""
    from domain.pagination import encode_cursor
    from models.database import Database

    db = Database(url)
    async with db.engine.connect() as conn:
        e164 = (
            await conn.exec_driver_sql(
                "SELECT e164 FROM numbers WHERE organization_id IN (SELECT id FROM organizations"
                " WHERE path LIKE (SELECT path FROM organizations WHERE id = "
                f"{shape.viewer}) || '%') "
                f"ORDER BY e164 LIMIT 1 OFFSET {(size.depth - 1) * 50 - 1}"
            )
        ).scalar_one()
    await db.dispose()
    return encode_cursor(e164)


# --- Capturing the API's SQL ----------------------------------------------------------


@dataclass
class Capture:
    statements: list[tuple[str, Any]]
    response: Any


_MARK_USED = "UPDATE tokens SET last_used_at"


async def _capture(url: str, token: str, measures: Sequence[Measure]) -> dict[str, Capture]:
    """Run each request through the real app in process; keep the SQL of the second run."""
    import httpx
    import sqlalchemy as sa

    from models.database import Database
    from settings import Settings
    from web.app import create_app

    db = Database(url)
    seen: list[tuple[str, Any]] = []

    def _record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        # Neither BEGIN nor the token's lastUsedAt, written once a minute: a capture that
        # straddles a minute would see it (it failed CI so).
        if statement.strip().upper() != "BEGIN" and not statement.startswith(_MARK_USED):
            seen.append((statement, parameters))

    for engine in db.engines:
        sa.event.listen(engine.sync_engine, "before_cursor_execute", _record)

    settings: Any = Settings
    app = create_app(settings(_env_file=None, database_url=url), db=db)
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    captures = {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for measure in measures:
            for _ in range(2):
                seen.clear()
                response = await client.post("/graphql", content=measure.body(), headers=headers)
            payload = response.json()
            if response.status_code != 200 or "errors" in payload:
                raise RuntimeError(f"{measure.key}: {response.status_code} {response.text[:500]}")
            captures[measure.key] = Capture(list(seen), _without_cost(payload))
    await db.dispose()
    return captures


def _without_cost(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer but its `extensions.cost`, which changes with every request."""
    return {key: value for key, value in answer.items() if key != "extensions"}


# --- The floor --------------------------------------------------------------------------


def _floor_json(measure: dict[str, Any], rows: Sequence[Any]) -> dict[str, Any]:
    from domain.pagination import encode_cursor

    if measure["first"] == 0:
        from models import NumberState

        # Every state the schema has, as numberCounts answers, whether the bench made any.
        counts = dict.fromkeys((state.value for state in NumberState), 0)
        for state, n in rows:
            counts[state] = n
        return {"data": {"numberCounts": [{"state": s, "count": n} for s, n in counts.items()]}}
    first = measure["first"]
    edges = [
        {
            "node": {
                "e164": row.e164,
                "state": row.state,
                "capabilities": [name for name, flag in CAPABILITIES if row.capabilities & flag],
                "sku": row.sku,
            }
        }
        for row in rows[:first]
    ]
    connection: dict[str, Any] = {"edges": edges}
    if measure["page_info"]:
        page = rows[:first]
        connection["pageInfo"] = {
            "endCursor": encode_cursor(page[-1].e164) if page else None,
            "hasNextPage": len(rows) > first,
        }
    return {"data": {"numbers": connection}}


def floor(port: int, captures_file: str) -> None:
    """Serve the captured SQL: token lookup and search, replayed through the same driver."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    from models.database import Database

    measures: dict[str, dict[str, Any]] = pickle.loads(Path(captures_file).read_bytes())
    db = Database(os.environ["NUMBRA_DATABASE_URL"])

    async def endpoint(request: Request) -> Response:
        measure = measures[request.path_params["key"]]
        json.loads(await request.body())
        # The engine the API's reads use (on SQLite, the inline connection).
        async with db.read_engine.connect() as conn:
            rows: Sequence[Any] = []
            for statement, parameters in measure["statements"]:
                rows = (await conn.exec_driver_sql(statement, parameters)).all()
        answer = measure["answer"] or _floor_json(measure, rows)
        return Response(json.dumps(answer), media_type="application/json")

    async def healthz(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[Route("/healthz", healthz), Route("/floor/{key}", endpoint, methods=["POST"])]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


# --- Processes --------------------------------------------------------------------------


def _free_ports(count: int) -> list[int]:
    """Distinct free ports: all bound at once, so the system cannot hand one out twice."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


@dataclass
class Server:
    name: str
    port: int
    path: str  # "/graphql", or "/floor/" followed by the measure's key
    process: subprocess.Popen[bytes]
    log: Path

    def path_for(self, measure: Measure) -> str:
        return self.path + measure.key if self.path.endswith("/") else self.path


def _start(
    name: str, command: list[str], env: dict[str, str], workdir: Path, port: int, pin: bool = True
) -> Server:
    log = workdir / f"{name}.log"
    command = [*command, "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            pinned(SERVER_CPU, command) if pin else command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    path = "/floor/" if name == "floor" else "/graphql"
    return Server(name, port, path, process, log)


def _wait_until_up(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.process.poll() is None:
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
        time.sleep(0.05)
    raise RuntimeError(f"{server.name} did not start:\n{server.log.read_text(errors='replace')}")


def _serve_command() -> list[str]:
    numbra = Path(sys.executable).with_name("numbra")
    return (
        [str(numbra), "serve"]
        if numbra.exists()
        else [sys.executable, "-c", "from cli.main import main; main()", "serve"]
    )


def _stop(started: Sequence[Server]) -> None:
    for server in started:
        server.process.terminate()
    for server in started:
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def _workers_throughput(
    url: str, workdir: Path, measure: Measure, token: str, size: Size, workers: int
) -> dict[str, Any]:
    """`numbra serve --workers N`, not pinned (its workers share both CPUs with the
    client and the database): throughput of `measure`."""
    env = os.environ | {"NUMBRA_DATABASE_URL": url, **UNLIMITED_BUDGET}
    (port,) = _free_ports(1)
    name = f"workers{workers}"
    server = _start(
        name, [*_serve_command(), "--workers", str(workers)], env, workdir, port, pin=False
    )
    try:
        _wait_until_up(server)
        # Every worker answers once before timing (each has its own caches).
        probe = Client(server, token)
        for _ in range(4 * workers):
            probe.ask(measure)
            probe.conn.close()
        found: dict[str, Any] = _throughput((server,), measure, token, size)[name]
        return found
    finally:
        _stop([server])


@contextlib.contextmanager
def _servers(url: str, captures_file: Path, workdir: Path) -> Iterator[tuple[Server, Server]]:
    env = os.environ | {"NUMBRA_DATABASE_URL": url, **UNLIMITED_BUDGET}
    api_command = _serve_command()
    floor_command = [sys.executable, "-m", "tests.perf.search", "floor", str(captures_file)]
    started: list[Server] = []
    try:
        api_port, floor_port = _free_ports(2)
        started.append(_start("api", api_command, env, workdir, api_port))
        started.append(_start("floor", floor_command, env, workdir, floor_port))
        for server in started:
            _wait_until_up(server)
        for server in started:
            if server.process.poll() is not None:  # its port was taken after all
                raise RuntimeError(f"{server.name} stopped:\n{server.log.read_text()}")
        yield started[0], started[1]
    finally:
        _stop(started)


# --- Timing --------------------------------------------------------------------------


class Client:
    """One keep-alive connection per server, requests one at a time."""

    def __init__(self, server: Server, token: str) -> None:
        self.server = server
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        # No token for the peer: PostGraphile refuses a bearer token it has no secret for.
        self.headers = {"content-type": "application/json"}
        if token:
            self.headers["authorization"] = f"Bearer {token}"

    def post(self, path: str, body: bytes) -> tuple[float, bytes]:
        try:
            return self._post(path, body)
        except ConnectionError:
            # uvicorn closes connections idle for 5 s: connect again, untimed.
            self.conn.close()
            self.conn.connect()
            return self._post(path, body)

    def _post(self, path: str, body: bytes) -> tuple[float, bytes]:
        start = time.perf_counter()
        self.conn.request("POST", path, body, self.headers)
        response = self.conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - start
        if response.status != 200:
            log = self.server.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(
                f"{self.server.name} {path}: {response.status} {data[:500]!r}\n{log}"
            )
        return elapsed, data

    def ask(self, measure: Measure) -> tuple[float, Any]:
        elapsed, data = self.post(self.server.path_for(measure), measure.body())
        return elapsed, json.loads(data)


@dataclass
class Timings:
    api: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    api_cpu: float = 0.0  # CPU seconds the server process spent, all requests together
    floor_cpu: float = 0.0


def _timed(client: Client, path: str, body: bytes) -> tuple[float, float]:
    """Latency, and the server's CPU time meanwhile (read outside the timed part)."""
    before = _cpu_seconds(client.server.process.pid)
    elapsed = client.post(path, body)[0]
    return elapsed, _cpu_seconds(client.server.process.pid) - before


def _latencies(
    api: Client, floor_client: Client, group: Sequence[Measure], runs: int
) -> dict[str, Timings]:
    """The group's measures interleaved, API and floor in turn, a few untimed runs first."""
    for _ in range(max(2, runs // 10)):
        for measure in group:
            api.ask(measure)
            floor_client.ask(measure)
    times = {m.key: Timings() for m in group}
    bodies = {m.key: m.body() for m in group}
    for run in range(runs):
        for measure in group:
            found = times[measure.key]
            body = bodies[measure.key]
            for who in (floor_client, api) if run % 2 else (api, floor_client):
                elapsed, cpu = _timed(who, who.server.path_for(measure), body)
                if who is api:
                    found.api.append(elapsed)
                    found.api_cpu += cpu
                else:
                    found.floor.append(elapsed)
                    found.floor_cpu += cpu
    return times


def _walk(api: Client, measure: Measure, depth: int) -> tuple[str, float]:
    """Follow endCursor from page 1 to page `depth - 1`: the cursor page `depth` starts at."""
    after = None
    start = time.perf_counter()
    for _ in range(depth - 1):
        step = Measure(measure.key, measure.title, measure.target, measure.query, {"after": after})
        _, payload = api.ask(step)
        info = payload["data"]["numbers"]["pageInfo"]
        if not info["hasNextPage"]:
            raise RuntimeError("the inventory ended before the walk did")
        after = info["endCursor"]
    assert after is not None
    return after, (time.perf_counter() - start) / (depth - 1)


def _cpu_seconds(pid: int) -> float:
    """User and system time of a process, all its threads included (Linux only)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far: of each named process, of PostgreSQL's, and of both CPUs busy."""
    found = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    found[f"postgres {entry.name}"] = _cpu_seconds(int(entry.name))
    found["busy"] = 0.0
    with contextlib.suppress(OSError):
        ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        idle = ticks[3] + ticks[4]  # idle and iowait
        found["busy"] = (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")
    return found


def _cpu_note(before: dict[str, float], after: dict[str, float], wall: float) -> str:
    """Who used the CPUs while latencies were timed, as shares of one CPU."""
    used: dict[str, float] = {}
    for name, seconds in after.items():
        # PostgreSQL backends come and go: one that started meanwhile counts whole.
        label = "PostgreSQL" if name.startswith("postgres ") else name
        used[label] = used.get(label, 0.0) + (seconds - before.get(name, 0.0)) / wall
    busy = used.pop("busy")
    parts = ", ".join(f"{name} {share:.0%}" for name, share in used.items())
    cpus = os.cpu_count() or 1
    return (
        f"CPU while timing latencies ({cpus} CPUs = {cpus * 100}%): busy {busy:.0%}; {parts}; "
        f"everything else {max(0.0, busy - sum(used.values())):.0%}."
    )


# --- Throughput: the client process ---------------------------------------------------


async def _drive_one(spec: dict[str, Any], seconds: float) -> tuple[int, int, float]:
    bearer = f"authorization: Bearer {spec['token']}\r\n" if spec["token"] else ""
    request = (
        f"POST {spec['path']} HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        f"{bearer}content-type: application/json\r\n"
        f"content-length: {len(spec['body'].encode())}\r\n\r\n{spec['body']}"
    ).encode()
    start = time.perf_counter()
    deadline = start + seconds

    async def worker() -> tuple[int, int]:
        reader, writer = await asyncio.open_connection("127.0.0.1", spec["port"])
        ok = failed = 0
        try:
            while time.perf_counter() < deadline:
                writer.write(request)
                head = (await reader.readuntil(b"\r\n\r\n")).lower()
                length = int(head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
                await reader.readexactly(length)
                if head[9:12] == b"200":
                    ok += 1
                else:
                    failed += 1
        finally:
            writer.close()
        return ok, failed

    counts = await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return sum(c[0] for c in counts), sum(c[1] for c in counts), time.perf_counter() - start


async def _drive(spec: dict[str, Any]) -> dict[str, Any]:
    results = {}
    for target in spec["targets"]:
        await _drive_one(target, spec["warmup"])
        cpu = time.process_time()
        ok, failed, wall = await _drive_one(target, spec["seconds"])
        results[target["name"]] = {
            "rps": ok / wall,
            "failed": failed,
            "client_cpu": (time.process_time() - cpu) / wall,
        }
    return results


def client(spec_json: str) -> None:
    drive_client(_drive, spec_json)


def _throughput(
    servers: Sequence[Server], measure: Measure, token: str, size: Size
) -> dict[str, Any]:
    spec = {
        "seconds": size.seconds,
        "warmup": size.warmup,
        "targets": [
            {
                "name": s.name,
                "port": s.port,
                "path": s.path_for(measure),
                "token": token,
                "body": measure.body().decode(),
            }
            for s in servers
        ],
    }
    command = [sys.executable, "-m", "tests.perf.search", "client", json.dumps(spec)]
    done = subprocess.run(
        pinned(CLIENT_CPU, command),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60 + len(servers) * (size.seconds + size.warmup + 5),
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the throughput client failed ({done.returncode}):\n{done.stderr}")
    results: dict[str, Any] = json.loads(done.stdout)
    return results


# --- Plans ---------------------------------------------------------------------------


async def _plans(url: str, captures: dict[str, Capture], measures: Sequence[Measure]) -> list[str]:
    """EXPLAIN QUERY PLAN (SQLite) or EXPLAIN ANALYZE (PostgreSQL) of each search statement."""
    from models.database import Database

    db = Database(url)
    lines = []
    explain = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
    async with db.engine.connect() as conn:
        for measure in measures:
            statement, parameters = captures[measure.key].statements[-1]
            shown = " ".join(statement.split())
            if len(shown) > 400:
                shown = shown[:300] + " … " + shown[-100:]
            lines += [f"-- {measure.title}", f"   {shown}"]
            rows: list[Sequence[Any]] = [
                tuple(row) for row in await conn.exec_driver_sql(explain + statement, parameters)
            ]
            if db.is_sqlite:  # id, parent, unused, detail
                found = [f"{row[0]:>3} {row[1]:>3} {row[3]}" for row in rows]
            else:
                found = [str(row[0]) for row in rows]
            lines += [f"   {line[:150]}{' …' if len(line) > 150 else ''}" for line in found]
    await db.dispose()
    return lines


# --- One database ----------------------------------------------------------------------


@dataclass
class Row:
    measure: str
    target: str
    api: str
    floor: str
    ratio: str
    verdict: str
    cpu: str = ""


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _one_database(label: str, url: str, size: Size, shape: Shape, workdir: Path) -> list[str]:
    from migrations import upgrade

    out = []
    upgrade(url)
    built = asyncio.run(_build(url, size, shape))
    total = sum(built.seconds.values())
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in built.seconds.items())
    out.append(
        f"{label}, {shape.title}: {size.numbers:,} numbers, {size.organizations:,} "
        f"organizations, built in {total:.1f} s ({parts})"
    )
    deep = asyncio.run(_deep_cursor(url, size, shape))
    measures = _measures(size, deep)
    captures = asyncio.run(_capture(url, built.token, measures))
    for measure in measures:
        if not measure.view and len(captures[measure.key].statements) != 2:
            raise RuntimeError(f"{measure.key}: expected 2 statements, got {captures[measure.key]}")
    captures_file = workdir / f"captures-{label}-{shape.key}.pickle"
    captures_file.write_bytes(
        pickle.dumps(
            {
                m.key: {
                    "statements": captures[m.key].statements,
                    "first": m.first,
                    "page_info": m.page_info,
                    "answer": captures[m.key].response if m.view else None,
                }
                for m in measures
            }
        )
    )
    by_key = {m.key: m for m in measures}
    results: dict[str, Timings] = {}
    with _servers(url, captures_file, workdir) as (api_server, floor_server):
        api = Client(api_server, built.token)
        floor_client = Client(floor_server, built.token)
        for measure in measures:
            expected = captures[measure.key].response
            for who in (api, floor_client):
                answer = _without_cost(who.ask(measure)[1])
                if answer != expected:
                    raise RuntimeError(
                        f"{measure.key}: {who.server.name} answered differently:\n"
                        f"{json.dumps(answer)[:400]}\nexpected\n{json.dumps(expected)[:400]}"
                    )
        walked, per_page = _walk(api, by_key["page1"], size.depth)
        if walked != deep:
            raise RuntimeError("walking the cursors reached a different page than SQL says")
        pids = {
            "API": api_server.process.pid,
            "floor": floor_server.process.pid,
            "bench client": os.getpid(),
        }
        before, wall = _cpu_snapshot(pids), time.perf_counter()
        with this_process_on(CLIENT_CPU):
            # Page 1 and the deep page are compared with each other: timed in turn.
            groups = [[m] for m in measures if m.key not in ("page1", "deep")]
            groups.append([by_key["page1"], by_key["deep"]])
            for group in groups:
                runs = max(5, round(size.runs * group[0].runs_share))
                results |= _latencies(api, floor_client, group, runs)
        cpu_note = _cpu_note(before, _cpu_snapshot(pids), time.perf_counter() - wall)
        api.conn.close()
        rates = _throughput((api_server, floor_server), by_key["prefix"], built.token, size)
        peer_rows = (
            _peer(url, workdir, floor_client, captures["prefix"].response, results, size, rates)
            if label == "PostgreSQL"
            else []
        )
        floor_client.conn.close()
    workers_rate = None
    if label == "PostgreSQL":
        workers_rate = _workers_throughput(
            url, workdir, by_key["prefix"], built.token, size, WORKERS
        )

    rows = []
    p50 = {k: (statistics.median(t.api), statistics.median(t.floor)) for k, t in results.items()}
    for measure in measures:
        api_p50, floor_p50 = p50[measure.key]
        timings = results[measure.key]
        cpu = (
            f"{_ms(timings.api_cpu / len(timings.api))} / "
            f"{_ms(timings.floor_cpu / len(timings.floor))}"
        )
        ratio = api_p50 / floor_p50
        if measure.key == "prefix":
            ok = api_p50 <= 0.015 and ratio <= 3
        elif measure.key == "contains":
            ok = api_p50 <= 0.050
        elif measure.key == "bulk":
            ok = api_p50 <= 0.035
        elif measure.key == "counts":
            ok = api_p50 <= 0.100
        elif measure.key == "tabs":
            ok = api_p50 <= 0.020
        elif measure.key == "org":
            ok = ratio <= 3
        elif measure.key == "deep":
            ok = 0.8 <= api_p50 / p50["page1"][0] <= 1.2
        else:
            ok = True
        verdict = "ok" if ok else "MISSED"
        if measure.key == "deep":
            verdict += f" ({api_p50 / p50['page1'][0]:.2f}x page 1)"
        rows.append(
            Row(
                measure.title,
                measure.target,
                _ms(api_p50),
                _ms(floor_p50),
                f"{ratio:.1f}x",
                verdict,
                cpu,
            )
        )
    api_rate, floor_rate = rates["api"]["rps"], rates["floor"]["rps"]
    rows.append(
        Row(
            f"throughput, prefix search, {CONCURRENCY} connections",
            "≥ 300 req/s",
            f"{api_rate:,.0f} req/s",
            f"{floor_rate:,.0f} req/s",
            f"{floor_rate / api_rate:.1f}x fewer",
            "ok" if api_rate >= 300 else "MISSED",
        )
    )
    if workers_rate is not None:
        rate = workers_rate["rps"]
        rows.append(
            Row(
                f"throughput, `numbra serve --workers {WORKERS}` (not pinned) vs one process",
                "≥ 1.7x one process",
                f"{rate:,.0f} req/s",
                f"{api_rate:,.0f} req/s",
                f"{rate / api_rate:.2f}x",
                "ok" if rate >= 1.7 * api_rate else "MISSED",
            )
        )
    rows.extend(peer_rows)
    rows.append(Row("import 1,000,000 rows from CSV", "≤ 60 s, RSS ≤ 300 MB", "n/a", "", "", NA))
    rows.append(Row("export 1,000,000 rows", "≤ 30 s, RSS ≤ 300 MB", "n/a", "", "", NA))
    out.append(_table(rows))
    counts = ", ".join(f"{m.key} {max(5, round(size.runs * m.runs_share))}" for m in measures)
    out.append(
        f"Timed requests per measure: {counts}. Cursor walk: {size.depth - 1:,} pages, "
        f"{per_page * 1000:.2f} ms a page. Throughput: {size.seconds:g} s each, client CPU "
        f"api {rates['api']['client_cpu']:.0%}, floor {rates['floor']['client_cpu']:.0%}; "
        f"failed requests: {rates['api']['failed'] + rates['floor']['failed']}."
    )
    out.append(cpu_note)
    # The plans of the full inventory only: CI's tiny one says little.
    plans = asyncio.run(_plans(url, captures, measures)) if size.runs > 50 else []
    return [*out, "", *plans, ""] if plans else [*out, ""]


def _peer(
    url: str,
    workdir: Path,
    floor_client: "Client",
    expected: Any,
    results: dict[str, Timings],
    size: Size,
    rates: dict[str, Any],
) -> list[Row]:
    """PostGraphile on the same database: the prefix page's p50 interleaved with the floor,
    and its throughput, beside Numbra's (tests/perf/peer.py)."""
    from tests.perf import peer

    status = peer.install()
    if status != "installed":
        return [Row("PostGraphile 4, prefix page", "(the peer)", status, "", "", "")]
    measure = Measure("prefix", "PostGraphile", "", peer.PREFIX)
    (port,) = _free_ports(1)
    server = _start("postgraphile", peer.command(url), peer.environment(), workdir, port)
    try:
        peer.wait_until_up(port, server.process, server.log)
        client = Client(server, "")
        same = peer.rows_of(client.ask(measure)[1]) == [
            edge["node"]["e164"] for edge in expected["data"]["numbers"]["edges"]
        ]
        runs = max(5, size.runs)
        timed = _latencies(client, floor_client, [measure], runs)["prefix"]
        client.conn.close()
        rate = _throughput((server,), measure, "", size)["postgraphile"]["rps"]
    finally:
        _stop([server])
    peer_p50, floor_p50 = statistics.median(timed.api), statistics.median(timed.floor)
    numbra = statistics.median(results["prefix"].api) / statistics.median(results["prefix"].floor)
    peer_ratio = peer_p50 / floor_p50
    numbra_rate, floor_rate = rates["api"]["rps"], rates["floor"]["rps"]
    return [
        Row(
            f"PostGraphile 4, prefix page (same rows: {'yes' if same else 'NO'})",
            "Numbra's ratio below the peer's",
            _ms(peer_p50),
            _ms(floor_p50),
            f"{peer_ratio:.1f}x",
            f"Numbra {numbra:.1f}x: " + ("ahead" if numbra < peer_ratio else "BEHIND"),
        ),
        Row(
            f"PostGraphile 4, throughput, {CONCURRENCY} connections",
            "Numbra's share of the floor above the peer's",
            f"{rate:,.0f} req/s",
            f"{floor_rate:,.0f} req/s",
            f"{floor_rate / rate:.1f}x fewer",
            f"Numbra {numbra_rate:,.0f} req/s: " + ("ahead" if numbra_rate > rate else "BEHIND"),
        ),
    ]


def _table(rows: Sequence[Row]) -> str:
    header = Row("measure", "target", "API p50", "floor p50", "ratio", "", "CPU/req API / floor")
    cells = [
        [r.measure, r.target, r.api, r.floor, r.ratio, r.cpu, r.verdict] for r in [header, *rows]
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = []
    for index, row in enumerate(cells):
        lines.append(
            "  ".join(
                cell.ljust(w) if i in (0, 1, 6) else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _calibration() -> float:
    """CPU seconds for a plain Python loop: how fast this machine is at the moment."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.process_time() - start)
    return best


def run(
    quick: bool = False,
    numbers: int | None = None,
    sqlite_only: bool = False,
    shapes: Sequence[str] = SHAPE_KEYS,
) -> None:
    from tests.perf import PG_ADMIN, pg_reachable
    from tests.support.databases import scratch_database

    size = Size.for_mode(quick, numbers)
    pinning = (
        f"servers on CPU {SERVER_CPU}, clients on CPU {CLIENT_CPU}"
        if can_pin()
        else "NOT pinned (taskset missing or fewer than 2 CPUs)"
    )
    print(
        f"p50 of sequential keep-alive requests over HTTP; API = `numbra serve`, floor = the "
        f"same SQL replayed through the same driver by a bare Starlette app; {pinning}. "
        f"This CPU: {_calibration() * 1000:.0f} ms of CPU for a 1,000,000-step Python loop.",
        flush=True,
    )
    chosen = [shape for shape in SHAPES if shape.key in shapes]
    with tempfile.TemporaryDirectory(prefix="numbra-bench-search-") as tmp:
        workdir = Path(tmp)
        for shape in chosen:
            url = f"sqlite+aiosqlite:///{workdir / f'search-{shape.key}.db'}"
            for line in _one_database("SQLite", url, size, shape, workdir):
                print(line, flush=True)
            Path(url.removeprefix("sqlite+aiosqlite:///")).unlink()
        if sqlite_only or not pg_reachable():
            return
        for shape in chosen:
            with scratch_database(PG_ADMIN, "numbra_bench") as url:
                for line in _one_database("PostgreSQL", url, size, shape, workdir):
                    print(line, flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.search", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tiny inventory, a few runs")
    parser.add_argument("--numbers", type=int, help="numbers in the inventory")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument(
        "--shape",
        nargs="+",
        choices=SHAPE_KEYS,
        default=list(SHAPE_KEYS),
        help="the inventories to measure (default: all)",
    )
    commands = parser.add_subparsers(dest="command")
    floor_parser = commands.add_parser("floor", help="(internal) serve the floor")
    floor_parser.add_argument("captures")
    floor_parser.add_argument("--port", type=int, required=True)
    client_parser = commands.add_parser("client", help="(internal) drive the servers")
    client_parser.add_argument("spec")
    args = parser.parse_args(argv)
    if args.command == "floor":
        floor(args.port, args.captures)
    elif args.command == "client":
        client(args.spec)
    else:
        run(quick=args.quick, numbers=args.numbers, sqlite_only=args.sqlite_only, shapes=args.shape)


if __name__ == "__main__":
    main()
