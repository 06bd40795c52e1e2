"""Prometheus metrics at /metrics: requests by operation, and the jobs' backlog.

Requests are counted, and timed, by GraphQL operation name (other routes by their path).
Operation names are the clients' own words, so their number is bounded: past
MAX_OPERATIONS distinct names in a process, new ones are counted as OTHER.

The backlog gauges (sweep lag, notices pending and failed) are read from the database at
each scrape, so every process reports the same figures, whichever process is scraped.

Counters live in the process that served the request. With several processes
(`numbra serve --workers N`), PROMETHEUS_MULTIPROC_DIR, which `numbra serve` sets then,
makes each of them write its counters to files there and a scrape of any one add up all.
"""

import asyncio
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from domain.backlog import Backlog, backlog
from domain.clock import Clock
from models.database import Database
from settings import Settings
from web.graphql import ANONYMOUS, OTHER
from web.request_id import MONITORING_ROUTES, Finished

log = logging.getLogger("numbra.metrics")

MAX_OPERATIONS = 100
UNMATCHED = "unmatched"
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# Request latency buckets (seconds): from a cached read to a 10,000-number allocation.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self, db: Database, clock: Clock, settings: Settings) -> None:
        self.db = db
        self.clock = clock
        # A scrape waits no longer for the database than a readiness probe does.
        self.db_timeout_seconds = settings.ready_timeout_seconds
        # One registry per app, so each app (and each test) counts its own requests.
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "numbra_requests",
            "HTTP requests answered, by GraphQL operation (other routes: path) and status.",
            ["operation", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "numbra_request_duration_seconds",
            "Time to answer a request, by GraphQL operation (other routes: path).",
            ["operation"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._operations: set[str] = set()

    def observe(self, finished: Finished) -> None:
        """A RequestIdMiddleware observer: count and time every API request."""
        if finished.route in MONITORING_ROUTES:
            return
        operation = self._label(finished)
        self.requests.labels(operation, str(finished.status)).inc()
        self.latency.labels(operation).observe(finished.seconds)

    def _label(self, finished: Finished) -> str:
        if finished.operation is None:
            return finished.route or UNMATCHED
        if finished.operation in (ANONYMOUS, OTHER):
            return finished.operation
        if finished.operation not in self._operations:
            if len(self._operations) >= MAX_OPERATIONS:
                return OTHER
            self._operations.add(finished.operation)
        return finished.operation

    async def endpoint(self, _request: Request) -> Response:
        """The scrape; web/auth.py asks for the metrics token first, when one is set."""
        body = generate_latest(self._counters())
        try:
            async with asyncio.timeout(self.db_timeout_seconds), self.db.read() as session:
                body += generate_latest(BacklogGauges(await backlog(session, self.clock.now())))
        except Exception:
            # The counters are still worth a scrape; /readyz reports the database.
            log.warning("metrics: could not read the backlog from the database", exc_info=True)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    def _counters(self) -> Collector:
        if not os.environ.get(MULTIPROCESS_DIR):
            return self.registry
        merged = CollectorRegistry()
        MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return merged


class BacklogGauges(Collector):
    """The backlog read at this scrape, as gauges (made here, not kept between scrapes)."""

    def __init__(self, found: Backlog) -> None:
        self.found = found

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "numbra_sweep_lag_seconds",
            "How long ago the oldest due but unlapsed reservation or lock ended; 0 if none.",
            value=self.found.sweep_lag_seconds,
        )
        yield GaugeMetricFamily(
            "numbra_notices_pending",
            "Notices not yet sent (waiting, retrying or being sent).",
            value=self.found.notices_pending,
        )
        yield GaugeMetricFamily(
            "numbra_notices_failed",
            "Notices that failed for good (listed by `numbra sweep`).",
            value=self.found.notices_failed,
        )


@contextmanager
def shared_counters(processes: int) -> Iterator[None]:
    """Around serving with several processes: a fresh directory for their counter files,
    removed after (unless PROMETHEUS_MULTIPROC_DIR names one already: then that)."""
    if processes == 1 or os.environ.get(MULTIPROCESS_DIR):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="numbra-metrics-") as directory:
        os.environ[MULTIPROCESS_DIR] = directory
        try:
            yield
        finally:
            del os.environ[MULTIPROCESS_DIR]
