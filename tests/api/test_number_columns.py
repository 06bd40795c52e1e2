"""A page of numbers selects only the columns its GraphQL selection reads
(schema/number_columns.py), and answers as a page of whole rows does.

The SQL each page runs (captured), for every field of Number alone, for selections of
every shape (fragments, aliases, __typename, @include and @skip both ways), for the
nested organization view; the answers compared with those of the same selection made to
read whole rows; paging by cursor; projected and whole-row statements of one filter kept
apart; and a number made from a projected row refusing what its row lacks.
"""

import re
import uuid
from typing import Any

import pytest

from domain import search
from domain.access import Viewer
from domain.pagination import PageRequest
from models import Number, Role
from models.database import Database
from schema.numbers import FIELD_COLUMNS, NotSelected, NumberType, projection
from tests.support.api import Api, gid
from tests.support.databases import StatementCounter

EVERY_COLUMN = frozenset(column.name for column in Number.__table__.c)
KEY = frozenset({"id", "e164"})
# A field that reads the row itself: asked beside any selection, it makes the page read
# whole rows, and so gives the answer a projected page must equal.
WHOLE = "wholeRow: organization { __typename }"

ADD = """mutation($input: AddNumbersInput!) {
  addNumbers(input: $input) { userErrors { message } } }"""
RESERVE = """mutation($input: ReserveNumbersInput!) {
  reserveNumbers(input: $input) { userErrors { message } } }"""
LOCK = """mutation($input: LockNumbersInput!) {
  lockNumbers(input: $input) { userErrors { message } } }"""
ASSIGN = """mutation($input: AssignNumbersInput!) {
  assignNumbers(input: $input) { userErrors { message } } }"""

NUMBERS = [f"+656100000{i}" for i in range(1, 8)]


async def _mutate(api: Api, mutation: str, input: dict[str, Any]) -> None:
    payload = next(iter((await api.gql(mutation, {"input": input})).values()))
    assert payload["userErrors"] == [], payload


async def _inventory(api: Api) -> None:
    """Seven numbers of different details, available, reserved, locked and assigned."""
    for index, e164 in enumerate(NUMBERS):
        details: dict[str, Any] = {
            "numbers": [e164],
            "vendor": f"vendor {index % 2}",
            "country": "SG",
            "sku": f"DID-{index}",
            "capabilities": ["VOICE", "SMS"] if index % 2 else ["FAX"],
            "notes": f"note {index}",
            "tag": f"tag {index}" if index % 3 else None,
            "routing": "sip:edge" if index == 2 else None,
            "capacity": index,
        }
        await _mutate(api, ADD, details)
    root = gid(await api.root())
    await _mutate(api, RESERVE, {"numbers": NUMBERS[1:3], "reservedForId": root, "tag": "r"})
    await _mutate(api, LOCK, {"numbers": [NUMBERS[3]], "remark": "fraud"})
    await _mutate(api, ASSIGN, {"numbers": [NUMBERS[4]], "subscriptionUuid": str(uuid.uuid4())})


def _page_columns(statements: StatementCounter) -> list[frozenset[str]]:
    """The columns of numbers each page statement run since the last reset selected: the
    statements with a select list (their own, or a subquery's) that has numbers.e164."""
    found = []
    for sql in statements.sql:
        for select_list in re.findall(r"\bSELECT\b(.*?)\bFROM\b", sql, flags=re.DOTALL):
            columns = frozenset(re.findall(r"\bnumbers\.(\w+)", select_list))
            if "e164" in columns:
                found.append(columns)
                break
    return found


def _page(node: str, first: int = 50) -> str:
    return f"{{ numbers(first: {first}) {{ edges {{ node {{ {node} }} }} }} }}"


def _nodes(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [edge["node"] for edge in data["numbers"]["edges"]]


def _without_whole(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in node.items() if k != "wholeRow"} for node in nodes]


# ---- each field of Number alone: its columns, and the answer of whole rows ----


async def _number_fields(api: Api) -> dict[str, bool]:
    """Each field of Number, and whether it is an object (selected with `{ __typename }`)."""
    kinds = "kind ofType { kind ofType { kind ofType { kind } } }"
    query = f'{{ __type(name: "Number") {{ fields {{ name type {{ {kinds} }} }} }} }}'
    fields = (await api.gql(query))["__type"]["fields"]

    def named_kind(type_: dict[str, Any]) -> str:
        while type_["kind"] in ("NON_NULL", "LIST"):
            type_ = type_["ofType"]
        return str(type_["kind"])

    return {f["name"]: named_kind(f["type"]) in ("OBJECT", "INTERFACE") for f in fields}


