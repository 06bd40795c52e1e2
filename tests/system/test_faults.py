"""Faults a deployment meets: the database restarted under load, Redis stopped and started,
the SQLite disk full. Each test ends with the inventory's invariants checked.

(A worker SIGKILLed mid-sweep is tests/system/test_jobs_on_redis.py, which checks them too.)
"""

import asyncio
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain import tokens
from domain.clock import ManualClock
from models import Role
from models.database import Database
from tests.support import invariants
from tests.support.api import Api, gid
from tests.support.due import RESERVE as RESERVE_UNTIL
from tests.support.due import seed
from tests.support.faults import (
    REQUEST_BOUND_SECONDS,
    Outcome,
    PrivatePostgres,
    Traffic,
    client,
    fill,
    private_postgres,
    private_redis,
    small_disk,
)
from tests.support.job_processes import job_environment, processes
from tests.support.mail import smtp_server
from tests.support.processes import free_port, run_cli, serving
from tests.support.world import World

pytestmark = pytest.mark.slow

# The Redis database number the fault tests use on their private server.
REDIS_DATABASE = 14

NUMBERS = [f"+656300{i:04d}" for i in range(20)]
ADD = """mutation($numbers: [String!]!) {
  addNumbers(input: {numbers: $numbers, vendor: "V", country: "SG", sku: "sku-1"}) {
    userErrors { code message }
  }
}"""
VIEWER = "query { viewer { organization { id } } }"
SEARCH = "query { numbers(first: 5, filter: {states: [AVAILABLE]}) { edges { node { e164 } } } }"
RESERVE = """mutation($numbers: [String!]!, $holder: ID!) {
  reserveNumbers(input: {numbers: $numbers, reservedForId: $holder}) { userErrors { code } }
}"""
RELEASE = """mutation($numbers: [String!]!) {
  releaseNumbers(input: {numbers: $numbers}) { userErrors { code } }
}"""
# What a client must never see: the internals of a failure.
LEAKS = ("Traceback", "asyncpg", "sqlalchemy", "sqlite3", "postgres")


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """SQLite on a small disk of its own (tmpfs) for every test here that uses `db` or `api`:
    the disk-full test fills it, the others need little room."""
    with small_disk(tmp_path / "disk", 8) as disk:
        shutil.copy(sqlite_template, disk / "numbra.db")
        yield f"sqlite+aiosqlite:///{disk / 'numbra.db'}"


def body(query: str, **variables: Any) -> dict[str, Any]:
    return {"query": query, "variables": variables}


def clean_failure(outcome: Outcome) -> bool:
    """Answered within the bound, as a masked GraphQL error or a 503, naming no internals."""
    if outcome.seconds >= REQUEST_BOUND_SECONDS or outcome.status not in (200, 503):
        return False
    if any(leak.lower() in outcome.body.lower() for leak in LEAKS):
        return False
    if outcome.status == 503:
        return True
    errors = json.loads(outcome.body).get("errors") or []
    return all(error["extensions"]["code"] in ("INTERNAL", "UNAVAILABLE") for error in errors)


async def served_again(traffic: Traffic) -> None:
    start = len(traffic.outcomes)
    await traffic.until(
        "requests served again after PostgreSQL is back",
        lambda seen: len(seen) > start + 10 and all(o.data_ok for o in seen[-10:]),
    )


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[tuple[PrivatePostgres, str]]:
    """A private, migrated PostgreSQL and its first ADMIN token."""
    with private_postgres() as server:
        token = run_cli(["migrate"], server.url, tmp_path).strip()
        yield server, token


