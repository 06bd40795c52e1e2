"""Where a NUL can hide in an operation, and the answer graphql-core would give for it.

tests/test_abuse.py shows the HTTP answer (400) on both databases; these run the schema
alone, as nothing gets as far as a resolver.
"""

from typing import Any

import pytest

from schema.build import build_schema
from settings import Settings

ADD = "mutation($input: AddNumbersInput!) { addNumbers(input: $input) { numbers { e164 } } }"


def add_input(**fields: Any) -> dict[str, Any]:
    return {"numbers": ["+6561000001"], "vendor": "V", "country": "SG", "sku": "S"} | fields


async def messages(query: str, variables: dict[str, Any] | None = None) -> list[str]:
    result = await build_schema(Settings(_env_file=None)).execute(query, variables)
    assert result.data is None
    return [error.message for error in result.errors or []]


@pytest.mark.parametrize(
    ("variables", "at"),
    [
        ({"input": add_input(vendor="V\x00")}, " at .vendor"),
        ({"input": add_input(numbers=["+6561000001", "+65\x00"])}, " at .numbers[1]"),
    ],
)
async def test_a_nul_deep_in_a_variable_is_refused_where_it_is(
    variables: dict[str, Any], at: str
) -> None:
    assert await messages(ADD, variables) == [
        f"Variable '$input' has invalid value{at}: "
        "String values may not contain NUL (\\u0000) characters"
    ]


async def test_a_literal_is_refused_as_the_type_it_is_read_as() -> None:
    assert await messages('{ node(id: "x\\u0000") { id } }') == [
        "ID values may not contain NUL (\\u0000) characters"
    ]


async def test_a_variable_the_operation_does_not_declare_is_not_read() -> None:
    result = await build_schema(Settings(_env_file=None)).execute(
        "query($skip: Boolean!) { __typename @skip(if: $skip) }", {"skip": False, "unused": "\x00"}
    )
    assert result.errors is None
    assert result.data == {"__typename": "Query"}
