"""SELECTs made once, compiled once per database, run straight on the driver.

SQLAlchemy's Core execution of a statement already made and compiled still costs
~300 µs of Python (its cache key, an execution context, the result's metadata, two
greenlet switches; measured on this project's bench machine) against ~16 µs for
SQLite's own work on an indexed read and ~200 µs for asyncpg's round trip. An
organization view runs seven statements. A `Prepared` statement keeps, per database
and per length of each list parameter, the SQL and where each positional parameter
comes from, and runs it with one driver call (`execute_fetchall` on SQLite, `fetch`
on asyncpg), applying the same bind and result processors SQLAlchemy would: the
rows are equal, which tests/models/test_prepared.py checks on both databases.

Listeners of `before_cursor_execute` (the tests' statement counters, the bench's
capture of what to replay as its floor) see these statements too. Anything the
driver raises sends the statement through SQLAlchemy instead, which reports the
error as every other statement's (and invalidates the pool on a lost connection):
only reads go through here, so running one again changes nothing.
"""

import logging
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from models.database import Reads

log = logging.getLogger(__name__)

_Processor = Callable[[Any], Any] | None
# Forms kept per statement and database (one per length of its lists: a view of 3
# organizations and one of 40 run two).
FORMS = 64
# Any SELECT, of any columns.
AnySelect = sa.Select[*tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class _Slot:
    """A parameter's place while a form is made: the caller's `name`, or its list's
    item `index`."""

    name: str
    index: int = -1


@dataclass(frozen=True, slots=True)
class _Form:
    """The statement as one database runs it, for lists of given lengths."""

    sql: str
    # Per positional parameter: the caller's parameter, its list's item (or -1), the
    # bind processor; or, for a value the statement carries, that value (name None).
    places: tuple[tuple[str | None, int, _Processor, Any], ...]

    def arguments(self, parameters: Mapping[str, Any]) -> list[Any]:
        arguments = []
        for name, index, process, constant in self.places:
            if name is None:
                arguments.append(constant)
                continue
            value = parameters[name] if index < 0 else parameters[name][index]
            arguments.append(value if process is None else process(value))
        return arguments


class _Compiled:
    """The statement compiled for one database, and its forms made so far."""

    def __init__(self, statement: AnySelect, dialect: Dialect, row: type | None) -> None:
        self.dialect = dialect
        self.compiled = statement.compile(dialect=dialect)
        columns = statement.selected_columns
        self.processors: tuple[_Processor, ...] = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )
        self.processed = any(self.processors)
        self.row = row or namedtuple("Row", columns.keys(), rename=True)
        self.forms: dict[tuple[tuple[str, int], ...], _Form] = {}

    def form(self, parameters: Mapping[str, Any]) -> _Form:
        shape = tuple(
            (name, len(value) if isinstance(value, list | tuple) else -1)
            for name, value in parameters.items()
        )
        form = self.forms.get(shape)
        if form is None:
            if len(self.forms) >= FORMS:
                del self.forms[next(iter(self.forms))]  # the oldest made
            form = self.forms[shape] = self._make_form(shape)
        return form

    def _make_form(self, shape: tuple[tuple[str, int], ...]) -> _Form:
        slots = {
            name: [_Slot(name, i) for i in range(length)] if length >= 0 else _Slot(name)
            for name, length in shape
        }
        expanded = self.compiled.construct_expanded_state(slots)
        assert expanded.positiontup is not None
        places: list[tuple[str | None, int, _Processor, Any]] = []
        for key in expanded.positiontup:
            value = expanded.parameters[key]
            process = expanded.processors.get(key) or self._bind_processor(key)
            if isinstance(value, _Slot):
                places.append((value.name, value.index, process, None))
            else:
                places.append((None, -1, None, value if process is None else process(value)))
        return _Form(expanded.statement, tuple(places))

    def _bind_processor(self, name: str) -> _Processor:
        bind = self.compiled.binds.get(name)
        if bind is None:
            return None
        return bind.type.dialect_impl(self.dialect).bind_processor(self.dialect)

    def rows(self, found: Sequence[Any]) -> list[Any]:
        make = self.row._make  # type: ignore[attr-defined]
        if not self.processed:
            return [make(row) for row in found]
        steps = self.processors
        return [
            make([v if p is None else p(v) for p, v in zip(steps, row, strict=True)])
            for row in found
        ]


class Prepared:
    """A SELECT run straight on the driver of a connection (see the module's doc)."""

    def __init__(self, statement: AnySelect, row: type | None = None) -> None:
        """`row`: the named tuple class its rows are (one of the statement's columns
        in order); by default one named after them."""
        if statement.compile().literal_execute_params:
            raise ValueError("a prepared statement renders no value into its SQL")
        self.statement = statement
        self.row = row
        self._compiled: dict[str, _Compiled] = {}

    def __repr__(self) -> str:
        return f"Prepared({self.statement})"

    async def rows(self, reads: Reads, parameters: Mapping[str, Any] | None = None) -> list[Any]:
        """The rows, as named tuples in the statement's column order. A session runs it
        through SQLAlchemy (it may have changes to flush first); so does an engine that
        echoes its SQL."""
        parameters = parameters or {}
        if not isinstance(reads, AsyncConnection) or reads.sync_engine.echo:
            return list((await reads.execute(self.statement, parameters)).all())
        dialect = reads.dialect
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _Compiled(self.statement, dialect, self.row)
        form = compiled.form(parameters)
        arguments = form.arguments(parameters)
        connection = reads.sync_connection
        assert connection is not None
        listeners = connection.dispatch.before_cursor_execute
        if listeners:
            listeners(connection, None, form.sql, tuple(arguments), None, False)
        try:
            driver = connection.connection.driver_connection
            if dialect.name == "sqlite":
                found = await driver.execute_fetchall(form.sql, arguments)  # type: ignore[union-attr]
            else:
                found = await driver.fetch(form.sql, *arguments)  # type: ignore[union-attr]
        except Exception as error:
            log.warning(
                "the driver refused a prepared statement (%s); running it through SQLAlchemy",
                type(error).__name__,
            )
            return list((await reads.execute(self.statement, parameters)).all())
        return compiled.rows(found)