async def test_each_field_selects_its_own_columns_or_the_whole_row(
    api: Api, statements: StatementCounter
) -> None:
    """A field read straight from the row selects its columns and the page's own (id,
    e164), no more; any other field selects every column. Either way the answer is that
    of a page of whole rows."""
    await _inventory(api)
    fields = await _number_fields(api)
    own = {"id": "e164", "e164": "e164", "state": "state", "portedIn": "ported_in"}
    whole_row = {"organization", "reservation", "lock", "allowedActions", "history", "billing"}
    assert set(own) | whole_row <= set(fields)
    for name, is_object in fields.items():
        selection = f"{name} {{ __typename }}" if is_object else name
        statements.reset()
        answer = _nodes(await api.gql(_page(selection)))
        [columns] = _page_columns(statements)
        if name in own:
            assert columns == KEY | {own[name]}, name
        if name in whole_row:
            assert columns == EVERY_COLUMN, name
        python_name = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)
        declared = FIELD_COLUMNS.get(python_name)
        assert columns == (KEY | declared if declared else EVERY_COLUMN), name
        whole = _nodes(await api.gql(_page(f"{selection} {WHOLE}")))
        assert answer == _without_whole(whole), name
        assert len(answer) == len(NUMBERS)


async def test_e164_and_state_select_those_columns_and_the_key(
    api: Api, statements: StatementCounter
) -> None:
    await _inventory(api)
    statements.reset()
    answer = _nodes(await api.gql(_page("e164 state")))
    assert _page_columns(statements) == [frozenset({"id", "e164", "state"})]
    assert answer == [
        {"e164": e164, "state": state}
        for e164, state in zip(
            NUMBERS,
            ["AVAILABLE", "RESERVED", "RESERVED", "LOCKED", "ASSIGNED", "AVAILABLE", "AVAILABLE"],
            strict=True,
        )
    ]


@pytest.mark.parametrize(
    "node",
    [
        "e164 reservation { kind }",
        "e164 organization { name }",
        "lock { remark } state",
        "history(first: 1) { totalCount }",
        "allowedActions",
    ],
)
async def test_a_field_not_read_straight_from_the_row_selects_every_column(
    api: Api, statements: StatementCounter, node: str
) -> None:
    await _inventory(api)
    statements.reset()
    await api.gql(_page(node))
    assert _page_columns(statements) == [EVERY_COLUMN]


# ---- selections of every shape ----

SHAPES = """
query($v: Boolean!, $w: Boolean!, $filter: NumberFilter) {
  numbers(filter: $filter, first: 10) {
    __typename
    ...Connection
    edges {
      c: cursor
      node {
        ... on Node { id }
        n: e164
        ...Details
        notes @include(if: $v)
        tag @skip(if: $v)
        never: organization @include(if: false) { name }
        WHOLE
      }
    }
  }
}
fragment Connection on NumberConnection {
  pageInfo { endCursor hasNextPage }
  edges { __typename node { __typename s: state } }
}
fragment Details on Number {
  sku
  ... @include(if: $w) { reservation { kind tag } }
  ... on Number @skip(if: true) { block { reason } }
}
"""


@pytest.mark.parametrize(
    ("v", "w", "expected"),
    [
        (False, False, frozenset({"id", "e164", "state", "sku", "tag"})),
        (True, False, frozenset({"id", "e164", "state", "sku", "notes"})),
        (False, True, EVERY_COLUMN),
        (True, True, EVERY_COLUMN),
    ],
)
async def test_fragments_aliases_typename_and_directives(
    api: Api, statements: StatementCounter, v: bool, w: bool, expected: frozenset[str]
) -> None:
    """Named and inline fragments, aliases, __typename at each level, `id`, and fields
    under @include and @skip on variables (both ways) and on literals: the page selects
    what the variables leave in, and answers as a page of whole rows."""
    await _inventory(api)
    variables = {"v": v, "w": w, "filter": {"states": ["AVAILABLE", "RESERVED", "LOCKED"]}}
    for _ in range(2):  # the second from what is kept for the document
        statements.reset()
        data = await api.gql(SHAPES.replace("WHOLE", ""), variables)
        assert _page_columns(statements) == [expected]
    whole = await api.gql(SHAPES.replace("WHOLE", WHOLE), variables)
    assert data["numbers"]["pageInfo"] == whole["numbers"]["pageInfo"]
    edges = data["numbers"]["edges"]
    assert [edge["c"] for edge in edges] == [edge["c"] for edge in whole["numbers"]["edges"]]
    assert _nodes(data) == _without_whole(_nodes(whole))
    nodes = _nodes(data)
    assert [node["n"] for node in nodes] == NUMBERS[:4] + NUMBERS[5:]
    assert all(node["__typename"] == "Number" and node["id"] for node in nodes)
    assert ("notes" in nodes[0], "tag" in nodes[0]) == (v, not v)
    assert ("reservation" in nodes[1]) == w
    assert "never" not in nodes[0]
    assert "block" not in nodes[0]


# ---- paging ----

PAGING = """
query($first: Int, $after: String) {
  numbers(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { sku capabilities WHOLE } }
  }
}
"""


