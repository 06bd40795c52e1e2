"""The scheduler: enqueues the sweep every NUMBRA_SWEEP_INTERVAL_SECONDS.

Several schedulers may run at once: a sweep is safe to run twice. If the broker is
unreachable, the scheduler logs it and tries again next interval; the sweep that then
runs catches up on everything due meanwhile.
"""

import logging
import threading

import redis
from dramatiq.errors import BrokerError

from jobs.actors import sweep_now

log = logging.getLogger("numbra.scheduler")


def enqueue_sweep() -> bool:
    try:
        sweep_now.send()
    except (BrokerError, redis.RedisError, OSError) as exc:
        log.warning("could not enqueue the sweep (%s); trying again next interval", exc)
        return False
    return True


def run_forever(interval_seconds: float, stop: threading.Event | None = None) -> None:
    log.info("enqueueing the sweep every %ss", interval_seconds)
    stop = stop or threading.Event()
    while True:
        enqueue_sweep()
        if stop.wait(interval_seconds):
            return
