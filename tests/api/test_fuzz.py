"""Fuzzing: generated requests never break the API, its pattern language or the CSV reader.

- schemathesis, in its GraphQL mode, sends every query and mutation of the served
  app generated documents (valid ones and ones that break the schema's types), with
  an ADMIN token, on SQLite and PostgreSQL: no 5xx, every response a GraphQL
  response (data and/or errors, non-null fields never null), every error refused
  before running (400) or carrying a domain error code, never a masked internal error.
- hypothesis: every pattern of the contract's language finds exactly what a plain
  reading of the contract does, its digits written in any script (read as ASCII);
  anything else is a VALIDATION error naming it.
- hypothesis: the CSV reader survives any bytes, reports each bad row on the line
  where its record starts, and hands good rows on as they were written, numbers in
  other digit scripts and ranges in any notation read as their ASCII E.164.

NUMBRA_FUZZ_EXAMPLES sets the examples per operation (and scales the properties):
small in `make test`, large in `make fuzz`.
"""

import asyncio
import csv
import fnmatch
import io
import os
import random
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import schemathesis
from graphql import (
    ArgumentNode,
    FieldNode,
    GraphQLError,
    NameNode,
    ObjectFieldNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    Visitor,
    parse,
    print_ast,
    visit,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.transport import Response
from schemathesis.generation.case import Case
from schemathesis.graphql import nodes
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.graphql.schemas import GraphQLSchema
from starlette.types import ASGIApp, Receive, Scope, Send

from domain import access, numbers, organizations, phone, tokens
from domain.access import Caller
from domain.clock import ManualClock
from domain.csv.imports import CHUNK
from domain.csv.rows import BadRow, Row, RowReader
from domain.details import NumberDetails
from domain.errors import ErrorCode
from domain.policy import Policy
from domain.text import refused_characters
from models import NumberState, OrganizationKind, Role, Series
from models.database import Database
from schema.build import build_schema
from settings import Settings
from tests.support.api import Api
from tests.support.databases import empty_postgresql
from web.app import create_app

FUZZ_EXAMPLES = int(os.environ.get("NUMBRA_FUZZ_EXAMPLES", "8"))
CODES = {code.value for code in ErrorCode}
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

pytestmark = pytest.mark.slow

# Times with any offset a datetime takes, the edges of the range among them, and times
# that the offset carries out of it once moved to UTC (refused as bad input).
OFFSETS = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
OUT_OF_RANGE = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59-00:01"]
EDGES = [datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)]
TIMES = (
    st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat)
    | st.builds(lambda at, zone: at.replace(tzinfo=zone).isoformat(), st.datetimes(), OFFSETS)
    | st.sampled_from([*OUT_OF_RANGE, *(at.isoformat() for at in EDGES)])
)
schemathesis.graphql.scalar("DateTime", TIMES.map(nodes.String))
schemathesis.graphql.scalar("UUID", st.uuids().map(lambda key: nodes.String(str(key))))

# Text a client should not send, put into one string of a generated document: control
# characters and line breaks (in every text field in turn), digits of other scripts
# (full-width, Arabic-Indic, Devanagari...), lone surrogates.
CONTROLS = st.characters(categories=["Cc", "Zl", "Zp"])
OTHER_DIGITS = st.characters(categories=["Nd"]).filter(lambda digit: not digit.isascii())
SURROGATES = st.characters(categories=["Cs"])
# The input fields whose text is stored: free text (line breaks and tabs are theirs), and
# lines. (Numbers and ids are read, not stored as given.)
FREE_TEXT_FIELDS = {"notes", "remark"}
STORED_TEXT_FIELDS = FREE_TEXT_FIELDS | {
    "name",
    "billingEmail",
    "ownerEmail",
    "supportEmail",
    "vendor",
    "sku",
    "routing",
    "visibleToDomain",
    "tag",
}
# Added to each mutation's payload: the fields its userErrors name.
REFUSED = "refusedFields"
USER_ERRORS = FieldNode(
    alias=NameNode(value=REFUSED),
    name=NameNode(value="userErrors"),
    selection_set=SelectionSetNode(selections=(FieldNode(name=NameNode(value="field")),)),
)


@dataclass(frozen=True)
class Hostile:
    kind: str
    text: str


