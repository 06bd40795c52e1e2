"""Query limits and error policy, built once per schema so the parse and validation
caches keep working: rule classes made per request would never hit the cache."""

import functools
import logging
from collections.abc import Callable, Iterator
from typing import Any

from graphql import ASTValidationRule, GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)

from domain.errors import DomainError
from models.database import is_storage_full, is_unavailable
from schema.limits import limit_rule

log = logging.getLogger("numbra.graphql")
# Failures of the database itself, told plainly (code, message): the client can act on
# them by waiting, the operator by restarting the database or freeing space.
DATABASE_FAILURES: list[tuple[Callable[[BaseException], bool], str, str]] = [
    (is_unavailable, "UNAVAILABLE", "The database is unavailable; try again shortly."),
    (
        is_storage_full,
        "STORAGE_FULL",
        "The database's disk is full: nothing was written. Try again once space is freed.",
    ),
]
CACHE_SIZE = 512


def limit_extensions(
    max_depth: int, max_aliases: int, max_tokens: int
) -> list[Callable[[], SchemaExtension]]:
    """Factories that hand every request the same validation rule classes."""
    rules: list[type[ASTValidationRule]] = [limit_rule(max_depth, max_aliases)]
    return [
        functools.partial(MaxTokensLimiter, max_token_count=max_tokens),
        functools.partial(AddValidationRules, rules),
        functools.partial(ParserCache, maxsize=CACHE_SIZE),
        functools.partial(ValidationCache, maxsize=CACHE_SIZE),
    ]


class ErrorPolicy(SchemaExtension):
    """Expected failures reach the client with their code; anything else is masked.

    Requests that fail to parse or validate are answered with HTTP 400.
    """

    def on_operation(self) -> Iterator[None]:
        context: Any = self.execution_context.context
        try:
            yield
        except GraphQLError:
            # The cached parser raises a syntax error (or too many tokens) out of this hook
            # instead of returning it as a result: bad input all the same.
            _refuse(context)
            raise
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        if result.data is None and all(error.path is None for error in result.errors):
            # Nothing ran: the document did not parse or validate.
            _refuse(context)
            return
        request_id = getattr(context, "request_id", "-")
        result.errors = [_public(error, request_id) for error in result.errors]


def _refuse(context: Any) -> None:
    if getattr(context, "response", None) is not None:
        context.response.status_code = 400


def _public(error: GraphQLError, request_id: str) -> GraphQLError:
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
    for applies, code, message in DATABASE_FAILURES:
        if applies(original):
            return GraphQLError(
                message,
                nodes=error.nodes,
                path=error.path,
                extensions={"code": code, "requestId": request_id},
            )
    return GraphQLError(
        f"Internal error; quote request id {request_id} when reporting it.",
        nodes=error.nodes,
        path=error.path,
        extensions={"code": "INTERNAL", "requestId": request_id},
    )
