"""Webhook deliveries sent right after the commit that wrote them, not at the next sweep.

After each commit that wrote events or deliveries (domain/live.py, `on_outbox`), a
`deliver_webhooks` message is enqueued: on the in-process broker, where the serving
process's own Dramatiq worker runs it (no Redis), or on Redis for the workers. Never
before the commit, so a worker never looks before the rows are there, and never for a
rollback. Kicks are coalesced: the first starts a short timer and those until it fires
are dropped, so an import of 10,000 events enqueues one message, and a steady stream of
commits at most one per DELAY_SECONDS. One message sends everything due; whatever it
misses (a lost message, a retry not yet due) the sweep's own message sends.
"""

import threading
from collections.abc import Callable

from domain import live
from models.database import Database

# How long kicks gather before their one message goes.
DELAY_SECONDS = 0.05


class Kicker:
    """Coalesced calls of `enqueue` after commits, from whichever thread committed."""

    def __init__(self, enqueue: Callable[[], None], delay: float = DELAY_SECONDS) -> None:
        self._enqueue = enqueue
        self._delay = delay
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self.sent = 0

    def attach(self, db: Database) -> Callable[[], None]:
        """Kick after each commit on `db` that wrote to the outbox; returns the detacher."""
        return live.on_outbox(db, self.kick)

    def kick(self) -> None:
        with self._lock:
            if self._timer is not None:
                return
            self._timer = threading.Timer(self._delay, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def cancel(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
            self.sent += 1
        self._enqueue()