@st.composite
def hostile_texts(draw: st.DrawFn) -> Hostile:
    kind = draw(st.sampled_from(["control", "digits", "surrogate"]))
    if kind == "digits":
        digits = draw(st.lists(OTHER_DIGITS | st.sampled_from("0123456789"), min_size=1))
        return Hostile(kind, draw(st.sampled_from(["", "+", "+65"])) + "".join(digits))
    odd = draw(CONTROLS if kind == "control" else SURROGATES)
    around = draw(st.text(max_size=8))
    at = draw(st.integers(0, len(around)))
    return Hostile(kind, around[:at] + odd + around[at:])


class _Strings(Visitor):
    """The string values of a document, in order: each the input field or argument it is
    for; or, given `replace` (its index and a text), the document with that one changed."""

    def __init__(self, replace: tuple[int, str] | None = None) -> None:
        super().__init__()
        self.fields: list[str] = []
        self.replace = replace

    def enter_string_value(
        self, node: StringValueNode, _key: Any, parent: Any, _path: Any, ancestors: Any
    ) -> StringValueNode | None:
        owner = next(
            (
                a
                for a in reversed([*ancestors, parent])
                if isinstance(a, ObjectFieldNode | ArgumentNode)
            ),
            None,
        )
        self.fields.append(owner.name.value if owner is not None else "")
        if self.replace is not None and self.replace[0] == len(self.fields) - 1:
            return StringValueNode(value=self.replace[1])
        return None


def with_hostile_text(document: object, data: st.DataObject) -> tuple[str, Hostile, str] | None:
    """The document with one of its strings made hostile, the text, and its field."""
    assert isinstance(document, str)
    try:
        ast = parse(document)
    except GraphQLError:
        return None
    strings = _Strings()
    visit(ast, strings)
    if not strings.fields:
        return None
    index = data.draw(st.integers(0, len(strings.fields) - 1))
    hostile = data.draw(hostile_texts())
    changed = visit(visit(ast, _Strings((index, hostile.text))), _SelectUserErrors())
    return print_ast(changed), hostile, strings.fields[index]


class _SelectUserErrors(Visitor):
    """Each mutation's payload selects its userErrors' fields, so an answer shows which
    input fields were refused."""

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> Any:
        if node.operation is not OperationType.MUTATION:
            return self.SKIP
        return None

    def enter_selection_set(self, node: SelectionSetNode, _key: Any, parent: Any, *_: Any) -> Any:
        if not isinstance(parent, OperationDefinitionNode):
            return None
        selections = [
            _with_user_errors(selection) if isinstance(selection, FieldNode) else selection
            for selection in node.selections
        ]
        return SelectionSetNode(selections=tuple(selections))


def _with_user_errors(field: FieldNode) -> FieldNode:
    chosen = field.selection_set
    if chosen is None:
        return field
    return FieldNode(
        alias=field.alias,
        name=field.name,
        arguments=field.arguments,
        directives=field.directives,
        selection_set=SelectionSetNode(selections=(*chosen.selections, USER_ERRORS)),
    )


# ---- schemathesis against the served app ----


def _operations() -> list[tuple[str, str]]:
    """(root type, field) of every query and mutation the app serves."""
    served = build_schema(Settings(_env_file=None))._schema
    return [
        (root.name, field)
        for root in (served.query_type, served.mutation_type)
        if root is not None
        for field in sorted(root.fields)
    ]


async def _seed(url: str, clock: ManualClock) -> str:
    """A root with a partner, a series and some numbers, for generated ids to miss or hit."""
    db = Database(url)
    try:
        async with db.write() as session:
            root, _ = await organizations.ensure_root(session, "Provider", clock)
            token = await tokens.issue(session, root, "fuzz", Role.ADMIN, clock)
            partner = organizations.OrganizationFields(name="Partner")
            await organizations.add_child(session, root, OrganizationKind.PARTNER, clock, partner)
            session.add(Series(name="SG 61", prefix="+6561", country="SG", created_at=clock.now()))
        async with db.write() as session:
            viewer = await access.authenticate(session, token)
            assert viewer is not None
            await numbers.add(
                session,
                Caller(viewer, clock, Policy()),
                [f"+656100{i:04d}" for i in range(20)],
                vendor="Singtel",
                country="SG",
                organization_id=None,
                details=NumberDetails(sku="DID"),
            )
    finally:
        await db.dispose()
    return token


