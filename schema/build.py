"""The assembled schema: every domain's queries and mutations, with limits and error policy."""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import strawberry
from graphql import GraphQLError, GraphQLID, GraphQLScalarType, GraphQLString
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from domain.errors import DomainError
from resolvers.access import AccessMutations, AccessQueries
from resolvers.allocation import AllocationMutations
from resolvers.numbers import NumberMutations, NumberQueries
from resolvers.organizations import OrganizationMutations, OrganizationQueries
from resolvers.search import SearchQueries
from resolvers.series import SeriesMutations, SeriesQueries
from schema.common import DATETIME
from schema.extensions import ErrorPolicy, limit_extensions
from settings import Settings

log = logging.getLogger("numbra.graphql")


@strawberry.type
class Query(AccessQueries, OrganizationQueries, NumberQueries, SearchQueries, SeriesQueries):
    pass


@strawberry.type
class Mutation(
    OrganizationMutations, SeriesMutations, NumberMutations, AllocationMutations, AccessMutations
):
    pass


class NumbraSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log what went wrong unexpectedly, with the request id; never the variables."""
        context: Any = execution_context.context if execution_context else None
        request_id = getattr(context, "request_id", "-")
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


def _refuse_nul(scalar: GraphQLScalarType) -> None:
    """Text with a NUL character is bad input, refused before anything runs.

    PostgreSQL cannot store NUL at all, and in a name, an e-mail or a CSV cell it is
    never meant. graphql-core's String and ID are one object each for the process,
    shared by every schema, so their input parsers are wrapped once, here.
    """
    if getattr(scalar, "refuses_nul", False):
        return
    for name in ("parse_value", "parse_literal", "coerce_input_value", "coerce_input_literal"):
        parse = getattr(scalar, name, None)
        if parse is not None:
            setattr(scalar, name, _without_nul(parse, scalar.name))
    scalar.refuses_nul = True  # type: ignore[attr-defined]


def _without_nul(parse: Callable[..., Any], name: str) -> Callable[..., Any]:
    def parse_checked(*args: Any, **kwargs: Any) -> Any:
        text = parse(*args, **kwargs)
        if isinstance(text, str) and "\x00" in text:
            raise GraphQLError(f"{name} values may not contain NUL (\\u0000) characters")
        return text

    return parse_checked


def build_schema(settings: Settings) -> strawberry.Schema:
    _refuse_nul(GraphQLString)
    _refuse_nul(GraphQLID)
    return NumbraSchema(
        query=Query,
        mutation=Mutation,
        config=StrawberryConfig(scalar_map={datetime: DATETIME}),
        extensions=[
            *limit_extensions(settings.max_query_depth, settings.max_aliases, settings.max_tokens),
            ErrorPolicy,
        ],
    )
