"""A request id for every HTTP request: in the response header and in every log line.

The same middleware times the request and, when it is over, tells its observers (the
access log, the metrics) how it went: one place sees every request start and end.
"""

import contextvars
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.access import Viewer
from web.auth import viewer_of

current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "numbra_request_id", default="-"
)


@dataclass(frozen=True)
class Finished:
    """A request that has been answered (status 500 if the app raised before answering)."""

    request_id: str
    method: str
    path: str
    # The path of the route that served it ("/graphql"), None if no route matched.
    route: str | None
    status: int
    seconds: float
    # The GraphQL operation's name, as web/graphql.py recorded it; None elsewhere.
    operation: str | None
    viewer: Viewer | None


Observer = Callable[[Finished], None]
# What monitoring calls every few seconds: not the API's traffic, for the logs and metrics.
MONITORING_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp, observers: Sequence[Observer] = ()) -> None:
        self.app = app
        self.observers = observers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = secrets.token_hex(8)
        token = current_request_id.set(request_id)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            finished = Finished(
                request_id=request_id,
                method=scope["method"],
                path=scope["path"],
                route=_route_path(scope.get("route")),
                status=status,
                seconds=time.perf_counter() - started,
                operation=state.get("operation"),
                viewer=viewer_of(scope),
            )
            for observe in self.observers:
                observe(finished)
            current_request_id.reset(token)


def _route_path(route: Any) -> str | None:
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # A record may carry its request's id already (the access line does).
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id.get()
        return True
