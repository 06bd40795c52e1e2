"""The assembled schema: every domain's queries and mutations, with limits and error policy."""

import functools
from datetime import datetime
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext
from strawberry.types.base import StrawberryObjectDefinition

from resolvers.access import AccessMutations, AccessQueries
from resolvers.allocation import AllocationMutations
from resolvers.customer import CustomerMutations
from resolvers.events import EventQueries, EventSubscriptions
from resolvers.numbers import NumberMutations, NumberQueries
from resolvers.operators import OperatorMutations, OperatorQueries
from resolvers.organizations import OrganizationMutations, OrganizationQueries
from resolvers.policy import PolicyMutations
from resolvers.porting import PortingMutations, PortingQueries
from resolvers.search import SearchQueries
from resolvers.series import SeriesMutations, SeriesQueries
from resolvers.terms import TermMutations
from resolvers.tokens import TokenMutations, TokenQueries
from resolvers.webhooks import WebhookMutations, WebhookQueries
from schema.common import DATETIME
from schema.errors import log_unexpected
from schema.extensions import request_pipeline
from schema.fast_execution import FastExecutor
from schema.inputs import compile_inputs
from settings import Settings


@strawberry.type
class Query(
    AccessQueries,
    OrganizationQueries,
    NumberQueries,
    SearchQueries,
    SeriesQueries,
    TokenQueries,
    EventQueries,
    OperatorQueries,
    WebhookQueries,
    PortingQueries,
):
    pass


@strawberry.type
class Mutation(
    OrganizationMutations,
    SeriesMutations,
    NumberMutations,
    AllocationMutations,
    AccessMutations,
    PolicyMutations,
    TokenMutations,
    OperatorMutations,
    TermMutations,
    CustomerMutations,
    WebhookMutations,
    PortingMutations,
):
    pass


@strawberry.type
class Subscription(EventSubscriptions):
    pass


class NumbraSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log as the error policy says, instead of strawberry's logging every error."""
        context: Any = execution_context.context if execution_context else None
        log_unexpected(errors, getattr(context, "request_id", "-"))


def build_schema(settings: Settings) -> strawberry.Schema:
    """The schema for these settings' limits and execution path: built once per process
    for each (an app made again, as every test makes one, takes the same schema; a
    build is ~40 ms, most of what making an app costs)."""
    return _built(
        settings.max_query_depth,
        settings.max_aliases,
        settings.max_tokens,
        settings.fast_execution,
    )


@functools.lru_cache(maxsize=16)
def _built(max_depth: int, max_aliases: int, max_tokens: int, fast: bool) -> strawberry.Schema:
    schema = NumbraSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(scalar_map={datetime: DATETIME}),
        extensions=[request_pipeline(max_depth, max_aliases, max_tokens)],
        execution_context_class=FastExecutor if fast else None,
    )
    compile_inputs(input_definitions(schema), schema)
    return schema


def input_definitions(schema: strawberry.Schema) -> list[StrawberryObjectDefinition]:
    """The definitions of the schema's input types."""
    return [
        concrete.definition
        for concrete in schema.schema_converter.type_map.values()
        if isinstance(concrete.definition, StrawberryObjectDefinition)
        and concrete.definition.is_input
    ]
