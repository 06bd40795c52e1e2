"""The fast execution path (schema/fast_execution.py) answers exactly as graphql-core does.

Semantics first, on a small schema of its own where any value can be made wrong: nulls
in non-null fields and their propagation, resolver errors, values that do not coerce,
enums, lists with nulls, aliases, fragments, __typename, @skip/@include, interfaces,
async fields beside plain ones. Each document runs both ways (`PLAIN` set for the
second) and the canonical JSON must be equal byte for byte.

Then through the API: a page with every kind of field, errors masked by the error
policy, limits still refused; the differential harness itself (it must see a
difference). The suite as a whole is compared by running it with NUMBRA_DIFFERENTIAL=1
(tests/support/differential.py).
"""

import dataclasses
import enum
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import strawberry

from domain import ids
from models import OrganizationKind
from schema import fast_execution
from schema.build import NumbraSchema, build_schema
from schema.fast_execution import PLAIN, FastExecutor
from settings import Settings
from tests.support import differential
from tests.support.api import Api, gid

# ---- a schema where any value can be wrong ----


@strawberry.enum
class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Pet(Named):
    name: str
    nick: str | None
    color: Color
    colors: list[Color]
    maybe_colors: list[Color | None] | None
    tags: list[str]
    age: int
    friend: "Pet | None" = None


@strawberry.type
class Plain:
    label: str
    count: int | None


@strawberry.type
class Owner:
    name: str
    pets: list[Pet]
    maybe_pets: list[Pet | None] | None
    best: Pet | None
    required: Pet
    plain: Plain

    @strawberry.field
    async def later(self) -> str:
        return f"later {self.name}"

    @strawberry.field
    def boom(self) -> str | None:
        raise ValueError("boom")

    @strawberry.field
    async def async_pets(self) -> list[Pet]:
        return self.pets


@dataclasses.dataclass
class Impostor:
    """Has every field of a Pet but is not one: graphql-core refuses it as a Pet."""

    name: str = "Fake"
    age: int = 1
    colors: tuple[Color, ...] = (Color.RED,)
    friend: None = None


def pet(name: Any = "Rex", **fields: Any) -> Pet:
    values: dict[str, Any] = {
        "name": name,
        "nick": None,
        "color": Color.RED,
        "colors": [Color.RED, Color.BLUE],
        "maybe_colors": None,
        "tags": ["a", "b"],
        "age": 3,
    }
    return Pet(**(values | fields))


def owner(name: str = "Ann", **fields: Any) -> Owner:
    pets = [pet("Rex"), pet("Tom", nick="T", color=Color.BLUE, friend=pet("Kit"))]
    values: dict[str, Any] = {
        "name": name,
        "pets": pets,
        "maybe_pets": [pets[0], None],
        "best": pets[1],
        "required": pets[0],
        "plain": Plain(label="x", count=None),
    }
    return Owner(**(values | fields))


BROKEN: dict[str, Owner] = {
    "good": owner(),
    "null_in_non_null_leaf": owner(pets=[pet(None), pet("Tom")]),
    "null_required_object": owner(required=None),
    "int_not_coercible": owner(pets=[pet(age="many")]),
    "int_too_big": owner(pets=[pet(age=2**40)]),
    "enum_not_a_member": owner(pets=[pet(color="GREEN")]),
    "enum_value_string": owner(pets=[pet(color="RED")]),
    "null_in_list_of_non_null": owner(pets=[pet(colors=[Color.RED, None])]),
    "nullable_list_items": owner(pets=[pet(maybe_colors=[None, Color.BLUE])]),
    "string_from_int": owner(pets=[pet(name=12)]),
    "string_from_object": owner(pets=[pet(name=object())]),
    "list_not_a_list": owner(pets=[pet(tags="abc")]),
    "list_from_tuple": owner(pets=(pet("Rex"), pet("Tom"))),
    "object_not_an_object": owner(best="not a pet"),
    "wrong_object_type": owner(best=Plain(label="x", count=1)),
    "null_in_pets": owner(pets=[pet("Rex"), None]),
    # A list item's nested object broken, the other items whole: the item is completed
    # by graphql-core, the rest by the selection compiled for the list.
    "null_in_friend_leaf": owner(pets=[pet("Rex"), pet("Tom", friend=pet(None)), pet("Kit")]),
    "friend_wrong_type": owner(pets=[pet("Rex", friend=Plain(label="x", count=1)), pet("Tom")]),
    "friend_impostor": owner(pets=[pet("Rex"), pet("Tom", friend=Impostor())]),
    "friend_not_coercible": owner(pets=[pet("Rex"), pet("Tom", friend=pet(age="old"))]),
}


@strawberry.type
class Query:
    @strawberry.field
    def owner(self, case: str = "good") -> Owner:
        return BROKEN[case]

    @strawberry.field
    def maybe_owner(self, case: str = "good") -> Owner | None:
        return BROKEN[case]

    @strawberry.field
    def owners(self) -> list[Owner | None]:
        return list(BROKEN.values())

    @strawberry.field
    def named(self) -> list[Named]:
        return [pet("Rex"), pet("Tom")]


