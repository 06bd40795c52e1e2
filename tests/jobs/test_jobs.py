"""The actors on the in-process broker, run by a joined Dramatiq worker, errors raised."""

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from domain.clock import ManualClock
from domain.mail import SmtpMailer
from jobs import context
from jobs.actors import broker, deliver_notice, sweep_now
from jobs.context import JobContext
from jobs.runner import InProcessJobs
from models import NoticeStatus, Number, NumberState, OrganizationKind
from models.database import Database
from settings import Settings
from tests.support.mail import Inbox, smtp_server
from tests.support.world import World

DAY = timedelta(days=1)
# How long a test may wait for in-process jobs that run on their own schedule.
DEADLINE_SECONDS = 20


@pytest.fixture
def inbox_and_settings(database_url: str) -> Iterator[tuple[Inbox, Settings]]:
    with smtp_server() as (inbox, port):
        yield (
            inbox,
            Settings(
                _env_file=None,
                database_url=database_url,
                smtp_host="127.0.0.1",
                smtp_port=port,
                smtp_timeout_seconds=5,
                sweep_interval_seconds=0.05,
            ),
        )


@pytest.fixture
def inbox(inbox_and_settings: tuple[Inbox, Settings]) -> Inbox:
    return inbox_and_settings[0]


@pytest.fixture
def job_context(
    inbox_and_settings: tuple[Inbox, Settings], clock: ManualClock, monkeypatch
) -> JobContext:
    settings = inbox_and_settings[1]
    job = JobContext(settings, clock, SmtpMailer(settings))
    monkeypatch.setattr(context, "_context", job)
    return job


@pytest.fixture
def worker(job_context: JobContext) -> Iterator[dramatiq.Worker]:
    assert isinstance(broker, StubBroker)
    broker.flush_all()
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=4)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        broker.flush_all()


def join(worker: dramatiq.Worker) -> None:
    assert isinstance(broker, StubBroker)
    broker.join(sweep_now.queue_name, fail_fast=True)
    worker.join()


@pytest.fixture
async def inventory(db: Database, clock: ManualClock) -> World:
    return await World.create(db, clock, support_email="noc@provider.test")


async def _due_work(inventory: World, clock: ManualClock) -> tuple[list[str], list[str]]:
    """Two reservations that have lapsed, and two that lapse within the week."""
    customer = await inventory.org("Acme", OrganizationKind.CUSTOMER, billing_email="b@acme.test")
    lapsed = await inventory.add(2, pool=customer)
    await inventory.reserve(lapsed, customer, clock.now() + DAY)
    clock.advance(2 * DAY)
    warned = await inventory.add(2, pool=customer)
    await inventory.reserve(warned, customer, clock.now() + 3 * DAY)
    return lapsed, warned


async def test_the_sweep_actor_lapses_and_hands_out_the_notices_after_committing(
    worker: dramatiq.Worker, inventory: World, inbox: Inbox, clock: ManualClock
) -> None:
    lapsed, warned = await _due_work(inventory, clock)

    sweep_now.send()
    await asyncio.to_thread(join, worker)

    for e164 in lapsed:
        assert (await inventory.row(e164)).state is NumberState.AVAILABLE
    assert len(inbox.messages) == len(warned)
    assert {n.status for n in await inventory.notices()} == {NoticeStatus.SENT}


async def test_every_message_delivered_twice_does_its_work_once(
    worker: dramatiq.Worker, inventory: World, inbox: Inbox, clock: ManualClock
) -> None:
    lapsed, warned = await _due_work(inventory, clock)
    sweep = sweep_now.message()
    # The same message, twice, taken by two worker threads at once.
    broker.enqueue(sweep)
    broker.enqueue(sweep)
    await asyncio.to_thread(join, worker)
    notice_ids = [n.id for n in await inventory.notices()]
    for notice_id in notice_ids:
        message = deliver_notice.message(notice_id)
        broker.enqueue(message)
        broker.enqueue(message)
    await asyncio.to_thread(join, worker)

    assert await inventory.count_events("EXPIRED") == len(lapsed)
    assert len(inbox.messages) == len(warned)
    assert len(set(inbox.ids())) == len(warned)
    assert await inventory.count_events("NOTIFIED") == len(warned)


async def test_in_process_jobs_sweep_every_interval_until_stopped(
    job_context: JobContext, inventory: World, inbox: Inbox, clock: ManualClock
) -> None:
    lapsed, warned = await _due_work(inventory, clock)
    jobs = InProcessJobs(job_context.settings, clock)
    await jobs.start()
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while len(inbox.messages) < len(warned) or await inventory.count(
            Number.state == NumberState.RESERVED, Number.e164.in_(lapsed)
        ):
            assert time.monotonic() < deadline, "in-process jobs did not catch up in time"
            await asyncio.sleep(0.05)
    finally:
        await jobs.stop()

    assert len(inbox.messages) == len(warned)
    assert await inventory.count_events("EXPIRED") == len(lapsed)
