"""Probes: /healthz says the process is up; /readyz that it can serve requests now.

Ready means the database answers a trivial query and, when NUMBRA_REDIS_URL is set,
Redis answers PING, each within NUMBRA_READY_TIMEOUT_SECONDS: a hung database makes
the probe fail, not hang. Neither probe needs a token, so the answers name what failed
and nothing more (no URLs, no error messages; those go to the log).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from models.database import Database
from settings import Settings

log = logging.getLogger("numbra.health")

OK = "ok"


async def _database_answers(db: Database) -> None:
    async with db.read() as session:
        await session.execute(sa.text("SELECT 1"))


async def _redis_answers(url: str, seconds: float) -> None:
    # Its own socket timeouts too, so no connection is left waiting after the probe.
    client = redis.asyncio.Redis.from_url(
        url, socket_connect_timeout=seconds, socket_timeout=seconds
    )
    try:
        await client.ping()
    finally:
        await client.aclose()


async def _check(name: str, answers: Callable[[], Awaitable[None]], seconds: float) -> str:
    """OK, or what went wrong in a few words fit for an unauthenticated caller."""
    try:
        async with asyncio.timeout(seconds):
            await answers()
    except TimeoutError:
        log.warning("readiness: %s did not answer within %s s", name, seconds)
        return f"no answer within {seconds:g} s"
    except Exception as exc:
        log.warning("readiness: %s failed: %r", name, exc)
        return f"unreachable ({type(exc).__name__})"
    return OK


def health_routes(db: Database, settings: Settings) -> list[Route]:
    timeout = settings.ready_timeout_seconds
    checks: dict[str, Callable[[], Awaitable[None]]] = {"database": lambda: _database_answers(db)}
    if settings.redis_url:
        redis_url = settings.redis_url
        checks["redis"] = lambda: _redis_answers(redis_url, timeout)

    async def healthz(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def readyz(_request: Request) -> JSONResponse:
        results = await asyncio.gather(
            *(_check(name, answers, timeout) for name, answers in checks.items())
        )
        found = dict(zip(checks, results, strict=True))
        ready = all(result == OK for result in found.values())
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": found},
            status_code=200 if ready else 503,
        )

    return [Route("/healthz", healthz), Route("/readyz", readyz)]