SCHEMA = strawberry.Schema(query=Query, execution_context_class=FastExecutor)

PET_FIELDS = "name nick color colors maybeColors tags age friend { name }"
DOCUMENTS = [
    f"{{ owner {{ name pets {{ {PET_FIELDS} }} best {{ name }} required {{ name }} }} }}",
    f"{{ maybeOwner(case: $case) {{ name pets {{ {PET_FIELDS} }} }} }}",
    f"{{ maybeOwner(case: $case) {{ maybePets {{ {PET_FIELDS} }} best {{ name age }} }} }}",
    "{ maybeOwner(case: $case) { required { name } plain { label count } } }",
    "{ maybeOwner(case: $case) { n: name, again: name, later boom plain { __typename } } }",
    f"{{ maybeOwner(case: $case) {{ asyncPets {{ {PET_FIELDS} }} pets {{ name }} }} }}",
    "{ owners { name pets { name age color } best { ...P } } } fragment P on Pet { name tags }",
    "{ owners { __typename name later pets { __typename ... on Pet { colors } } } }",
    "{ named { __typename name ... on Pet { age } } }",
    "{ maybeOwner(case: $case) { name @skip(if: $skip) pets @include(if: $skip) { name } } }",
    "{ owner(case: $case) { name pets { name age } } }",
    "{ __typename owner { __typename plain { __typename label } } }",
    "{ maybeOwner(case: $case) { pets { name friend { __typename name age colors } } } }",
    "{ owners { pets { n: name friend { name friend { name } } } maybePets { friend { age } } } }",
]


def _variables(document: str) -> tuple[str, list[dict[str, Any]]]:
    """The document with its variables declared, and the values to run it with."""
    declared = []
    if "$case" in document:
        declared.append('$case: String = "good"')
    if "$skip" in document:
        declared.append("$skip: Boolean = false")
    if not declared:
        return document, [{}]
    runs = [{"case": case, "skip": skip} for case in BROKEN for skip in (False, True)]
    if "$skip" not in document:
        runs = [{"case": case} for case in BROKEN]
    return f"query({', '.join(declared)}) {document}", runs


async def _both(document: str, variables: dict[str, Any]) -> tuple[str, str]:
    fast = await SCHEMA.execute(document, variable_values=variables)
    token = PLAIN.set(True)
    try:
        plain = await SCHEMA.execute(document, variable_values=variables)
    finally:
        PLAIN.reset(token)
    return differential.canonical(fast), differential.canonical(plain)


@pytest.mark.parametrize("document", DOCUMENTS)
async def test_answers_as_graphql_core(document: str) -> None:
    """Every document, with every broken value, answers byte for byte as graphql-core."""
    query, runs = _variables(document)
    for variables in runs:
        fast, plain = await _both(query, variables)
        assert fast == plain, f"{variables}\nfast:  {fast}\nplain: {plain}"


async def test_broken_values_give_graphql_cores_errors() -> None:
    """The broken cases do produce errors and nulls (the comparison above is not of two
    empty answers), and plain fields really take the fast path."""
    query = "query($case: String!) { maybeOwner(case: $case) { pets { name age color } } }"
    fast, _plain = await _both(query, {"case": "null_in_non_null_leaf"})
    assert '"maybeOwner":null' in fast
    assert "Cannot return null for non-nullable field Pet.name." in fast
    fast, _plain = await _both(query, {"case": "int_not_coercible"})
    assert "Int cannot represent non-integer value" in fast
    plans = fast_execution._PLANS[SCHEMA._schema]
    assert plans["Pet", "name"].kind == fast_execution.LEAF
    assert plans["Pet", "color"].kind == fast_execution.LEAF
    assert plans["Owner", "pets"].kind == fast_execution.OBJECT_LIST


def test_setting_turns_it_off() -> None:
    on = build_schema(Settings(_env_file=None))
    off = build_schema(Settings(_env_file=None, fast_execution=False))
    assert on.execution_context_class is FastExecutor
    assert off.execution_context_class is not FastExecutor


# ---- through the API ----


@pytest.fixture
def compared() -> Iterator[Callable[[], int]]:
    """Queries sent during the test also run the plain way and are compared; the fixture
    tells how many have been so far."""
    installed = getattr(NumbraSchema.execute, "__wrapped__", None) is not None
    differential.install()
    before = differential.COMPARED[0]
    yield lambda: differential.COMPARED[0] - before
    if not installed:
        differential.uninstall()


PAGE = """
query($filter: NumberFilter) {
  __typename
  first: numbers(filter: $filter, first: 3) { ...Page }
  numbers(filter: $filter, first: 50) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { ...Fields organization { __typename name kind } } }
  }
  numberCounts(filter: $filter) { state count }
}
fragment Page on NumberConnection { edges { node { e164 } } pageInfo { startCursor } }
fragment Fields on Number {
  __typename id e164 e: e164 state capabilities sku vendor country routing golden portedIn
  tag subscriptionUuid ownerUuid stateChangedAt deletionReason
  reservation { kind reason tag remark startsAt expiresAt reservedFor { name } }
  lock { remark lockedAt expiresAt }
  history(first: 2) { edges { node { action fromState toState actor } } }
}
"""


