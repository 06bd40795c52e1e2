"""Jobs inside `numbra serve` when there is no Redis: the same actors on an in-process
broker, run by a Dramatiq worker in this process, and the sweep enqueued every interval.
"""

import asyncio
import contextlib
import logging

import dramatiq
from dramatiq.brokers.stub import StubBroker

from domain.clock import Clock
from jobs import context
from jobs.actors import broker
from jobs.scheduler import enqueue_sweep
from settings import Settings

log = logging.getLogger("numbra.jobs")

WORKER_THREADS = 2
# How often idle worker threads look for messages, and how long stopping may take (ms).
WORKER_TIMEOUT_MS = 200
STOP_TIMEOUT_MS = 30_000


class InProcessJobs:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        if not isinstance(broker, StubBroker):
            raise RuntimeError("in-process jobs need the in-process broker (no NUMBRA_REDIS_URL)")
        self._settings = settings
        self._clock = clock
        self._worker: dramatiq.Worker | None = None
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        context.configure(self._settings, self._clock)
        self._worker = dramatiq.Worker(
            broker, worker_threads=WORKER_THREADS, worker_timeout=WORKER_TIMEOUT_MS
        )
        self._worker.start()
        self._ticker = asyncio.create_task(self._tick())
        log.info("jobs run in-process: a sweep every %ss", self._settings.sweep_interval_seconds)

    async def _tick(self) -> None:
        while True:
            enqueue_sweep()
            await asyncio.sleep(self._settings.sweep_interval_seconds)

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._worker is not None:
            await asyncio.to_thread(self._worker.stop, STOP_TIMEOUT_MS)
