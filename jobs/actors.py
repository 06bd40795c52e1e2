"""Every Dramatiq actor Numbra runs; `numbra worker` loads this module.

Actors take ids, never objects, and are idempotent: each re-reads the database and
acts only on what is still due, so a message delivered twice, or to two workers, does
its work once. Nothing waits for a lost message to come back: the next sweep finds
whatever is still due and hands it out again. Hence no Dramatiq retries either.
"""

import asyncio
import logging

import dramatiq

from domain import notice_delivery
from domain.notice_delivery import Outcome
from domain.policy import Policy
from domain.sweep import SweepReport, sweep
from jobs import context
from jobs.broker import broker
from models.database import Database

__all__ = ["broker", "deliver_notice", "sweep_now"]

log = logging.getLogger("numbra.jobs")

# A sweep message older than this is dropped: a newer one has been enqueued since.
SWEEP_MAX_AGE_MS = 10 * 60 * 1000


def _database() -> Database:
    return Database(context.current().settings.database_url, pool_size=1)


async def _sweep() -> SweepReport:
    job = context.current()
    db = _database()
    try:
        return await sweep(db, job.clock, job.rules, Policy.from_settings(job.settings))
    finally:
        await db.dispose()


async def _deliver(notice_id: int) -> Outcome:
    job = context.current()
    db = _database()
    try:
        return await notice_delivery.deliver(
            db, notice_id, clock=job.clock, mailer=job.mailer, rules=job.rules
        )
    finally:
        await db.dispose()


@dramatiq.actor(actor_name="sweep", max_retries=0, max_age=SWEEP_MAX_AGE_MS)
def sweep_now() -> None:
    """One sweep; then, its transactions committed, one delivery job per due notice."""
    report = asyncio.run(_sweep())
    if report.lapsed_reservations or report.lapsed_locks or report.notices_due:
        log.info("sweep: %s", report)
    for notice_id in report.notices_due:
        deliver_notice.send(notice_id)


@dramatiq.actor(max_retries=0)
def deliver_notice(notice_id: int) -> None:
    outcome = asyncio.run(_deliver(notice_id))
    log.debug("notice %s: %s", notice_id, outcome.value)
