"""Input values made into their classes by a converter compiled once per input type.

strawberry converts a resolver's arguments field by field through `convert_argument`,
which works out each field's type anew on every value: is it a Maybe, an Optional, a
list, a scalar in the registry, a lazy type, an enum, an input? A NumberFilter of a
search page, 29 fields, is about 60 such calls a request, some 6% of a page's time.

Here that work is done once per input type, when the schema is built: each field gets a
converter for its type, and the type's `from_input` hook (strawberry's own, meant for
types that build their own values) runs them. The result is what `convert_argument`
makes: the same class, the same keyword arguments (an omitted field without a default
left None, a list of leaves copied, a leaf as graphql-core coerced it). A field of any
other shape, a nested input included, is handed back to strawberry's `InputContext`
(`convert_argument` itself). Types with a `Maybe` field keep strawberry's path (a
`from_input` hook would turn off its check of nulls for them).
tests/api/test_inputs.py compares both conversions over every input type of the schema.
"""

from collections.abc import Callable, Mapping
from dataclasses import MISSING
from typing import Any

from strawberry.relay import GlobalID
from strawberry.scalars import is_scalar
from strawberry.schema.config import StrawberryConfig
from strawberry.types.arguments import InputContext
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryObjectDefinition,
    StrawberryOptional,
    StrawberryType,
)
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.lazy_type import LazyType
from strawberry.types.scalar import ScalarDefinition, ScalarWrapper
from strawberry.types.unset import UNSET

Convert = Callable[[Any, InputContext], Any]
Registry = Mapping[object, ScalarWrapper | ScalarDefinition]


def compile_inputs(definitions: list[StrawberryObjectDefinition], schema: Any) -> None:
    """Give each input type of the schema its compiled `from_input` (once per type: a
    type shared by several schemas of one process keeps the first, alike for all)."""
    registry: Registry = schema.schema_converter.scalar_registry
    config: StrawberryConfig = schema.config
    for definition in definitions:
        if definition.is_input and definition.from_input is None and not _has_maybe(definition):
            definition.from_input = _from_input(definition, registry, config)


def _has_maybe(definition: StrawberryObjectDefinition) -> bool:
    return any(
        isinstance(field.resolve_type(type_definition=definition), StrawberryMaybe)
        for field in definition.fields
    )


def _from_input(
    definition: StrawberryObjectDefinition, registry: Registry, config: StrawberryConfig
) -> Callable[[type, Mapping[str, Any], InputContext], Any]:
    fields = [
        (
            config.name_converter.from_field(field),
            field.python_name,
            _converter(
                field.resolve_type(type_definition=definition),
                registry,
                config.name_converter.from_field(field),
            ),
        )
        for field in definition.fields
    ]
    # As strawberry: a field without a default of its own is None until given.
    unset = {
        field.python_name: None
        for field in definition.fields
        if field.default_value is MISSING and field.default_factory is MISSING
    }

    def from_input(cls: type, value: Mapping[str, Any], context: InputContext) -> Any:
        kwargs = dict(unset)
        for graphql_name, python_name, convert in fields:
            if graphql_name in value:
                kwargs[python_name] = convert(value[graphql_name], context)
        return cls(**kwargs)

    return from_input


def _converter(type_: StrawberryType | type, registry: Registry, key: str) -> Convert:
    if isinstance(type_, StrawberryOptional) and not isinstance(type_, StrawberryMaybe):
        inner = _converter(type_.of_type, registry, key)
        return lambda value, context: None if value is None else inner(value, context)
    if isinstance(type_, StrawberryList) and _is_leaf(_unwrapped(type_.of_type), registry):
        # Copied, as strawberry does: graphql-core hands every request the same default.
        return lambda value, context: value if value is None or value is UNSET else list(value)
    if _is_leaf(type_, registry):
        return _as_is
    # Anything else (a nested input, a list of them, a GlobalID): strawberry's own.
    return lambda value, context: context.convert(value, type_, key)


def _as_is(value: Any, _context: InputContext) -> Any:
    return value


def _unwrapped(type_: StrawberryType | type) -> StrawberryType | type:
    if isinstance(type_, StrawberryOptional) and not isinstance(type_, StrawberryMaybe):
        return type_.of_type
    return type_


def _is_leaf(type_: StrawberryType | type, registry: Registry) -> bool:
    """A value graphql-core coerced is already the Python value: scalars and enums."""
    if isinstance(type_, LazyType):
        return _is_leaf(type_.resolve_type(), registry)
    if type_ is GlobalID:
        return False
    return (
        is_scalar(type_, registry)
        or isinstance(type_, StrawberryEnumDefinition)
        or has_enum_definition(type_)
    )
