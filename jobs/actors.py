"""Every Dramatiq actor Numbra runs; `numbra worker` loads this module.

Actors take ids, never objects, and are idempotent: each re-reads the database and
acts only on what is still due, so a message delivered twice, or to two workers, does
its work once. Nothing waits for a lost message to come back: the next sweep finds
whatever is still due and hands it out again. Hence no Dramatiq retries either.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import dramatiq
import redis
from dramatiq.errors import BrokerError

from domain import live, notice_delivery, webhook_delivery
from domain.notice_delivery import Outcome
from domain.policy import Policy
from domain.sweep import SweepReport, sweep
from domain.webhook_delivery import DeliveryReport
from domain.webhooks import WebhookRules
from jobs import context
from jobs.broker import broker
from jobs.kick import Kicker
from models.database import Database

__all__ = ["broker", "deliver_notice", "deliver_webhooks", "enqueue_deliveries", "sweep_now"]

log = logging.getLogger("numbra.jobs")

# A sweep message older than this is dropped: a newer one has been enqueued since.
SWEEP_MAX_AGE_MS = 10 * 60 * 1000


def enqueue_deliveries() -> None:
    """Enqueue `deliver_webhooks`; if the broker is unreachable, the sweep's message sends."""
    try:
        deliver_webhooks.send()
    except (BrokerError, redis.RedisError, OSError) as exc:
        log.warning("could not enqueue the webhook deliveries (%s); the sweep will", exc)


# A worker process's commits that wrote webhook deliveries (notices' events, lapses)
# kick their sending too. In-process jobs commit in the serving process, whose own
# kicker (web/app.py) sees them.
_worker_kicker = Kicker(enqueue_deliveries)


@contextlib.asynccontextmanager
async def _database() -> AsyncIterator[Database]:
    """The job's database; with Redis, its events published for live updates and its
    webhook deliveries kicked."""
    settings = context.current().settings
    db = Database(settings.database_url, pool_size=1)
    unpublish = live.publish_from_worker(db, settings.redis_url) if settings.redis_url else None
    unkick = _worker_kicker.attach(db) if settings.redis_url else None
    try:
        yield db
    finally:
        if unpublish is not None:
            unpublish()
        if unkick is not None:
            unkick()
        await db.dispose()


async def _sweep() -> SweepReport:
    job = context.current()
    async with _database() as db:
        return await sweep(db, job.clock, job.rules, Policy.from_settings(job.settings))


async def _deliver(notice_id: int) -> Outcome:
    job = context.current()
    async with _database() as db:
        return await notice_delivery.deliver(
            db, notice_id, clock=job.clock, mailer=job.mailer, rules=job.rules
        )


@dramatiq.actor(actor_name="sweep", max_retries=0, max_age=SWEEP_MAX_AGE_MS)
def sweep_now() -> None:
    """One sweep; then, its transactions committed, one delivery job per due notice, and
    one job that sends the webhook deliveries due."""
    report = asyncio.run(_sweep())
    if report.lapsed_reservations or report.lapsed_locks or report.notices_due:
        log.info("sweep: %s", report)
    for notice_id in report.notices_due:
        deliver_notice.send(notice_id)
    deliver_webhooks.send()


@dramatiq.actor(max_retries=0)
def deliver_notice(notice_id: int) -> None:
    outcome = asyncio.run(_deliver(notice_id))
    log.debug("notice %s: %s", notice_id, outcome.value)


async def _deliver_webhooks() -> DeliveryReport:
    job = context.current()
    async with _database() as db:
        return await webhook_delivery.deliver_due(
            db,
            clock=job.clock,
            rules=WebhookRules.from_settings(job.settings),
            mailer=job.mailer,
            sender=job.settings.mail_from,
        )


@dramatiq.actor(max_retries=0, max_age=SWEEP_MAX_AGE_MS)
def deliver_webhooks() -> None:
    """Send the webhook deliveries due, batch by batch. Two at once (two workers) share
    the work: each claims its own deliveries."""
    report = asyncio.run(_deliver_webhooks())
    if report.delivered or report.failed_attempts:
        log.info(
            "webhooks: %s delivered, %s attempts failed", report.delivered, report.failed_attempts
        )
