"""The sweep lapsing 100,000 due reservations, on SQLite and (when reachable) PostgreSQL.

The reservations are made with one bulk INSERT, all ended an hour ago; the figure is one
call of the sweep as a worker runs it: the batched guarded UPDATEs, their EXPIRED events,
and the notice scheduling that follows. Target: under 10 s on SQLite.
"""

import asyncio
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from domain import organizations
from domain.clock import SystemClock
from domain.notices import NoticeRules
from domain.sweep import sweep
from migrations import upgrade
from models import Number, NumberEvent, NumberState, ReservationKind, ReservationReason
from models.database import Database
from tests.perf import PG_ADMIN, pg_reachable
from tests.support.databases import scratch_database

CHUNK = 10_000


async def _prepare(url: str, size: int) -> None:
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
                        "state": NumberState.RESERVED,
                        "country": "SG",
                        "sku": "bench",
                        "vendor": "bench",
                        "capabilities": 1,
                        "golden": False,
                        "ported_in": False,
                        "organization_id": root.id,
                        "state_changed_at": ended - timedelta(days=28),
                        "expires_at": ended,
                        "reservation_kind": ReservationKind.FREE,
                        "reservation_reason": ReservationReason.MANUAL,
                        "reserved_for_id": root.id,
                        "reserved_at": ended - timedelta(days=28),
                    }
                    for n in range(start, min(start + CHUNK, size))
                ],
            )
    await db.dispose()


async def _measure(url: str, size: int) -> float:
    await _prepare(url, size)
    db = Database(url)
    try:
        start = time.perf_counter()
        report = await sweep(db, SystemClock(), NoticeRules())
        elapsed = time.perf_counter() - start
        assert report.lapsed_reservations == size, report
        async with db.read() as session:
            events = await session.scalar(
                sa.select(sa.func.count())
                .select_from(NumberEvent)
                .where(NumberEvent.action == "EXPIRED")
            )
        assert events == size, events
    finally:
        await db.dispose()
    return elapsed


def run(quick: bool) -> None:
    size = 5_000 if quick else 100_000
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        rows.append(("SQLite", asyncio.run(_measure(url, size))))
    if pg_reachable():
        with scratch_database(PG_ADMIN, "numbra_bench") as url:
            rows.append(("PostgreSQL", asyncio.run(_measure(url, size))))
    print(f"one sweep lapsing {size:,} due reservations (target < 10 s on SQLite)")
    print(f"{'database':<12}{'seconds':>10}{'per second':>12}")
    for label, elapsed in rows:
        print(f"{label:<12}{elapsed:>10.2f}{size / elapsed:>12,.0f}")
