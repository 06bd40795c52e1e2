"""The assembled schema: every domain's queries and mutations, with limits and error policy."""

import logging
from datetime import datetime
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from domain.errors import DomainError
from resolvers.access import AccessMutations, AccessQueries
from resolvers.inventory import AllocationMutations, InventoryQueries
from resolvers.numbers import NumberMutations, NumberQueries
from resolvers.organizations import OrganizationMutations, OrganizationQueries
from resolvers.series import SeriesMutations, SeriesQueries
from schema.common import DATETIME
from schema.extensions import ErrorPolicy, limit_extensions
from schema.nul_refusal import NUL_REFUSAL
from settings import Settings

log = logging.getLogger("numbra.graphql")


@strawberry.type
class Query(AccessQueries, OrganizationQueries, NumberQueries, InventoryQueries, SeriesQueries):
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


def build_schema(settings: Settings) -> strawberry.Schema:
    return NumbraSchema(
        query=Query,
        mutation=Mutation,
        config=StrawberryConfig(scalar_map={datetime: DATETIME}),
        extensions=[
            *limit_extensions(settings.max_query_depth, settings.max_aliases, settings.max_tokens),
            *NUL_REFUSAL,
            ErrorPolicy,
        ],
    )