class _WithoutJobs:
    """The app, its lifespan only closing its database: schemathesis serves it on an event
    loop of its own, and the in-process jobs (sweeps) would only add noise to the run."""

    def __init__(self, app: ASGIApp, db: Database) -> None:
        self.app = app
        self.db = db

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while (await receive())["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        await self.db.dispose()
        await send({"type": "lifespan.shutdown.complete"})


@dataclass(frozen=True)
class Target:
    schema: GraphQLSchema
    headers: dict[str, str]


@pytest.fixture
def target(database_url: str) -> Iterator[Target]:
    """The app on a seeded database, loaded into schemathesis by introspection."""
    clock = ManualClock(NOW)
    headers = {"Authorization": f"Bearer {asyncio.run(_seed(database_url, clock))}"}
    db = Database(database_url)
    # Every example is charged to one token while the clock stands still: no budget ends it.
    settings = Settings(_env_file=None, database_url=database_url, cost_budget_per_minute=10**12)
    app = create_app(settings, db=db, clock=clock)
    try:
        schema = schemathesis.graphql.from_asgi("/graphql", _WithoutJobs(app, db), headers=headers)
        yield Target(schema, headers)
    finally:
        shutdown_lifespans()
        if not database_url.startswith("sqlite"):
            asyncio.run(empty_postgresql(database_url))


def check_response(case: Case[Any], response: Response) -> None:
    """What every answer to a generated operation must be."""
    assert response.status_code < 500, (case.body, response.text)
    # schemathesis: a JSON object, and no non-null field answered with null.
    case.operation.validate_response(response, case=case)
    body: dict[str, Any] = response.json()
    assert set(body) <= {"data", "errors", "extensions"}, body
    errors: list[dict[str, Any]] = body.get("errors", [])
    if response.status_code == 400:
        # Refused before running: the document does not validate against the schema, or
        # the body holds no document (then without data: a request error).
        assert body.get("data") is None, body
        assert errors, body
        assert all("path" not in error for error in errors), body
        return
    assert response.status_code == 200, (response.status_code, body)
    assert "data" in body, body
    for error in errors:
        code = error.get("extensions", {}).get("code")
        assert code != "INTERNAL", f"masked internal error for {case.body!r}: {error}"
        assert code in CODES, f"an error without a domain code for {case.body!r}: {error}"


def test_generated_operations_get_well_formed_answers(
    target: Target, subtests: pytest.Subtests
) -> None:
    # One test over every operation (each a subtest): no other test's database work
    # can interleave with the seeded database it needs.
    for root, field in _operations():
        with subtests.test(operation=f"{root}.{field}"):
            answers(target, root, field)()


def answers(target: Target, root: str, field: str) -> Callable[[], None]:
    """The property of one operation: its generated documents, some with a hostile text
    in one of their strings, get well-formed answers; a mutation takes no text a field
    may not hold."""
    operation = target.schema[root][field]
    cases = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
        GenerationMode.NEGATIVE
    )

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=cases, data=st.data())
    def answered(case: Case[Any], data: st.DataObject) -> None:
        rewritten = with_hostile_text(case.body, data) if data.draw(st.booleans()) else None
        if rewritten is not None:
            case.body, hostile, input_field = rewritten
        response = case.call(headers=target.headers)
        check_response(case, response)
        if rewritten is not None and root == "Mutation":
            check_taken(response, input_field, hostile, f"{root}.{field}")

    return answered


def check_taken(response: Response, field: str, hostile: Hostile, operation: str) -> None:
    """A control character (or a lone surrogate) a stored text field may not hold is never
    taken: the request is refused, or a userError names the field."""
    if hostile.kind == "digits" or field not in STORED_TEXT_FIELDS:
        return
    if not refused_characters(hostile.text, free_text=field in FREE_TEXT_FIELDS):
        return
    body: dict[str, Any] = response.json()
    if body.get("errors"):
        return
    for payload in (body.get("data") or {}).values():
        if isinstance(payload, dict) and REFUSED in payload:
            named = [error["field"][-1] for error in payload[REFUSED] if error["field"]]
            assert field in named, (operation, field, hostile, payload)


# ---- the pattern language ----


def _inventory() -> list[str]:
    """Thirty-odd valid numbers of two countries, their digits drawn from a few so that
    patterns find some and not others."""
    draw = random.Random(2026)
    candidates = (
        [f"+656{draw.choice('156')}{''.join(draw.choices('0156', k=6))}" for _ in range(16)]
        + [f"+659{''.join(draw.choices('0156', k=7))}" for _ in range(8)]
        + [f"+4420794600{draw.choice('0156')}{draw.choice('0156')}" for _ in range(10)]
    )
    return sorted({e164 for e164 in candidates if phone.normalise_valid(e164) == e164})


INVENTORY = _inventory()
SEARCH = """query($p: String) {
  numbers(filter: {pattern: $p}, first: 500) { edges { node { e164 } } }
}"""