async def _world(api: Api) -> None:
    from tests.support.world import World

    world = await World.create(api.db, api.clock)
    customer = await world.org("Acme", OrganizationKind.CUSTOMER)
    numbers = await world.add(12)
    await world.reserve(numbers[:3], customer, remark="held", tag="t")
    await world.lock(numbers[3:5], remark="fraud")


async def test_a_page_of_every_field(api: Api, compared: Callable[[], int]) -> None:
    await _world(api)
    data = await api.gql(PAGE, {"filter": None})
    data = await api.gql(PAGE, {"filter": {"states": ["RESERVED", "LOCKED"]}})
    assert data["__typename"] == "Query"
    nodes = [edge["node"] for edge in data["numbers"]["edges"]]
    assert {node["state"] for node in nodes} == {"RESERVED", "LOCKED"}
    assert all(node["e"] == node["e164"] for node in nodes)
    assert any(node["reservation"] for node in nodes)
    assert differential.take_mismatches() == []
    assert compared() == 2


async def test_errors_are_masked_alike(
    api: Api, compared: Callable[[], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """NOT_FOUND for what cannot be seen, validation errors, an unknown id: the same
    answer both ways, after the error policy."""
    root = await api.root()
    made_up = ids.encode("Organization", uuid.uuid4())
    queries = [
        ("{ node(id: $id) { id } }", {"id": "bogus"}),
        ("{ organization(id: $id) { name } }", {"id": made_up}),
        (
            "{ organization(id: $id) { name children { edges { node { name } } } } }",
            {"id": gid(root)},
        ),
    ]
    for body, variables in queries:
        query = "query($id: ID!) " + body
        await api.post(query, variables)
    refused: list[tuple[str, dict[str, Any]]] = [
        (
            "query($f: NumberFilter) { numbers(filter: $f) { totalCount } }",
            {"f": {"pattern": "letters"}},
        ),
        ("{ numbers(first: 100000) { edges { node { e164 } } } }", {}),
        ("{ numbers(first: 1) { edges { node { e164 nope } } } }", {}),
    ]
    for query, values in refused:
        errors = await api.errors(query, values)
        assert errors[0]["message"]
    await _world(api)

    def broken(*_args: Any) -> str:
        raise RuntimeError("a secret the client must not see")

    monkeypatch.setattr(ids, "encode", broken)
    errors = await api.errors("{ numbers(first: 3) { edges { node { id e164 } } } }")
    assert errors[0]["extensions"]["code"] == "INTERNAL"
    assert "secret" not in str(errors)
    assert differential.take_mismatches() == []
    assert compared() >= 7


async def test_limits_still_refuse(api: Api) -> None:
    deep = "{ viewer { organization { " + "children { " * 14 + "name" + " }" * 14 + " } } }"
    response = await api.post(deep)
    assert response.status_code == 400


async def test_the_harness_sees_a_difference(
    api: Api, compared: Callable[[], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fast path that answered differently would fail the test that sent the query."""
    await _world(api)
    original = fast_execution._compiled

    def wrong(parts: Any) -> Any:
        complete = original(parts)

        def completing(source: Any) -> Any:
            done = complete(source)
            return {k: v + "!" if isinstance(v, str) else v for k, v in done.items()}

        return completing

    monkeypatch.setattr(fast_execution, "_compiled", wrong)
    monkeypatch.setattr(fast_execution, "_completers", OrderedDict())
    await api.gql("{ numbers(first: 2) { edges { node { e164 } } } }")
    found = differential.take_mismatches()
    assert len(found) == 1
    assert '!"' in found[0].fast
    assert '!"' not in found[0].plain


async def test_compiled_selections_kept_are_bounded(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compiled selections are kept per selection, at most COMPLETERS of them: a client
    sending ever new selections does not grow the process, and each still answers right."""
    await _world(api)
    monkeypatch.setattr(fast_execution, "COMPLETERS", 2)
    monkeypatch.setattr(fast_execution, "_completers", OrderedDict())
    plain = await api.gql("{ numbers(first: 3) { edges { node { e164 state sku } } } }")
    expected = [edge["node"] for edge in plain["numbers"]["edges"]]
    assert len(expected) == 3
    for fields in ("e164", "e164 state", "state sku", "sku e164", "e164 state sku"):
        data = await api.gql(f"{{ numbers(first: 3) {{ edges {{ node {{ {fields} }} }} }} }}")
        names = fields.split()
        want = [{name: node[name] for name in names} for node in expected]
        assert [edge["node"] for edge in data["numbers"]["edges"]] == want
        assert len(fast_execution._completers) <= 2
