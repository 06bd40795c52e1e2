"""numberEvents on 1.5 million events: the first page and a page 1,000 deep, per viewer.

150,000 numbers with ten events each, spread over 40 customers under 4 partners, the
events of every pool interleaved as a busy inventory's are. Each figure is the p50 of
one GraphQL request through the ASGI app (the page of 50 events with their numbers
and pools), for the provider (every event), a partner (a quarter of them) and a
customer (one in forty), unfiltered and filtered by action; the first and the deep page
are asked in turn, so both meet the same load. Target (issue 16): first page p50 at most
15 ms, and the page 1,000 deep within 20 % of it, on both databases.
"""

import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from domain import tokens
from domain.clock import SystemClock
from domain.organizations import ensure_root
from domain.pagination import encode_cursor
from migrations import upgrade
from models import Number, NumberEvent, Organization, OrganizationKind, Role
from models.base import UTCDateTime
from models.database import Database
from settings import Settings
from tests.perf import PG_ADMIN, pg_reachable
from tests.support.databases import scratch_database
from tests.support.world import new_organization

PARTNERS = 4
CUSTOMERS_PER_PARTNER = 10
CUSTOMERS = PARTNERS * CUSTOMERS_PER_PARTNER
EVENTS_PER_NUMBER = 10
PAGE = 50
DEEP = 1_000
QUERY = """
query ($after: String, $filter: NumberEventFilter) {
  numberEvents(first: 50, after: $after, filter: $filter) {
    edges { node { at action actor e164 organization { name } } }
    pageInfo { endCursor hasNextPage }
  }
}"""

BASELINE = "{ viewer { tokenName } }"
_NUMBERS_SQL = {
    "sqlite": (
        "WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < :last) "
        "INSERT INTO numbers (e164, state, country, sku, vendor, capabilities, golden, "
        "ported_in, organization_id, state_changed_at) "
        "SELECT '+656' || printf('%07d', n), 'AVAILABLE', 'SG', 'bench', 'bench', 1, 0, 0, "
        ":first_customer + n % :customers, :now FROM seq"
    ),
    "postgresql": (
        "INSERT INTO numbers (e164, state, country, sku, vendor, capabilities, golden, "
        "ported_in, organization_id, state_changed_at) "
        "SELECT '+656' || lpad(n::text, 7, '0'), 'AVAILABLE', 'SG', 'bench', 'bench', 1, "
        "false, false, :first_customer + n % :customers, :now "
        "FROM generate_series(0, :last) AS n"
    ),
}


@dataclass(frozen=True)
class Viewer:
    label: str
    token: str
    # The pools it sees: None for every one.
    path: str | None


