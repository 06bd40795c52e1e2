"""Allocating 10,000 numbers in one mutation, on SQLite and (when reachable) PostgreSQL.

The inventory is made with one bulk INSERT; the mutation goes through the served
ASGI app in-process, so the figure includes GraphQL, validation, the set-based
move, the history rows and the payload.
"""

import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa

from domain import ids, organizations, tokens
from domain.clock import SystemClock
from migrations import upgrade
from models import Number, NumberState, OrganizationKind, Role, Series
from models.database import Database
from settings import Settings
from tests.perf import PG_ADMIN, pg_reachable
from tests.support.databases import scratch_database
from web.app import create_app

QUERY = """mutation($input: AllocateNumbersInput!) {
  allocateNumbers(input: $input) { numbers { e164 } userErrors { code message } }
}"""


async def _prepare(url: str, size: int, children: int) -> tuple[str, list[str], str]:
    db = Database(url)
    clock = SystemClock()
    async with db.write() as session:
        root, _ = await organizations.ensure_root(session, "Provider", clock)
        token = await tokens.issue(session, root, "bench", Role.ADMIN, clock)
        series = Series(name="bench", prefix="+6561", country="SG", created_at=clock.now())
        session.add(series)
        kids = [
            await organizations.add_child(
                session,
                root,
                OrganizationKind.PARTNER,
                clock,
                organizations.OrganizationFields(name=f"P{n}"),
            )
            for n in range(children)
        ]
        await session.flush()
        now = datetime.now(UTC)
        await session.execute(
            sa.insert(Number),
            [
                {
                    "e164": f"+6561{n:06d}",
                    "state": NumberState.AVAILABLE,
                    "country": "SG",
                    "sku": "bench",
                    "vendor": "bench",
                    "capabilities": 1,
                    "golden": False,
                    "ported_in": False,
                    "organization_id": root.id,
                    "series_id": series.id,
                    "state_changed_at": now,
                }
                for n in range(size)
            ],
        )
    await db.dispose()
    return (
        token,
        [ids.encode(organizations.TYPE_NAME, kid.uuid) for kid in kids],
        ids.encode("Series", series.uuid),
    )


async def _measure(url: str, quantity: int, runs: int) -> list[float]:
    token, children, series_id = await _prepare(url, quantity * runs, runs)
    db = Database(url)
    app = create_app(Settings(_env_file=None, database_url=url), db=db)
    timings = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for child in children:
            start = time.perf_counter()
            response = await client.post(
                "/graphql",
                json={
                    "query": QUERY,
                    "variables": {
                        "input": {
                            "organizationId": child,
                            "seriesId": series_id,
                            "quantity": quantity,
                        }
                    },
                },
                headers={"Authorization": f"Bearer {token}"},
            )
            timings.append(time.perf_counter() - start)
            payload = response.json()["data"]["allocateNumbers"]
            assert payload["userErrors"] == [], payload["userErrors"]
    await db.dispose()
    return timings


def run(quick: bool) -> None:
    quantity, runs = (500, 2) if quick else (10_000, 5)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        rows.append(("SQLite", asyncio.run(_measure(url, quantity, runs))))
    if pg_reachable():
        with scratch_database(PG_ADMIN, "numbra_bench") as url:
            rows.append(("PostgreSQL", asyncio.run(_measure(url, quantity, runs))))
    print(f"allocateNumbers, quantity {quantity}, {runs} runs (target < 1 s on SQLite)")
    print(f"{'database':<12}{'median s':>10}{'min s':>8}{'max s':>8}")
    for label, timings in rows:
        print(
            f"{label:<12}{statistics.median(timings):>10.3f}{min(timings):>8.3f}{max(timings):>8.3f}"
        )
