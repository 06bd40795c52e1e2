"""Query limits and the parse and validation caches, built once per schema so the caches
keep working: rule classes made per request would never hit the cache."""

import functools
from collections.abc import Callable

from graphql import ASTValidationRule
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)

from schema.limits import limit_rule

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
