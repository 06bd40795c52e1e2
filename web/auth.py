"""Who is calling: the bearer token, read and checked in this one place for every route
that needs one, by Starlette's AuthenticationMiddleware.

/graphql (all but its GraphiQL page) and the CSV routes take an API token, looked up in
the database at every request (one indexed statement), so a revoked or expired token is
refused from the next request on, in every process; its last use is written at most once
a minute. /metrics takes the metrics token of the settings, when one is set. A request
without a valid token is answered 401 before its route runs; a client address past
NUMBRA_AUTH_FAILURES_PER_MINUTE failed authentications is answered 429 (RATE_LIMITED,
Retry-After) until the minute ends, whatever token it sends, without a lookup.
"""

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import SecretStr
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
    SimpleUser,
)
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from domain import access, tokens
from domain.access import Viewer
from domain.budgets import Budgets, seconds_to_reset
from domain.clock import Clock
from models.database import Database

AUTHENTICATED = "authenticated"
# A token's text to the user it stands for, or None if it is not a valid token.
Identify = Callable[[str], Awaitable[BaseUser | None]]
# Requests a route answers without a token.
OpenTo = Callable[[HTTPConnection], bool]


@dataclass(frozen=True)
class Realm:
    """Whose token a route takes, as its 401 answer names it."""

    name: str
    token: str

    def unauthorized(self, _conn: HTTPConnection, error: AuthenticationError) -> Response:
        if isinstance(error, TooManyFailures):
            return JSONResponse(
                {
                    "errors": [
                        {
                            "message": "too many failed authentications from this address; "
                            f"retry in {error.retry_after} s",
                            "extensions": {"code": "RATE_LIMITED"},
                        }
                    ]
                },
                status_code=429,
                headers={"Retry-After": str(error.retry_after)},
            )
        return JSONResponse(
            {"errors": [{"message": f"a valid {self.token} is required"}]},
            status_code=401,
            headers={"WWW-Authenticate": f'Bearer realm="{self.name}"'},
        )


API = Realm("numbra", "bearer token")
METRICS = Realm("numbra metrics", "metrics bearer token")


class TokenUser(BaseUser):
    """The caller of an API token: the viewer it stands for."""

    def __init__(self, viewer: Viewer) -> None:
        self.viewer = viewer

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.viewer.token_name

    @property
    def identity(self) -> str:
        return str(self.viewer.token_id)


class TooManyFailures(AuthenticationError):
    def __init__(self, retry_after: int) -> None:
        super().__init__("too many failed authentications")
        self.retry_after = retry_after


@dataclass(frozen=True)
class FailureLimit:
    """Failed authentications counted per client address and clock minute."""

    budgets: Budgets
    clock: Clock
    per_minute: int

    @staticmethod
    def key(conn: HTTPConnection) -> str:
        return "auth-failures:" + (conn.client.host if conn.client else "unknown")

    async def check(self, conn: HTTPConnection) -> None:
        now = self.clock.now()
        if await self.budgets.used(self.key(conn), now) >= self.per_minute:
            raise TooManyFailures(seconds_to_reset(now))

    async def failed(self, conn: HTTPConnection) -> None:
        await self.budgets.charge(self.key(conn), 1, self.per_minute, self.clock.now())


class BearerTokens(AuthenticationBackend):
    def __init__(
        self,
        identify: Identify,
        open_to: OpenTo | None = None,
        failures: FailureLimit | None = None,
    ) -> None:
        self.identify = identify
        self.open_to = open_to
        self.failures = failures

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        if self.open_to is not None and self.open_to(conn):
            return None
        if self.failures is not None:
            await self.failures.check(conn)
        token = bearer_token(conn)
        user = None if token is None else await self.identify(token)
        if user is None:
            if self.failures is not None and token is not None:
                await self.failures.failed(conn)
            raise AuthenticationError("no valid bearer token")
        return AuthCredentials([AUTHENTICATED]), user


def bearer_token(conn: HTTPConnection) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (the scheme in any case)."""
    scheme, _, token = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def api_token_required(
    db: Database,
    clock: Clock,
    failures: FailureLimit | None = None,
    open_to: OpenTo | None = None,
) -> list[Middleware]:
    """Route middleware: an API token, the viewer of which the route then finds in
    `request.user` (and `viewer_of`)."""

    async def identify(token: str) -> BaseUser | None:
        now = clock.now()
        async with db.read_connection() as connection:
            found = await access.identify(connection, token, now)
        if found is None:
            return None
        if tokens.needs_marking(found.last_used_at, now):
            async with db.write() as session:
                await tokens.mark_used(session, found.viewer.token_id, now)
        return TokenUser(found.viewer)

    return _required(API, BearerTokens(identify, open_to, failures))


def metrics_token_required(token: SecretStr | None) -> list[Middleware]:
    """Route middleware for /metrics: the metrics token, if one is set (empty counts as
    unset, as Compose passes an unset variable); else none."""
    expected = token.get_secret_value().encode() if token else b""
    if not expected:
        return []

    async def identify(given: str) -> BaseUser | None:
        return SimpleUser("metrics") if hmac.compare_digest(given.encode(), expected) else None

    return _required(METRICS, BearerTokens(identify))


def _required(realm: Realm, backend: BearerTokens) -> list[Middleware]:
    return [Middleware(AuthenticationMiddleware, backend=backend, on_error=realm.unauthorized)]


def viewer_of(scope: Scope) -> Viewer | None:
    """The viewer of the request's API token; None before or without one."""
    user = scope.get("user")
    return user.viewer if isinstance(user, TokenUser) else None
