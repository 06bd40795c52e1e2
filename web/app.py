"""The ASGI application factory."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route, WebSocketRoute

from domain.clock import Clock, SystemClock
from jobs.actors import enqueue_deliveries
from jobs.kick import Kicker
from jobs.runner import InProcessJobs
from models.database import Database
from schema.build import build_schema
from schema.errors import EXCEPTION_HANDLERS
from settings import Settings
from web.auth import FailureLimit, api_token_required, metrics_token_required
from web.csv_endpoints import csv_routes
from web.graphiql import static_mount
from web.graphql import NumbraGraphQL, wants_ide
from web.health import health_routes
from web.limits import BodyLimitMiddleware
from web.logging import log_request
from web.metrics import Metrics
from web.request_id import RequestIdMiddleware


def create_app(
    settings: Settings, *, db: Database | None = None, clock: Clock | None = None
) -> Starlette:
    """Build the app. Tests pass their own database and clock; `numbra serve` does not."""
    owns_db = db is None
    database = db or Database(settings.database_url, pool_size=settings.database_pool_size)
    graphql = NumbraGraphQL(build_schema(settings), database, settings, clock or SystemClock())
    metrics = Metrics(database, graphql.clock, settings)
    failures = FailureLimit(graphql.budgets, graphql.clock, settings.auth_failures_per_minute)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # Without Redis, this process runs the jobs (the sweep, notices) itself.
        jobs = None if settings.redis_url else InProcessJobs(settings, graphql.clock)
        if jobs is not None:
            await jobs.start()
        await graphql.hub.start(settings.redis_url)
        # Webhook deliveries go out right after the commit that wrote them: to this
        # process's jobs, or to the workers through Redis.
        kicker = Kicker(enqueue_deliveries)
        unkick = kicker.attach(database)
        yield
        unkick()
        kicker.cancel()
        await graphql.hub.stop()
        if jobs is not None:
            await jobs.stop()
        if owns_db:
            await database.dispose()

    async def root(_request: Request) -> RedirectResponse:
        return RedirectResponse("/graphql")

    return Starlette(
        routes=[
            Route("/", root),
            *health_routes(database, settings),
            Route(
                "/metrics",
                metrics.endpoint,
                middleware=metrics_token_required(settings.metrics_token),
            ),
            Route(
                "/graphql",
                graphql,
                methods=["GET", "POST"],
                middleware=api_token_required(database, graphql.clock, failures, wants_ide),
            ),
            # Live updates (graphql-transport-ws): the token comes in connection_init.
            WebSocketRoute("/graphql", graphql),
            static_mount(),
            *csv_routes(
                database,
                settings,
                graphql.clock,
                api_token_required(database, graphql.clock, failures),
            ),
        ],
        middleware=[
            Middleware(RequestIdMiddleware, observers=[log_request, metrics.observe]),
            Middleware(
                BodyLimitMiddleware,
                max_bytes=settings.max_body_bytes,
                timeout_seconds=settings.body_timeout_seconds,
            ),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
