"""The scheduler: enqueues each periodic job every sweep interval.

Several schedulers may run at once: every job it enqueues is safe to run twice.
"""

import asyncio
import logging
from collections.abc import Callable

from settings import Settings

log = logging.getLogger("numbra.scheduler")

# Each entry enqueues one periodic job; the jobs issue registers the sweep here.
PERIODIC: list[Callable[[], object]] = []


async def run_forever(settings: Settings) -> None:
    log.info(
        "scheduling %d periodic job(s) every %ss", len(PERIODIC), settings.sweep_interval_seconds
    )
    while True:
        for enqueue in PERIODIC:
            enqueue()
        await asyncio.sleep(settings.sweep_interval_seconds)
