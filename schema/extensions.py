"""Every request's rules in one schema extension: the query limits, the parse and
validation caches, the refusal of NUL characters and the error policy.

strawberry makes a request's extensions anew and, at each of its four stages, asks
every one for its hook and wraps each in a context manager made for the request: seven
extensions cost 28 lookups and 8 context managers a request (~0.1 ms, 5 % of a search
page). One extension holding them all pays for four. Its validation rule classes are
made once per schema, so the validation cache (keyed on schema, document and rule
classes) keeps hitting: rule classes made per request would never hit it.
"""

import functools
from collections.abc import Callable, Iterator
from typing import Any

from graphql import ASTValidationRule
from strawberry.extensions import ParserCache, SchemaExtension, ValidationCache

from schema.errors import error_policy
from schema.limits import limit_rule
from schema.nul_refusal import NulInLiterals, refuse_nul_variables

CACHE_SIZE = 512

# strawberry's own caches, the ones its ParserCache and ValidationCache of this size use.
_parse: Callable[..., Any] = ParserCache(maxsize=CACHE_SIZE).cached_parse_document
_validate: Callable[..., Any] = ValidationCache(maxsize=CACHE_SIZE).cached_validate_document


class RequestPipeline(SchemaExtension):
    def __init__(self, rules: tuple[type[ASTValidationRule], ...], max_tokens: int) -> None:
        self.rules = rules
        self.max_tokens = max_tokens

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.max_tokens
        context.validation_rules = context.validation_rules + self.rules
        yield from error_policy(context)

    def on_parse(self) -> Iterator[None]:
        # A document that does not parse raises here, out of strawberry's own handling:
        # the error policy (on_operation) answers it as bad input.
        context = self.execution_context
        context.graphql_document = _parse(context.query, **context.parse_options)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        context.pre_execution_errors = _validate(
            context.schema._schema, context.graphql_document, context.validation_rules
        )
        yield

    def on_execute(self) -> Iterator[None]:
        refuse_nul_variables(self.execution_context)
        yield


def request_pipeline(
    max_depth: int, max_aliases: int, max_tokens: int
) -> Callable[[], SchemaExtension]:
    """The factory strawberry calls for every request, with the same rule classes."""
    rules: tuple[type[ASTValidationRule], ...] = (limit_rule(max_depth, max_aliases), NulInLiterals)
    return functools.partial(RequestPipeline, rules, max_tokens)
