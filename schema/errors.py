"""The error policy: what a client is told when something fails, and what is logged.

- A DomainError (the input or the state refuses): its code, message and field reach the
  client, in a mutation's `userErrors` (resolvers) or else as the GraphQL error; the CSV
  routes answer 403, 404 or 409 for those codes, else 400. Not logged.
- A document that does not parse or validate, variables that do not coerce: graphql-core's
  message, HTTP 400. Not logged.
- The database unreachable or gone (a restart, a crash), or its disk full: said plainly
  with the code UNAVAILABLE or STORAGE_FULL, so the client knows to wait. Inside GraphQL
  it is logged as an unexpected error; outside (the token lookup before any resolver, a
  CSV import) a Starlette exception handler answers 503 with Retry-After or 507, and logs
  a warning.
- Anything else: the client gets INTERNAL and the request id to quote, nothing more; it
  is logged as an error with the request id and the traceback, never the variables.
  Outside GraphQL that is an HTTP 500 in the same JSON.
- A request whose body no operation can come from (not UTF-8, not JSON, nested too
  deep, web/request_body.py): 400, `{"errors": [{"message"}]}`.

What is refused before the application runs lives with its limit: 401 in the bearer
authentication, 408, 413 and 431 in web/limits.py and web/http_protocol.py.
"""

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from domain.errors import DomainError, ErrorCode
from models.database import is_storage_full, is_unavailable

log = logging.getLogger("numbra.graphql")
web_log = logging.getLogger("numbra.web")


@dataclass(frozen=True)
class DatabaseFailure:
    """A failure of the database itself, told plainly: the client can act on it by
    waiting, the operator by restarting the database or freeing space."""

    applies: Callable[[BaseException], bool]
    code: str
    message: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)


DATABASE_FAILURES = (
    DatabaseFailure(
        is_unavailable,
        "UNAVAILABLE",
        "The database is unavailable; try again shortly.",
        503,
        {"Retry-After": "1"},
    ),
    DatabaseFailure(
        is_storage_full,
        "STORAGE_FULL",
        "The database's disk is full: nothing was written. Try again once space is freed.",
        507,
    ),
)
# The HTTP status of a refusal outside GraphQL: the first of these codes among its
# problems, else 400.
REFUSAL_STATUS = {
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.RATE_LIMITED: 429,
}


def database_failure(error: BaseException) -> DatabaseFailure | None:
    return next((failure for failure in DATABASE_FAILURES if failure.applies(error)), None)


# ---- GraphQL ----


class ErrorPolicy(SchemaExtension):
    """Expected failures reach the client with their code; anything else is masked.

    Requests that fail to parse or validate are answered with HTTP 400.
    """

    def on_operation(self) -> Iterator[None]:
        yield from error_policy(self.execution_context)


def error_policy(execution_context: ExecutionContext) -> Iterator[None]:
    """ErrorPolicy's hook, around an operation (schema/extensions.py runs it too)."""
    context: Any = execution_context.context
    try:
        yield
    except GraphQLError:
        # The cached parser raises a syntax error (or too many tokens) out of this hook
        # instead of returning it as a result: bad input all the same.
        _refuse(context)
        raise
    result = execution_context.result
    if result is None or not result.errors:
        return
    if result.data is None and all(error.path is None for error in result.errors):
        # Nothing ran: the document did not parse or validate.
        _refuse(context)
        return
    request_id = getattr(context, "request_id", "-")
    result.errors = [public_error(error, request_id) for error in result.errors]


def _refuse(context: Any) -> None:
    if getattr(context, "response", None) is not None:
        context.response.status_code = 400


def public_error(error: GraphQLError, request_id: str) -> GraphQLError:
    """The error as the client sees it."""
    original = error.original_error
    if original is None:
        return error
    if isinstance(original, DomainError):
        problem = original.problems[0]
        extensions = {"code": problem.code.value}
        if problem.field:
            extensions["field"] = list(problem.field)  # type: ignore[assignment]
        return GraphQLError(
            original.problems[0].message if len(original.problems) == 1 else str(original),
            nodes=error.nodes,
            path=error.path,
            extensions=extensions,
        )
    failure = database_failure(original)
    if failure is not None:
        message, code = failure.message, failure.code
    else:
        message = f"Internal error; quote request id {request_id} when reporting it."
        code = "INTERNAL"
    return GraphQLError(
        message,
        nodes=error.nodes,
        path=error.path,
        extensions={"code": code, "requestId": request_id},
    )


def log_unexpected(errors: Sequence[GraphQLError], request_id: str) -> None:
    """Log what went wrong unexpectedly, with the request id; never the variables."""
    for error in errors:
        original = error.original_error
        # Bad input (including variables graphql-core could not coerce) is the
        # client's error, answered as such; it is not logged as ours.
        if original is None or isinstance(original, DomainError | GraphQLError):
            continue
        log.error(
            "internal error in %s (request id %s)",
            ".".join(str(p) for p in error.path or ()),
            request_id,
            exc_info=original,
        )


# ---- HTTP, outside GraphQL ----


def refusal(error: DomainError) -> Response:
    """A DomainError as a CSV route answers it: every problem, with a 400-level status."""
    codes = {problem.code for problem in error.problems}
    status = next((REFUSAL_STATUS[code] for code in REFUSAL_STATUS if code in codes), 400)
    problems = [
        {
            "code": problem.code.value,
            "message": problem.message,
            "field": list(problem.field) if problem.field else None,
            "number": problem.number,
        }
        for problem in error.problems
    ]
    return JSONResponse({"errors": problems}, status_code=status)


def bad_request(message: str, status: int = 400) -> Response:
    """A request refused before any operation ran (its body is not one): JSON, as every
    other answer."""
    return JSONResponse({"errors": [{"message": message}]}, status_code=status)


async def database_failed(request: Request, exc: Exception) -> Response:
    """A database failure outside any resolver: 503 or 507, never a 500."""
    failure = database_failure(exc)
    if failure is None:
        raise exc
    web_log.warning("%s for %s %s: %r", failure.code, request.method, request.url.path, exc)
    return JSONResponse(
        {"errors": [{"message": failure.message, "extensions": {"code": failure.code}}]},
        status_code=failure.status,
        headers=failure.headers or None,
    )


async def internal_error(request: Request, exc: Exception) -> Response:
    """Anything unexpected outside GraphQL: INTERNAL and the request id, as inside it.

    Starlette answers it outermost, outside the request id's middleware, so the header is
    set here too."""
    request_id = str(request.scope.get("state", {}).get("request_id", "-"))
    web_log.error(
        "internal error in %s %s (request id %s)",
        request.method,
        request.url.path,
        request_id,
        exc_info=exc,
    )
    error = {
        "message": f"Internal error; quote request id {request_id} when reporting it.",
        "extensions": {"code": "INTERNAL", "requestId": request_id},
    }
    return JSONResponse({"errors": [error]}, status_code=500, headers={"x-request-id": request_id})


EXCEPTION_HANDLERS = {
    ConnectionError: database_failed,
    sa.exc.DBAPIError: database_failed,
    Exception: internal_error,
}
