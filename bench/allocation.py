"""Allocating 10,000 numbers in one mutation, on SQLite and (when reachable) PostgreSQL.

The inventory is made with one bulk INSERT; the mutation goes through the served
ASGI app in-process, so the figure includes GraphQL, validation, the set-based
move, the history rows and the payload.
"""

import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from domain import ids, organizations, tokens
from domain.clock import SystemClock
from migrations import upgrade
from models import Number, NumberState, OrganizationKind, Role, Series
from models.database import Database
from settings import Settings
from web.app import create_app

PG_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
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


async def _pg_database() -> str | None:
    name = f"numbra_bench_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except OSError:
        return None
    finally:
        await engine.dispose()
    return name


async def _drop_pg(name: str) -> None:
    engine = create_async_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await engine.dispose()


def run(quick: bool) -> None:
    quantity, runs = (500, 2) if quick else (10_000, 5)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        rows.append(("SQLite", asyncio.run(_measure(url, quantity, runs))))
    name = asyncio.run(_pg_database())
    if name is None:
        print("PostgreSQL not reachable: skipped")
    else:
        try:
            url = sa.make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
            upgrade(url)
            rows.append(("PostgreSQL", asyncio.run(_measure(url, quantity, runs))))
        finally:
            asyncio.run(_drop_pg(name))
    print(f"allocateNumbers, quantity {quantity}, {runs} runs (target < 1 s on SQLite)")
    print(f"{'database':<12}{'median s':>10}{'min s':>8}{'max s':>8}")
    for label, timings in rows:
        print(
            f"{label:<12}{statistics.median(timings):>10.3f}{min(timings):>8.3f}{max(timings):>8.3f}"
        )
