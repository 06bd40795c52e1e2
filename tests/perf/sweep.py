"""The sweep lapsing 100,000 due reservations, and renewing 100,000 due billing terms, on
SQLite and (when reachable) PostgreSQL.

The numbers are made with bulk INSERTs, all due an hour ago; the figure is one call of the
sweep as a worker runs it: the batched guarded UPDATEs, their events, and the notice
scheduling that follows. Targets: lapses under 10 s on SQLite; renewals under 10 s on both
databases (issue 15).
"""

import asyncio
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from domain import organizations
from domain.clock import SystemClock
from domain.notices import NoticeRules
from domain.policy import Policy
from domain.sweep import sweep
from domain.terms import sweep_terms
from migrations import upgrade
from models import Number, NumberEvent, NumberState, ReservationKind, ReservationReason
from models.database import Database
from tests.perf import PG_ADMIN, pg_reachable
from tests.support.databases import scratch_database

CHUNK = 10_000


Columns = Callable[[int, datetime], dict[str, Any]]


def _reserved(root_id: int, ended: datetime) -> dict[str, Any]:
    return {
        "state": NumberState.RESERVED,
        "expires_at": ended,
        "reservation_kind": ReservationKind.FREE,
        "reservation_reason": ReservationReason.MANUAL,
        "reserved_for_id": root_id,
        "reserved_at": ended - timedelta(days=28),
    }


def _renewing(root_id: int, ended: datetime) -> dict[str, Any]:
    """Assigned with a monthly term that renews (unlimited cycles), paid until `ended`."""
    return {
        "state": NumberState.ASSIGNED,
        "subscription_uuid": uuid.uuid4(),
        "owner_id": root_id,
        "billing_period_months": 1,
        "paid_until": ended,
    }


async def _prepare(url: str, size: int, columns: Columns) -> None:
    db = Database(url)
    clock = SystemClock()
    ended = clock.now() - timedelta(hours=1)
    async with db.write() as session:
        root, _ = await organizations.ensure_root(session, "Provider", clock)
    for start in range(0, size, CHUNK):
        async with db.write() as session:
            await session.execute(
                sa.insert(Number),
                [
                    {
                        "e164": f"+6561{n:06d}",
                        "country": "SG",
                        "sku": "bench",
                        "vendor": "bench",
                        "capabilities": 1,
                        "golden": False,
                        "ported_in": False,
                        "organization_id": root.id,
                        "state_changed_at": ended - timedelta(days=28),
                        **columns(root.id, ended),
                    }
                    for n in range(start, min(start + CHUNK, size))
                ],
            )
    await db.dispose()


async def _events(db: Database, action: str) -> int:
    async with db.read() as session:
        found = await session.scalar(
            sa.select(sa.func.count()).select_from(NumberEvent).where(NumberEvent.action == action)
        )
    return found or 0


async def _lapses(url: str, size: int) -> float:
    await _prepare(url, size, _reserved)
    db = Database(url)
    try:
        start = time.perf_counter()
        report = await sweep(db, SystemClock(), NoticeRules())
        elapsed = time.perf_counter() - start
        assert report.lapsed_reservations == size, report
        assert await _events(db, "EXPIRED") == size
    finally:
        await db.dispose()
    return elapsed


async def _renewals(url: str, size: int) -> float:
    await _prepare(url, size, _renewing)
    db = Database(url)
    try:
        start = time.perf_counter()
        report = await sweep_terms(db, SystemClock().now(), Policy())
        elapsed = time.perf_counter() - start
        assert (report.renewed, report.ended) == (size, 0), report
        assert await _events(db, "RENEWED") == size
    finally:
        await db.dispose()
    return elapsed


def run(quick: bool) -> None:
    size = 5_000 if quick else 100_000
    rows = []
    for label, measure in (("lapses", _lapses), ("renewals", _renewals)):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            upgrade(url)
            rows.append((label, "SQLite", asyncio.run(measure(url, size))))
        if pg_reachable():
            with scratch_database(PG_ADMIN, "numbra_bench") as url:
                rows.append((label, "PostgreSQL", asyncio.run(measure(url, size))))
    print(
        f"one sweep over {size:,} due reservations (lapses) or due billing terms (renewals);"
        " targets < 10 s (lapses on SQLite, renewals on both)"
    )
    print(f"{'work':<10}{'database':<12}{'seconds':>10}{'per second':>12}")
    for label, database, elapsed in rows:
        print(f"{label:<10}{database:<12}{elapsed:>10.2f}{size / elapsed:>12,.0f}")
