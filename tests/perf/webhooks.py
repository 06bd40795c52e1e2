"""Webhook fan-out: 10,000 events to 3 endpoints on a real local receiver, on SQLite and
(when reachable) PostgreSQL.

The numbers are made with bulk INSERTs; one transaction then records an event for each,
and the database writes its 3 deliveries with it (the outbox trigger). The figure is the
sending as a worker does it (`deliver_due`: claim a batch, POST each signed, record the
results) until nothing is due, to three receivers in this process. Every event id must
have arrived at each endpoint (at least once; duplicates are counted and shown).
"""

import asyncio
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from domain import lifecycle, webhooks
from domain.clock import ManualClock
from domain.mail import Mailer, mailer_from_settings
from domain.webhook_delivery import deliver_due
from domain.webhooks import WebhookRules, event_message_id
from migrations import upgrade
from models import Number, NumberEvent, NumberState
from models.database import Database
from settings import Settings
from tests.perf import PG_ADMIN, pg_reachable
from tests.support.databases import scratch_database
from tests.support.receiver import receiver
from tests.support.world import World

CHUNK = 10_000
ENDPOINTS = 3
ACTION = "EDITED"


async def _numbers(world: World, size: int) -> None:
    now = world.clock.now()
    for start in range(0, size, CHUNK):
        async with world.db.write() as session:
            await session.execute(
                sa.insert(Number),
                [
                    {
                        "e164": f"+6562{n:06d}",
                        "country": "SG",
                        "sku": "bench",
                        "vendor": "bench",
                        "capabilities": 1,
                        "golden": False,
                        "ported_in": False,
                        "organization_id": world.root.id,
                        "state": NumberState.AVAILABLE,
                        "state_changed_at": now,
                    }
                    for n in range(start, min(start + CHUNK, size))
                ],
            )


async def _fan_out(url: str, size: int) -> tuple[float, int]:
    """(seconds to send, duplicates received)."""
    settings = Settings(
        _env_file=None, database_url=url, webhook_allow_private=True, webhook_batch_size=500
    )
    rules = WebhookRules.from_settings(settings)
    mailer: Mailer = mailer_from_settings(settings)
    db = Database(url)
    try:
        world = await World.create(db, ManualClock(datetime.now(UTC)))
        await _numbers(world, size)
        async with receiver() as a, receiver() as b, receiver() as c:
            targets = (a, b, c)
            for target in targets:
                await world.run(
                    lambda session, who, url=target.url: webhooks.create(
                        session,
                        who.viewer,
                        who.clock,
                        rules,
                        organization_id=None,
                        url=url,
                        actions=[ACTION],
                    )
                )
            async with db.write() as session:
                ids = list(await session.scalars(sa.select(Number.id)))
                await lifecycle.record_each(
                    session, ids, ACTION, actor="bench", at=world.clock.now(), remark=None
                )
            async with db.read() as session:
                events = set(
                    await session.scalars(
                        sa.select(NumberEvent.id).where(NumberEvent.action == ACTION)
                    )
                )
            assert len(events) == size
            start = time.perf_counter()
            report = await deliver_due(
                db, clock=world.clock, rules=rules, mailer=mailer, sender="bench@numbra.test"
            )
            elapsed = time.perf_counter() - start
        assert report.failed_attempts == 0, report
        expected = {event_message_id(event) for event in events}
        duplicates = 0
        for target in targets:
            per_id = Counter(target.ids())
            missing = expected - set(per_id)
            assert not missing, f"{len(missing)} events never reached {target.url}"
            assert set(per_id) == expected, "a receiver got an event it should not have"
            duplicates += sum(per_id.values()) - len(per_id)
    finally:
        await db.dispose()
    return elapsed, duplicates


def run(quick: bool) -> None:
    size = 500 if quick else 10_000
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        rows.append(("SQLite", *asyncio.run(_fan_out(url, size))))
    if pg_reachable():
        with scratch_database(PG_ADMIN, "numbra_bench") as url:
            rows.append(("PostgreSQL", *asyncio.run(_fan_out(url, size))))
    deliveries = ENDPOINTS * size
    print(
        f"{size:,} events to {ENDPOINTS} endpoints ({deliveries:,} signed POSTs) on local "
        "receivers; every event id arrived at each endpoint"
    )
    print(f"{'database':<12}{'seconds':>10}{'deliveries/s':>14}{'duplicates':>12}")
    for database, elapsed, duplicates in rows:
        print(f"{database:<12}{elapsed:>10.2f}{deliveries / elapsed:>14,.0f}{duplicates:>12}")