def expected_matches(pattern: str) -> set[str]:
    """The contract's reading of a pattern, over the inventory."""
    if "*" not in pattern:
        if pattern.startswith("+"):
            return {e164 for e164 in INVENTORY if e164.startswith(pattern)}
        return {e164 for e164 in INVENTORY if pattern in e164}
    whole = pattern if pattern.startswith(("+", "*")) else "+" + pattern
    # Digits and "+" are themselves to fnmatch, and "*" is any run.
    return {e164 for e164 in INVENTORY if fnmatch.fnmatchcase(e164, whole)}


def as_ascii(text: str) -> str:
    """`text` as the contract reads it: a decimal digit of any script is its ASCII digit,
    and a full-width plus is '+' (DESIGN.md: E.164 is ASCII; other digits are normalised)."""
    return "".join(
        str(unicodedata.decimal(char))
        if unicodedata.category(char) == "Nd"
        else "+"
        if char == FULL_WIDTH_PLUS
        else char
        for char in text
    )


def is_pattern(text: str) -> bool:
    """Digits and '*', at least one, after an optional leading '+'."""
    body = text.removeprefix("+")
    return body != "" and all(char in "0123456789*" for char in body)


# The zeros of some scripts of decimal digits: full-width, Arabic-Indic, extended
# Arabic-Indic, Devanagari, Thai, mathematical bold.
ZEROS = ["\uff10", "\u0660", "\u06f0", "\u0966", "\u0e50", "\U0001d7ce"]
FULL_WIDTH_PLUS = "\uff0b"


@st.composite
def in_other_scripts(draw: st.DrawFn, text: str) -> str:
    """`text` with some of its ASCII digits (and its '+') written in other scripts."""
    chars = []
    for char in text:
        if char in "0123456789" and draw(st.booleans()):
            char = chr(ord(draw(st.sampled_from(ZEROS))) + int(char))
        elif char == "+" and draw(st.booleans()):
            char = FULL_WIDTH_PLUS
        chars.append(char)
    return "".join(chars)


@st.composite
def patterns(draw: st.DrawFn) -> str:
    """A piece of an inventory number with '*' put in or put for some of its digits."""
    e164 = draw(st.sampled_from(INVENTORY))
    start = draw(st.integers(0, len(e164) - 1))
    chars = list(e164[start : draw(st.integers(start + 1, len(e164)))])
    first = 1 if chars[0] == "+" else 0
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(first, len(chars)))
        if at < len(chars) and draw(st.booleans()):
            chars[at] = "*"
        else:
            chars.insert(at, "*")
    pattern = "".join(chars)
    assume(is_pattern(pattern))
    return pattern


@pytest.fixture
async def pattern_api(api: Api) -> Api:
    for country in ("SG", "GB"):
        prefix = "+65" if country == "SG" else "+44"
        chosen = [e164 for e164 in INVENTORY if e164.startswith(prefix)]
        fields = {"vendor": "V", "country": country, "sku": "DID", "numbers": chosen}
        added = await api.gql(
            "mutation($input: AddNumbersInput!) { addNumbers(input: $input)"
            " { userErrors { message } } }",
            {"input": fields},
        )
        assert added["addNumbers"]["userErrors"] == []
    return api


@settings(
    max_examples=FUZZ_EXAMPLES * 12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    pattern=patterns()
    | patterns().flatmap(in_other_scripts)
    | st.text("+*0123456789", min_size=1, max_size=14)
    | st.text(
        st.sampled_from(["+", "*", FULL_WIDTH_PLUS, "\uff0a"]) | st.characters(categories=["Nd"]),
        min_size=1,
        max_size=14,
    )
    # A NUL is refused before any search runs, and a lone surrogate cannot be sent as
    # JSON by a client library: raw bodies with both are test_abuse.py's cases.
    | st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=14)
    | st.text("0123456789", min_size=1).map(lambda digits: "*" * 40 + digits)
)
async def test_a_pattern_finds_what_the_contract_says_or_is_a_validation_error(
    pattern_api: Api, pattern: str
) -> None:
    body = (await pattern_api.post(SEARCH, {"p": pattern})).json()
    if is_pattern(as_ascii(pattern)):
        assert "errors" not in body, (pattern, body)
        found = {edge["node"]["e164"] for edge in body["data"]["numbers"]["edges"]}
        assert found == expected_matches(as_ascii(pattern)), pattern
    else:
        [error] = body["errors"]
        assert error["extensions"]["code"] == "VALIDATION", (pattern, error)
        assert repr(pattern) in error["message"], (pattern, error)


# ---- the CSV reader ----