async def test_postgresql_restarted_under_load_fails_requests_cleanly_then_the_same_server_serves(
    postgres: tuple[PrivatePostgres, str], tmp_path: Path
) -> None:
    database, token = postgres
    with serving(database.url, 1, tmp_path) as [numbra]:
        async with client(numbra.base_url, token) as http:
            traffic = Traffic(http, [])
            setup = await traffic.send(body(ADD, numbers=NUMBERS))
            assert setup.ok, setup
            viewer = json.loads((await traffic.send(body(VIEWER))).body)
            holder = viewer["data"]["viewer"]["organization"]["id"]
            for e164 in NUMBERS:
                traffic.requests += [
                    body(SEARCH),
                    body(RESERVE, numbers=[e164], holder=holder),
                    body(RELEASE, numbers=[e164]),
                ]
            traffic.start()
            await traffic.until("requests served", lambda seen: sum(o.ok for o in seen) >= 5)

            await asyncio.to_thread(database.stop)
            down = len(traffic.outcomes)
            await traffic.until(
                "requests failing while PostgreSQL is down",
                lambda seen: sum(not o.data_ok for o in seen[down:]) >= 5,
            )
            await asyncio.to_thread(database.start)
            await served_again(traffic)
            # Restarted while idle: the pooled connections are stale when requests resume.
            await traffic.stop()
            await asyncio.to_thread(database.stop)
            await asyncio.to_thread(database.start)
            traffic.start()
            await served_again(traffic)
            await traffic.stop()
        assert numbra.process.poll() is None, numbra.stderr()

    failures = [o for o in traffic.outcomes if not o.data_ok]
    assert failures, "no request met the outage"
    assert [o for o in failures if not clean_failure(o)] == []
    assert max(o.seconds for o in traffic.outcomes) < REQUEST_BOUND_SECONDS
    db = Database(database.url)
    try:
        assert await invariants.check(db, expected_total=len(NUMBERS)) == []
    finally:
        await db.dispose()


async def test_a_full_sqlite_disk_refuses_writes_clearly_loses_nothing_and_then_recovers(
    api: Api, db: Database
) -> None:
    batches = ([f"+656{b:03d}{i:04d}" for i in range(50)] for b in range(1000))
    added = 0
    for _ in range(2):
        await api.gql(ADD, {"numbers": next(batches)})
        added += 50
    ballast = fill(Path(db.url.database or "").parent, leave_bytes=64 * 1024)

    while "errors" not in (response := await api.post(ADD, {"numbers": next(batches)})).json():
        assert added < 2_000, "the disk never filled"
        added += 50
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "STORAGE_FULL"
    assert "disk is full: nothing was written" in error["message"]
    refused = await api.upload_csv("number,vendor,country,sku\n+6590000000-+6590004999,V,SG,s\n")
    assert refused.status_code == 507, refused.text
    assert refused.json()["errors"][0]["extensions"]["code"] == "STORAGE_FULL"
    async with db.engine.connect() as conn:
        assert (await conn.exec_driver_sql("PRAGMA integrity_check")).scalar_one() == "ok"
    assert await invariants.check(db, expected_total=added) == []

    ballast.unlink()
    data = await api.gql(ADD, {"numbers": next(batches)})
    assert data["addNumbers"]["userErrors"] == []
    assert await invariants.check(db, expected_total=added + 50) == []


async def test_redis_stopped_and_started_the_api_serves_and_jobs_catch_up_exactly_once(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    due = await seed(db)
    inventory = await World.create(db, ManualClock(datetime.now(UTC)))
    [spare] = await inventory.add(1, pool=due.customer)
    async with db.write() as session:
        token = await tokens.issue(session, inventory.root, "ops", Role.ADMIN, inventory.clock)
    with (
        smtp_server() as (inbox, smtp_port),
        private_redis(tmp_path) as redis_server,
        processes(
            tmp_path, job_environment(database_url, redis_server.url(REDIS_DATABASE), smtp_port)
        ) as running,
    ):
        scheduler = running.scheduler("scheduler")
        running.worker("worker")
        port = free_port()
        running.start("serve", ["serve", "--host", "127.0.0.1", "--port", str(port)])
        async with client(f"http://127.0.0.1:{port}", token) as http:

            async def ready() -> bool:
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await running.wait_for("numbra serve ready", ready)
            await running.wait_for("all lapses and mails", lambda: due.done(inventory, inbox))

            redis_server.stop()
            refused = scheduler.output().count("could not enqueue the sweep")

            async def refusing() -> bool:
                return scheduler.output().count("could not enqueue the sweep") > refused

            await running.wait_for("the scheduler to find Redis gone", refusing)
            assert (await http.get("/readyz")).status_code == 503
            ends = (datetime.now(UTC) + 2 * timedelta(days=1)).isoformat()
            variables = {"numbers": [spare], "holder": gid(due.customer), "ends": ends}
            response = await http.post("/graphql", json=body(RESERVE_UNTIL, **variables))
            answer = response.json()
            assert "errors" not in answer
            assert answer["data"] == {"reserveNumbers": {"userErrors": []}}
            due.mails += 1  # the new reservation ends within the week

            redis_server.start()
            await running.wait_for("numbra serve to find Redis back", ready)
            await running.wait_for(
                "the mail of the new reservation", lambda: due.done(inventory, inbox)
            )

    await due.check_exactly_once(inventory, inbox)
    assert await invariants.check(db, expected_total=9 + 1) == []  # seeded, and the spare
