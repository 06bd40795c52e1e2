"""Text with a NUL character is bad input, refused before anything runs.

PostgreSQL cannot store NUL at all, and in a name, an e-mail or a CSV cell it is never
meant. A validation rule refuses it in the document's string literals (validated once
per document, so the validation cache keeps the verdict); a check of the operation's
variables refuses it in what they carry, before execution. Both answer as graphql-core
does for a value it cannot coerce.
"""

from collections.abc import Iterator
from typing import Any

from graphql import (
    ExecutionResult,
    GraphQLError,
    StringValueNode,
    ValidationRule,
    get_named_type,
    get_operation_ast,
)
from strawberry.types import ExecutionContext

NUL = "\x00"


def _nul_message(type_name: str) -> str:
    return f"{type_name} values may not contain NUL (\\u0000) characters"


class NulInLiterals(ValidationRule):
    def enter_string_value(self, node: StringValueNode, *_args: object) -> None:
        if NUL in node.value:
            expected = get_named_type(self.context.get_input_type())
            message = _nul_message(expected.name if expected else "String")
            self.report_error(GraphQLError(message, node))


def refuse_nul_variables(context: ExecutionContext) -> None:
    """Answers an operation whose variables carry a NUL with errors, instead of running it
    (called as execution starts)."""
    errors = _variable_errors(context)
    if errors:
        # A result set before execution is the answer: strawberry runs nothing.
        context.result = ExecutionResult(data=None, errors=errors)


def _variable_errors(context: ExecutionContext) -> list[GraphQLError]:
    document = context.graphql_document
    operation = get_operation_ast(document, context.operation_name) if document else None
    if operation is None or not context.variables:
        return []
    errors = []
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        for path in _paths_to_nul(context.variables.get(name), ""):
            # Variables are not typed here: they travel as JSON strings, so "String".
            at = f" at {path}" if path else ""
            message = f"Variable '${name}' has invalid value{at}: {_nul_message('String')}"
            errors.append(GraphQLError(message, definition))
    return errors


def _paths_to_nul(value: Any, path: str) -> Iterator[str]:
    """Where in a variable's value a string holds a NUL, as graphql-core writes a path."""
    if isinstance(value, str):
        if NUL in value:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _paths_to_nul(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths_to_nul(item, f"{path}[{index}]")