def read_all(data: bytes) -> tuple[list[Row], list[BadRow]]:
    """Every row and bad row of a file, read as POST /import/numbers reads it."""
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")
    reader = RowReader(csv.reader(text))
    if reader.header_problem is not None:
        return [], [reader.header_problem]
    rows: list[Row] = []
    bad: list[BadRow] = []
    while (batch := reader.take(CHUNK)) is not None:
        rows += batch.rows
        bad += batch.bad
    return rows, bad


HEADER = "number,vendor,country,sku,state,notes\n"
LINE_BREAK = re.compile(r"\r\n|\r|\n")


@settings(max_examples=FUZZ_EXAMPLES * 25, deadline=None)
@given(
    data=st.binary(max_size=400)
    | st.text(
        "+0123456789,;\"'\n\r -|abcSGLOCKED\x00\u00e9\u2013\uff10\u0661\uff0b", max_size=400
    ).map(lambda text: (HEADER + text).encode())
)
def test_any_bytes_are_read_into_rows_and_bad_rows_without_raising(data: bytes) -> None:
    rows, bad = read_all(data)

    lines = data.count(b"\n") + data.count(b"\r") + 1
    for line in [row.line for row in rows] + [row.line for row in bad]:
        assert 1 <= line <= lines, (line, lines)
    assert [row.line for row in rows] == sorted(row.line for row in rows)


@dataclass(frozen=True)
class Written:
    """A record as written, and what the reader must make of it."""

    cells: list[str]
    good: bool
    e164: str


NOTES = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)


@st.composite
def records(draw: st.DrawFn, index: int) -> Written:
    e164 = f"+65610{index:05d}"
    notes = draw(NOTES)
    kind = draw(st.sampled_from(["good", "written", "range", "number", "state", "cells", "vendor"]))
    state = draw(st.sampled_from(["", "LOCKED"]))
    # The same number in other digit scripts, or as a range of one in any notation.
    written = draw(in_other_scripts(e164))
    spaced = f"{e164[:3]} {e164[3:7]} {e164[7:]}"
    one_range = draw(
        st.sampled_from([f"{e164}-{e164}", f"{spaced} - {spaced}", f"{e164} - {e164[3:]}"])
    )
    cells = {
        "good": [e164, "Singtel", "SG", "DID", state, notes],
        "written": [written, "Singtel", "SG", "DID", state, notes],
        "range": [draw(in_other_scripts(one_range)), "Singtel", "SG", "DID", state, notes],
        "number": ["+65" + "0" * 12, "Singtel", "SG", "DID", "", notes],
        "state": [e164, "Singtel", "SG", "DID", "ASSIGNED", notes],
        "cells": [e164, "Singtel", "SG"],
        "vendor": [e164, "", "SG", "DID", "", notes],
    }[kind]
    # Notes are free text: line breaks and tabs, but no other control character.
    good = kind in ("good", "written", "range") and not refused_characters(notes, free_text=True)
    return Written(cells, good, e164)


@settings(max_examples=FUZZ_EXAMPLES * 6, deadline=None)
@given(
    written=st.integers(1, 12).flatmap(
        lambda n: st.tuples(*(records(index) for index in range(n))).map(list)
    ),
    blanks=st.lists(st.booleans(), min_size=12, max_size=12),
)
def test_bad_rows_are_reported_on_their_line_and_good_rows_read_as_written(
    written: list[Written], blanks: list[bool]
) -> None:
    text = io.StringIO()
    text.write(HEADER)
    # As the export writes: "\r\n" after each record, and any cell holding "\r" or "\n" quoted.
    writer = csv.writer(text)
    starts = []
    for record, blank_before in zip(written, blanks, strict=False):
        if blank_before:
            text.write("\n")
        # A line ends at "\r\n", "\r" or "\n", inside a quoted cell too, as editors show it.
        starts.append(len(LINE_BREAK.findall(text.getvalue())) + 1)
        writer.writerow(record.cells)

    rows, bad = read_all(text.getvalue().encode())

    good = [(start, record) for start, record in zip(starts, written, strict=True) if record.good]
    assert [row.line for row in rows] == [start for start, _ in good]
    assert [row.line for row in bad] == [
        start for start, record in zip(starts, written, strict=True) if not record.good
    ]
    for row, (_, record) in zip(rows, good, strict=True):
        state = NumberState.LOCKED if record.cells[4] else NumberState.AVAILABLE
        assert row.numbers == [record.e164]
        assert (row.fields.vendor, row.fields.sku, row.fields.state) == ("Singtel", "DID", state)
        assert row.fields.notes == (record.cells[5] or None)
