"""`make bench`: each step measures one issue's performance targets (tests/perf/run.py)."""

import asyncio
import json
import os
from collections.abc import Callable, Coroutine
from typing import Any

from tests.support.databases import ping

# The server the PostgreSQL half of each step runs on, in a scratch database of its own.
PG_ADMIN = os.environ.get(
    "NUMBRA_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)

# For the servers a bench drives: its throughput runs ask far more than a token's default
# budget a minute; every request still has its cost counted and charged.
UNLIMITED_BUDGET = {"NUMBRA_COST_BUDGET_PER_MINUTE": str(10**9)}


def pg_reachable() -> bool:
    """Whether PostgreSQL answers; if not, a step measures SQLite alone and says so."""
    try:
        asyncio.run(ping(PG_ADMIN))
    except OSError:
        print("PostgreSQL not reachable: skipped", flush=True)
        return False
    return True


def drive_client(
    drive: Callable[[Any], Coroutine[Any, Any, dict[str, Any]]], spec_json: str
) -> None:
    """A bench's client process: run `drive` on the spec (on uvloop when installed, as
    uvicorn is), and print its results as JSON for the bench to read."""
    spec = json.loads(spec_json)
    results: dict[str, Any]
    try:
        import uvloop
    except ImportError:
        results = asyncio.run(drive(spec))
    else:
        results = uvloop.run(drive(spec))
    print(json.dumps(results), flush=True)
