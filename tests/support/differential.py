"""The differential test of the fast execution path (docs/fast_execution.md).

With NUMBRA_DIFFERENTIAL=1 (tests/conftest.py installs it), every query operation the
test suite sends is executed twice: first as served (the fast path, whose answer the
test gets), then again the plain graphql-core way (`schema.fast_execution.PLAIN`) with the
same variables, context and extensions. The two answers, data and errors after the
error policy, are serialised to canonical JSON (keys in response order, compact, no
ASCII escaping) and must be equal byte for byte; a difference is recorded in
`MISMATCHES` with both texts, and the test that sent the query fails
(tests/conftest.py checks after every test).

Mutations are not run twice (the second run would act again): their payloads are
completed by the same code as a query's fields, which the queries cover. The second
run reads through the request's DataLoaders and is not counted by StatementCounter
(`replaying()`), so statement-count tests hold in this mode too.
"""

import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError, OperationType, get_operation_ast, parse
from strawberry.types import ExecutionResult

from schema.build import NumbraSchema
from schema.fast_execution import PLAIN

ENV = "NUMBRA_DIFFERENTIAL"
# A file each test process appends its count of compared queries to (the slow test's).
REPORT_ENV = "NUMBRA_DIFFERENTIAL_REPORT"


@dataclass(frozen=True)
class Mismatch:
    query: str
    variables: Any
    fast: str
    plain: str

    def __str__(self) -> str:
        return (
            f"the fast path answered differently from graphql-core\n  query: {self.query}\n"
            f"  variables: {self.variables}\n  fast:  {self.fast}\n  plain: {self.plain}"
        )


MISMATCHES: list[Mismatch] = []
COMPARED: list[int] = [0]  # queries compared so far, in this process


def enabled() -> bool:
    return os.environ.get(ENV) == "1"


def replaying() -> bool:
    """Whether the current task is running the plain second execution."""
    return PLAIN.get()


def canonical(result: ExecutionResult) -> str:
    """An answer as canonical JSON: data and errors (message, locations, path,
    extensions), keys in the order the response has them."""
    answer: dict[str, Any] = {"data": result.data}
    if result.errors:
        answer["errors"] = [error.formatted for error in result.errors]
    return json.dumps(answer, separators=(",", ":"), ensure_ascii=False, default=repr)


def is_query(query: str | None, operation_name: str | None) -> bool:
    if not query:
        return False
    try:
        document = parse(query)
    except GraphQLError:
        return False
    operation = get_operation_ast(document, operation_name)
    return operation is not None and operation.operation is OperationType.QUERY


Execute = Callable[..., Awaitable[ExecutionResult]]


def compared_execute(original: Execute) -> Execute:
    """NumbraSchema.execute, with every query run again the plain way and compared."""

    async def execute(self: NumbraSchema, query: str | None, *args: Any, **kwargs: Any) -> Any:
        result = await original(self, query, *args, **kwargs)
        if PLAIN.get():
            return result
        variables = args[0] if args else kwargs.get("variable_values")
        operation_name = args[3] if len(args) > 3 else kwargs.get("operation_name")
        if not is_query(query, operation_name):
            return result
        token = PLAIN.set(True)
        try:
            plain = await original(self, query, *args, **kwargs)
        finally:
            PLAIN.reset(token)
        COMPARED[0] += 1
        fast_text, plain_text = canonical(result), canonical(plain)
        if fast_text != plain_text:
            MISMATCHES.append(Mismatch(str(query), variables, fast_text, plain_text))
        return result

    execute.__wrapped__ = original  # type: ignore[attr-defined]
    return execute


def install() -> None:
    """Compare from now on, in this process (idempotent)."""
    current = NumbraSchema.execute
    if getattr(current, "__wrapped__", None) is None:
        NumbraSchema.execute = compared_execute(current)  # type: ignore[method-assign,assignment]


def uninstall() -> None:
    wrapped = getattr(NumbraSchema.execute, "__wrapped__", None)
    if wrapped is not None:
        NumbraSchema.execute = wrapped  # type: ignore[method-assign]


def take_mismatches() -> list[Mismatch]:
    found = list(MISMATCHES)
    MISMATCHES.clear()
    return found


def report() -> None:
    """Append this process's count of compared queries to the REPORT_ENV file, if set."""
    path = os.environ.get(REPORT_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(f"{COMPARED[0]}\n")