async def _walk(api: Api, query: str) -> list[dict[str, Any]]:
    pages = []
    after = None
    while True:
        page = (await api.gql(query, {"first": 3, "after": after}))["numbers"]
        pages.append(page)
        if not page["pageInfo"]["hasNextPage"]:
            return pages
        after = page["pageInfo"]["endCursor"]


async def test_paging_through_cursors_with_a_projected_selection(
    api: Api, statements: StatementCounter
) -> None:
    """Pages of fields other than e164 still have the e164 their cursors are made of."""
    await _inventory(api)
    statements.reset()
    pages = await _walk(api, PAGING.replace("WHOLE", ""))
    assert _page_columns(statements) == [frozenset({"id", "e164", "sku", "capabilities"})] * 3
    whole = await _walk(api, PAGING.replace("WHOLE", WHOLE))
    for page in whole:
        for edge in page["edges"]:
            del edge["node"]["wholeRow"]
    assert pages == whole
    seen = [edge["node"]["sku"] for page in pages for edge in page["edges"]]
    assert seen == [f"DID-{index}" for index in range(len(NUMBERS))]
    assert [page["totalCount"] for page in pages] == [len(NUMBERS)] * 3


# ---- kept statements ----


async def test_projected_and_whole_row_statements_of_one_filter_are_kept_apart(
    api: Api, statements: StatementCounter
) -> None:
    """The same filter asked for few fields and for a field reading the whole row, in
    turn: each runs its own statement, kept apart (and a whole-row page read from a
    projected statement would fail to make its reservations)."""
    search._page_statements.clear()
    await _inventory(api)
    query = """query($filter: NumberFilter) { numbers(filter: $filter, first: 5) {
      edges { node { e164 FIELDS } } } }"""
    filter = {"pattern": "+6561", "states": ["AVAILABLE", "RESERVED"]}
    few = query.replace("FIELDS", "state")
    whole = query.replace("FIELDS", "state reservation { kind tag }")
    for _ in range(2):
        statements.reset()
        answer = _nodes(await api.gql(few, {"filter": filter}))
        assert _page_columns(statements) == [frozenset({"id", "e164", "state"})]
        assert [node["state"] for node in answer] == ["AVAILABLE", "RESERVED", "RESERVED"] + [
            "AVAILABLE"
        ] * 2
        statements.reset()
        answer = _nodes(await api.gql(whole, {"filter": filter}))
        assert _page_columns(statements) == [EVERY_COLUMN]
        assert [node["reservation"] for node in answer[:3]] == [
            None,
            {"kind": "FREE", "tag": "r"},
            {"kind": "FREE", "tag": "r"},
        ]
    assert len(search._page_statements) == 2


# ---- the nested organization view ----

ORG_VIEW = """{ viewer { organization { name
  numbers(first: 5) { edges { node { e164 sku WHOLE } } pageInfo { endCursor } }
} } }"""


async def test_the_organization_view_pages_select_their_fields_columns(
    api: Api, statements: StatementCounter
) -> None:
    await _inventory(api)
    statements.reset()
    data = await api.gql(ORG_VIEW.replace("WHOLE", ""))
    assert _page_columns(statements) == [frozenset({"id", "e164", "sku"})]
    statements.reset()
    whole = await api.gql(ORG_VIEW.replace("WHOLE", WHOLE))
    assert _page_columns(statements) == [EVERY_COLUMN]
    connection = data["viewer"]["organization"]["numbers"]
    whole_connection = whole["viewer"]["organization"]["numbers"]
    assert connection["pageInfo"] == whole_connection["pageInfo"]
    nodes = [edge["node"] for edge in connection["edges"]]
    whole_nodes = [edge["node"] for edge in whole_connection["edges"]]
    assert nodes == _without_whole(whole_nodes)
    assert [node["e164"] for node in nodes] == NUMBERS[:5]


# ---- a number of a projected row ----


async def test_a_number_of_a_projected_row_serves_only_what_its_columns_make(
    api: Api, db: Database
) -> None:
    """Fields made of other columns, and the row the resolvers read, raise NotSelected
    (never an AttributeError that a hasattr would take for a missing field)."""
    await _inventory(api)
    root = await api.root()
    viewer = Viewer(0, "tester", Role.ADMIN, root.id, root.path)
    columns = projection(frozenset({"state", "sku"}))
    async with db.read_connection() as connection:
        page = await search.page(
            connection, viewer, search.NumberFilter(), PageRequest(2, None), columns.columns
        )
    number = NumberType.from_row(page.rows[1], columns)
    assert (number.e164, number.state, number.sku) == (NUMBERS[1], "RESERVED", "DID-1")
    assert number.id
    for name in ("notes", "reservation", "capabilities", "row"):
        with pytest.raises(NotSelected):
            getattr(number, name)
    with pytest.raises(NotSelected):
        hasattr(number, "notes")
