"""`numbra worker` and `numbra scheduler` on a real Redis: exactly once as users see it,
with two of each racing, messages delivered twice, a worker SIGKILLed mid-job, Redis down.

These processes run on the system clock, so the inventory is seeded relative to now.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from domain import notices, tokens
from domain.clock import ManualClock
from domain.notices import NoticeRules
from models import Role
from models.database import Database
from settings import Settings
from tests.support import invariants
from tests.support.api import Api, gid
from tests.support.due import DAY, RESERVE, seed
from tests.support.job_processes import RedisProxy, job_environment, processes, redis_database
from tests.support.mail import Inbox, smtp_server
from tests.support.world import World
from web.app import create_app

pytestmark = pytest.mark.slow


@pytest.fixture
def redis_url() -> Iterator[str]:
    with redis_database() as url:
        yield url


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with smtp_server() as server:
        yield server


def enqueue_twice(redis_url: str, actor_name: str, *args: int) -> None:
    """Put the same message on the queue twice, as a redelivery would."""
    broker = RedisBroker(url=redis_url)  # type: ignore[no-untyped-call]
    message: Message[None] = Message(
        queue_name="default", actor_name=actor_name, args=args, kwargs={}, options={}
    )
    broker.enqueue(message)
    broker.enqueue(message)
    broker.close()


async def test_two_workers_and_two_schedulers_with_every_message_twice_act_once(
    db: Database, database_url: str, redis_url: str, smtp: tuple[Inbox, int], tmp_path: Path
) -> None:
    inbox, port = smtp
    due = await seed(db)
    inventory = await World.create(db, ManualClock(datetime.now(UTC)))
    # Notices already out for delivery, and every message in the queue twice.
    async with db.write() as session:
        await notices.schedule(session, inventory.clock.now(), NoticeRules().before)
    async with db.read() as session:
        notice_ids = await notices.claimable(session, inventory.clock.now())
    assert len(notice_ids) == 3
    enqueue_twice(redis_url, "sweep")
    for notice_id in notice_ids:
        enqueue_twice(redis_url, "deliver_notice", notice_id)

    with processes(tmp_path, job_environment(database_url, redis_url, port)) as running:
        schedulers = [running.scheduler("scheduler-1"), running.scheduler("scheduler-2")]
        running.worker("worker-1")
        running.worker("worker-2")
        await running.wait_for("all lapses and mails", lambda: due.done(inventory, inbox))
        for scheduler in schedulers:
            scheduler.kill()
        broker = RedisBroker(url=redis_url)  # type: ignore[no-untyped-call]
        broker.join("default", timeout=30_000)
        broker.close()

    await due.check_exactly_once(inventory, inbox)


# PostgreSQL: its lock wait is how the test stops a worker inside its lapse transaction;
# the claim and lease of a notice killed mid-send are SQL the notice tests run on both.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_workers_killed_mid_sweep_are_made_good_by_the_next_sweep_of_a_new_worker(
    db: Database, database_url: str, redis_url: str, smtp: tuple[Inbox, int], tmp_path: Path
) -> None:
    inbox, port = smtp
    due = await seed(db)
    inventory = await World.create(db, ManualClock(datetime.now(UTC)))

    with processes(tmp_path, job_environment(database_url, redis_url, port)) as running:
        running.scheduler("scheduler")
        # Killed inside its lapse transaction: the test holds the events table, so the
        # sweep waits there with its numbers updated but not committed.
        async with db.engine.connect() as holder:
            await holder.exec_driver_sql("LOCK TABLE number_events IN EXCLUSIVE MODE")
            doomed = running.worker("worker-killed-mid-lapse", threads=1)
            await running.wait_for("a sweep inside its transaction", lambda: _waiting(db))
            doomed.kill()
            await holder.rollback()
        # Killed mid-send: the first message waits in DATA until the worker is gone.
        inbox.hold.set()
        doomed = running.worker("worker-killed-mid-send", threads=1)

        async def held() -> bool:
            return inbox.held.is_set()

        await running.wait_for("a send in progress", held)
        doomed.kill()
        inbox.hold.clear()
        inbox.release()
        # Their messages (the job in hand and those prefetched) come back late if ever:
        # the next sweeps, run by a new worker, find what is still due.
        running.worker("worker-restarted")
        await running.wait_for("all lapses and mails", lambda: due.done(inventory, inbox))

    await due.check_exactly_once(inventory, inbox)
    attempts = sorted(n.attempts for n in await inventory.notices())
    assert attempts[-1] == 2  # the one whose worker was killed: claimed again after its lease
    assert await invariants.check(db, expected_total=9) == []


async def _waiting(db: Database) -> bool:
    """Whether some session waits on a lock to write EXPIRED events."""
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO number_events%'"
    )
    async with db.engine.connect() as connection:
        return bool((await connection.exec_driver_sql(query)).scalar_one())


# The database plays no part in an outage of Redis.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_with_redis_down_the_api_serves_and_the_next_sweep_catches_up(
    db: Database, database_url: str, redis_url: str, smtp: tuple[Inbox, int], tmp_path: Path
) -> None:
    inbox, port = smtp
    due = await seed(db)
    inventory = await World.create(db, ManualClock(datetime.now(UTC)))
    [spare] = await inventory.add(1, pool=due.customer)
    async with db.write() as session:
        token = await tokens.issue(session, inventory.root, "ops", Role.ADMIN, inventory.clock)
    proxy = RedisProxy(redis_url)  # down until `up()`
    settings = Settings(_env_file=None, database_url=database_url, redis_url=proxy.url)
    try:
        with processes(tmp_path, job_environment(database_url, proxy.url, port)) as running:
            scheduler = running.scheduler("scheduler")
            running.worker("worker")

            async def refused() -> bool:
                return "could not enqueue the sweep" in scheduler.output()

            await running.wait_for("the scheduler to find Redis down", refused)
            async with Api.open(create_app(settings, db=db), token, db, inventory.clock) as api:
                variables = {
                    "numbers": [spare],
                    "holder": gid(due.customer),
                    "ends": _in(2 * DAY),
                }
                data = await api.gql(RESERVE, variables)
                assert data["reserveNumbers"]["userErrors"] == []
                data = await api.gql(READ, {"e164": due.lapsed[0]})
                assert data["number"]["state"] == "RESERVED"  # nothing swept meanwhile
            due.mails += 1  # the new reservation ends within the week

            proxy.up()
            await running.wait_for("all lapses and mails", lambda: due.done(inventory, inbox))
    finally:
        proxy.close()

    await due.check_exactly_once(inventory, inbox)


READ = "query($e164: String!) { number(e164: $e164) { state } }"


def _in(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()