async def _build(url: str, numbers: int) -> list[Viewer]:
    db = Database(url)
    clock = SystemClock()
    now = clock.now()
    async with db.write() as session:
        root, _ = await ensure_root(session, "Provider", clock)
    partners = [
        await new_organization(db, clock, f"P{p}", OrganizationKind.PARTNER, root)
        for p in range(PARTNERS)
    ]
    customers = [
        await new_organization(db, clock, f"C{p}.{c}", OrganizationKind.CUSTOMER, partner)
        for c in range(CUSTOMERS_PER_PARTNER)
        for p, partner in enumerate(partners)
    ]
    ids = sorted(c.id for c in customers)
    assert ids == list(range(ids[0], ids[0] + len(ids))), "customers' ids are one run"
    async with db.write() as session:
        await session.execute(
            sa.text(_NUMBERS_SQL[db.url.get_backend_name()]),
            {"last": numbers - 1, "first_customer": ids[0], "customers": len(ids), "now": now},
        )
    for k in range(EVENTS_PER_NUMBER):
        columns = ["number_id", "organization_id", "at", "action", "to_state", "actor"]
        rows = sa.select(
            Number.id,
            Number.organization_id,
            sa.literal(datetime(2026, 1, 1, tzinfo=UTC), UTCDateTime()),
            # Every action in every stretch of ids, as a working inventory's are.
            sa.literal("ACTION")
            + sa.cast((Number.id // CUSTOMERS + k) % EVENTS_PER_NUMBER, sa.String),
            sa.literal("AVAILABLE"),
            sa.literal(f"actor {k % 3}"),
        ).order_by(Number.id)
        async with db.write() as session:
            await session.execute(sa.insert(NumberEvent).from_select(columns, rows))
    async with db.write() as session:
        await session.execute(sa.text("ANALYZE"))
        viewers = []
        for label, org in (
            ("provider", root),
            ("partner", partners[0]),
            ("customer", customers[0]),
        ):
            token = await tokens.issue(session, org, f"bench {label}", Role.VIEWER, clock)
            viewers.append(Viewer(label, token, None if org is root else org.path))
    await db.dispose()
    return viewers


async def _deep_cursor(db: Database, viewer: Viewer, action: str | None) -> tuple[int, str]:
    """The cursor of the page 1,000 deep, or of the last full page of a smaller scope."""
    query = sa.select(NumberEvent.id)
    if viewer.path is not None:
        pools = sa.select(Organization.id).where(Organization.path.startswith(viewer.path))
        query = query.where(NumberEvent.organization_id.in_(pools))
    if action is not None:
        query = query.where(NumberEvent.action == action)
    async with db.read() as session:
        total = await session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
        pages = min(DEEP, (total or 0) // PAGE - 1)
        ordered = query.order_by(NumberEvent.id.desc()).offset(PAGE * pages - 1).limit(1)
        last = await session.scalar(ordered)
    assert last is not None, "fewer events than two pages"
    return pages + 1, encode_cursor(last)


async def _p50s(
    client: httpx.AsyncClient,
    viewer: Viewer,
    each: list[dict[str, Any]],
    runs: int,
    query: str = QUERY,
) -> list[float]:
    """The p50 of each request (its variables), the requests taken in turn, their order
    flipped every round: all meet the same load, so a ratio between them is the pages'
    own and not the machine's over the seconds between them (as tests/perf/search.py
    interleaves its measures)."""
    headers = {"Authorization": f"Bearer {viewer.token}"}
    times: list[list[float]] = [[] for _ in each]
    for run in range(runs + 2):
        order = list(enumerate(each))
        for k, variables in order[::-1] if run % 2 else order:
            body = {"query": query, "variables": variables}
            start = time.perf_counter()
            response = await client.post("/graphql", json=body, headers=headers)
            elapsed = time.perf_counter() - start
            answer = response.json()
            assert "errors" not in answer, answer
            if query is QUERY:
                assert len(answer["data"]["numberEvents"]["edges"]) == PAGE, answer
            if run >= 2:
                times[k].append(elapsed)
    return [statistics.median(found) * 1000 for found in times]


async def _measure(url: str, numbers: int, runs: int) -> list[tuple[str, str, int, float, float]]:
    from web.app import create_app

    viewers = await _build(url, numbers)
    db = Database(url)
    settings = Settings(_env_file=None, database_url=url)
    rows = []
    app = create_app(settings, db=db)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            # The floor: a request that reads no event (the machine's load shows here).
            [floor] = await _p50s(client, viewers[0], [{}], runs, BASELINE)
            rows.append(("floor", "-", 0, floor, floor))
            for viewer in viewers:
                for action in (None, "ACTION3"):
                    spec = {"actions": [action]} if action else None
                    depth, cursor = await _deep_cursor(db, viewer, action)
                    pages: list[dict[str, Any]] = [
                        {"filter": spec},
                        {"filter": spec, "after": cursor},
                    ]
                    first, deep = await _p50s(client, viewer, pages, runs)
                    rows.append((viewer.label, action or "-", depth, first, deep))
    finally:
        await db.dispose()
    return rows


def run(quick: bool) -> None:
    numbers = 15_000 if quick else 150_000
    runs = 5 if quick else 40
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        results.append(("SQLite", asyncio.run(_measure(url, numbers, runs))))
    if pg_reachable():
        with scratch_database(PG_ADMIN, "numbra_bench") as url:
            results.append(("PostgreSQL", asyncio.run(_measure(url, numbers, runs))))
    events = numbers * EVENTS_PER_NUMBER
    print(f"numberEvents on {events:,} events, p50 of {runs} requests (ms); target first <= 15,")
    print("deep (page 1,000, or a smaller scope's last full page) within 20 % of first")
    head = f"{'database':<12}{'viewer':<10}{'action':<9}{'page':>6}{'first':>8}{'deep':>8}"
    print(head + f"{'deep/first':>12}")
    for label, rows in results:
        for viewer, action, depth, first, deep in rows:
            print(
                f"{label:<12}{viewer:<10}{action:<9}{depth:>6}{first:>8.1f}{deep:>8.1f}"
                f"{deep / first:>12.2f}"
            )
