"""Input values converted by the compiled converters (schema/inputs.py) equal strawberry's.

Every input type of the served schema, with every field given, every nullable one null,
and only the required ones: the value built by the type's compiled `from_input` and the
one strawberry's `convert_argument` builds without it are equal, of the same class, and
lists are fresh copies (graphql-core hands every request the same default list). Leaf
values are markers of their own per field, so a value put in the wrong field shows.
"""

from collections.abc import Iterator
from typing import Any

import pytest
import strawberry
from strawberry.types.arguments import convert_argument
from strawberry.types.base import (
    StrawberryList,
    StrawberryObjectDefinition,
    StrawberryOptional,
    StrawberryType,
    has_object_definition,
)
from strawberry.types.lazy_type import LazyType

from schema.build import build_schema, input_definitions
from schema.inputs import compile_inputs
from settings import Settings

SCHEMA = build_schema(Settings(_env_file=None))
DEFINITIONS = input_definitions(SCHEMA)
SHAPES = ("every field", "nulls", "required only")


class Marker:
    """A leaf value: passed through by both conversions, told apart by identity."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


def test_every_input_type_has_a_compiled_converter() -> None:
    assert DEFINITIONS, "the schema has input types"
    assert [d.name for d in DEFINITIONS if d.from_input is None] == []


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("definition", DEFINITIONS, ids=lambda d: d.name)
def test_the_compiled_converter_builds_what_strawberry_builds(
    definition: StrawberryObjectDefinition, shape: str
) -> None:
    value = _value(definition, shape, depth=0)
    compiled = _convert(definition, value)
    plain = _without_compiled(lambda: _convert(definition, value))

    assert type(compiled) is type(plain) is definition.origin
    assert compiled == plain
    for list_field in _lists(compiled):
        assert all(list_field is not given for given in _given_lists(value)), "a list is copied"


def test_a_converter_that_put_a_value_in_the_wrong_field_would_be_caught() -> None:
    """The markers tell fields apart: swapping two given values changes the answer."""
    definition = next(d for d in DEFINITIONS if d.name == "NumberFilter")
    value = _value(definition, "every field", depth=0)
    swapped = dict(value)
    swapped["sku"], swapped["vendor"] = value["vendor"], value["sku"]
    assert _convert(definition, value) != _without_compiled(lambda: _convert(definition, swapped))


def _convert(definition: StrawberryObjectDefinition, value: dict[str, Any]) -> Any:
    return convert_argument(
        value, definition.origin, SCHEMA.schema_converter.scalar_registry, SCHEMA.config
    )


def _without_compiled(convert: Any) -> Any:
    """Run `convert` with strawberry's own conversion for every input type."""
    kept = {definition: definition.from_input for definition in DEFINITIONS}
    try:
        for definition in DEFINITIONS:
            definition.from_input = None
        return convert()
    finally:
        for definition, from_input in kept.items():
            definition.from_input = from_input


def _value(definition: StrawberryObjectDefinition, shape: str, depth: int) -> dict[str, Any]:
    """An input value as graphql-core hands it over: keyed by GraphQL names."""
    value: dict[str, Any] = {}
    for field in definition.fields:
        name = SCHEMA.config.name_converter.from_field(field)
        type_ = field.resolve_type(type_definition=definition)
        optional = isinstance(type_, StrawberryOptional)
        if shape == "required only" and optional:
            continue
        if shape == "nulls" and optional:
            value[name] = None
            continue
        value[name] = _of_type(type_, f"{definition.name}.{name}", shape, depth)
    return value


def _of_type(type_: StrawberryType | type, name: str, shape: str, depth: int) -> Any:
    if isinstance(type_, LazyType):
        type_ = type_.resolve_type()
    if isinstance(type_, StrawberryOptional):
        return _of_type(type_.of_type, name, shape, depth)
    if isinstance(type_, StrawberryList):
        return [_of_type(type_.of_type, f"{name}[{i}]", shape, depth) for i in range(2)]
    if has_object_definition(type_) and type_.__strawberry_definition__.is_input:
        nested = type_.__strawberry_definition__
        return _value(nested, shape if depth < 2 else "required only", depth + 1)
    return Marker(name)


def _lists(converted: Any) -> Iterator[list[Any]]:
    for field_value in vars(converted).values():
        if isinstance(field_value, list):
            yield field_value
            for item in field_value:
                if has_object_definition(type(item)):
                    yield from _lists(item)
        elif has_object_definition(type(field_value)):
            yield from _lists(field_value)


def _given_lists(value: Any) -> Iterator[list[Any]]:
    if isinstance(value, list):
        yield value
        for item in value:
            yield from _given_lists(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _given_lists(item)


@strawberry.input
class _Inner:
    label: str
    tags: list[str] | None = None


@strawberry.input
class _Outer:
    name: str
    nickname: str | None  # no default: strawberry leaves it None when omitted
    inner: _Inner | None = None
    inners: list[_Inner] | None = None
    codes: list[int] = strawberry.field(default_factory=lambda: [1, 2])


@strawberry.type
class _Query:
    @strawberry.field
    def echo(self, value: _Outer) -> str:
        return repr(value)


def test_a_field_without_a_default_is_none_when_omitted_and_defaults_are_kept() -> None:
    """Shapes the served schema happens not to have: an optional field with no default,
    a default list, inputs nested in a list."""
    schema = strawberry.Schema(query=_Query)
    definitions = [_Inner.__strawberry_definition__, _Outer.__strawberry_definition__]  # type: ignore[attr-defined]
    for definition in definitions:
        definition.from_input = None
    plain = schema.execute_sync('{ echo(value: {name: "a", inners: [{label: "b"}]}) }')
    compile_inputs(definitions, schema)
    assert all(definition.from_input is not None for definition in definitions)
    compiled = schema.execute_sync('{ echo(value: {name: "a", inners: [{label: "b"}]}) }')
    assert plain.errors is None
    assert compiled.data == plain.data
    assert "nickname=None" in str(compiled.data)
