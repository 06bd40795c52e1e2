"""Tenant isolation, for every query and mutation of the schema (issue 7).

With admin tokens of two sibling customers (C1, C2), the partner above them (P1) and
a department (D1), every argument that names an object is aimed at every other
tenant's objects: the answer must be exactly the one for a made-up value, must hold
none of the other tenants' data, and a mutation must change nothing. Cases come from
the served schema (tests/support/isolation.py), so a new field is covered, or fails
for want of a filler, without a test written by hand. Walks of everything a token can
reach, and the CSV endpoints, complete it. test_access.py covers roles and tokens.
"""

import csv
import io
import json
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import graphql
import pytest
import pytest_asyncio

from domain.clock import ManualClock
from domain.csv import exports
from domain.organizations import ensure_root
from models import OrganizationKind, Role
from models.database import Database
from settings import Settings
from tests.support.api import Api, gid
from tests.support.databases import BACKENDS, pg_database
from tests.support.isolation import (
    STAND_IN,
    STATES,
    Case,
    Expect,
    Target,
    Tenancy,
    aim,
    build_tenancy,
    cases,
    fragment,
    leaked,
    leaves,
    looks_absent,
    made_up_number,
    masked,
    number_gid,
    refused_at,
    served_schema,
    snapshot,
    unfilled,
    values_of,
)

# The async tests share the module's tree, and so its event loop.
on_the_tree = pytest.mark.asyncio(loop_scope="module")

SCHEMA = served_schema()
CASES = cases(SCHEMA)
VIEWERS = ("C1", "C2", "P1", "D1")


@pytest.fixture(scope="module", params=BACKENDS)
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """As `database_url`, for a whole module (migrations run outside its event loop)."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("isolation") / "numbra.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    # A database of its own: the function-scoped `db` empties the shared one after each test.
    return request.getfixturevalue("module_pg_url")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def module_pg_url() -> Iterator[str]:
    with pg_database("numbra_isolation") as url:
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tenancy(module_database_url: str) -> AsyncIterator[Tenancy]:
    """One tree per database for the whole module: the cases only read it, or fail to write."""
    from web.app import create_app

    url = module_database_url
    db = Database(url, pool_size=5)
    clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    # The cases ask about other tenants' numbers far more often than a day's intake allows,
    # and spend far more than a minute's budget while the module's clock stands still.
    settings = Settings(
        _env_file=None,
        database_url=url,
        intake_refusals_per_day=1_000_000,
        cost_budget_per_minute=1_000_000,
    )
    try:
        async with db.write() as session:
            await ensure_root(session, "root-secret", clock)
        async with Api.open(create_app(settings, db=db, clock=clock), "", db, clock) as api:
            yield await build_tenancy(api)
    finally:
        await db.dispose()


def test_every_argument_of_the_schema_has_a_filler() -> None:
    """A field whose argument the table cannot fill would go untested: name it."""
    assert unfilled(SCHEMA) == []


def test_the_cases_cover_every_field_and_aim_at_ids_numbers_and_filters() -> None:
    covered = {(case.owner, case.field) for case in CASES}
    for root in (SCHEMA.query_type, SCHEMA.mutation_type):
        assert root is not None
        assert {(root.name, name) for name in root.fields} <= covered
    targets = {case.name for case in CASES}
    assert {
        "Query.node(id)",
        "Query.number(e164)",
        "Query.numbers(filter.organizationId)",
        "Organization.numbers(filter.ownerUuid)",
        "Mutation.allocateNumbers(input.organizationId)",
        "Mutation.createToken(input.organizationId)",
        "Mutation.swapNumber(input.oldNumber)",
        "Mutation.subscriptionReactivated(input.subscriptionUuid)",
    } <= targets


async def _answers(tenancy: Tenancy, case: Case, viewer: str) -> tuple[dict[str, str], list[str]]:
    """Each alias's answer, masked, and what is wrong with the request as a whole."""
    aimed = aim(SCHEMA, tenancy, case, viewer)
    token = tenancy.tenants[viewer].admin
    response = await tenancy.api.post(aimed.document, aimed.variables, token)
    body = response.json()
    problems = [] if response.status_code == 200 else [f"HTTP {response.status_code}: {body}"]
    data = body.get("data")
    for key in aimed.route:
        data = data.get(key) if data else None
    answers = {}
    for alias, value in aimed.given.items():
        errors = [
            {"message": e["message"], "extensions": e.get("extensions")}
            for e in body.get("errors", [])
            if alias in (e.get("path") or [])
        ]
        if any((e["extensions"] or {}).get("code") == "INTERNAL" for e in errors):
            problems.append(f"{alias}: internal error")
        answer = {"data": (data or {}).get(alias), "errors": errors}
        answers[alias] = masked(answer, value)
        for secret in leaked(answers[alias], tenancy.forbidden(viewer)):
            problems.append(f"{alias} (given {value!r}) shows {secret!r}")
    return answers, problems


def _differences(case: Case, answers: dict[str, str], expect: Expect) -> list[str]:
    if expect is Expect.SCOPED:
        return []
    stand_in = answers[STAND_IN]
    return [
        f"{alias} answers {text} where a {expect.value} value answers {stand_in}"
        for alias, text in answers.items()
        if text != stand_in
    ]


def _proves_something(case: Case, answer: str, expect: Expect, mutation: bool) -> bool:
    """The stand-in was really looked at: else equal answers would prove nothing."""
    found = json.loads(answer)["data"]
    assert case.target is not None
    if expect is Expect.EXISTING:
        return refused_at(found, case.target, {"ALREADY_EXISTS"})
    if mutation:
        return refused_at(found, case.target, {"NOT_FOUND", "INVALID_TRANSITION"})
    return looks_absent(found)


def _expectation(case: Case) -> Expect | None:
    if case.target is None:
        return None
    owner = SCHEMA.get_type(case.owner)
    assert isinstance(owner, graphql.GraphQLObjectType)
    filler = next(
        leaf.filler
        for leaf in leaves(case.owner, case.field, owner.fields[case.field])
        if leaf.path == case.target
    )
    assert isinstance(filler, Target)
    return filler.expect


# Every argument of the schema aimed at every other tenant: an exhaustive, generated
# matrix, for `make test`; the walks and the cases below keep isolation in the fast loop.
@pytest.mark.slow
@on_the_tree
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_aimed_at_another_tenant_it_answers_as_for_a_made_up_one(
    tenancy: Tenancy, case: Case
) -> None:
    mutation = case.owner == "Mutation"
    expect = _expectation(case)
    before = await snapshot(tenancy.api.db) if mutation else None
    problems: list[str] = []
    for viewer in VIEWERS:
        answers, wrong = await _answers(tenancy, case, viewer)
        problems += [f"{viewer}: {p}" for p in wrong]
        if expect is not None:
            problems += [f"{viewer}: {p}" for p in _differences(case, answers, expect)]
            if expect is not Expect.SCOPED and not _proves_something(
                case, answers[STAND_IN], expect, mutation
            ):
                problems.append(f"{viewer}: the stand-in was not refused: {answers[STAND_IN]}")
    if before is not None and await snapshot(tenancy.api.db) != before:
        problems.append("the mutations changed the database")
    assert problems == [], case.name


# ---- walks: everything a token can reach ----


async def _data(tenancy: Tenancy, viewer: str, document: str) -> dict[str, Any]:
    data: dict[str, Any] = await tenancy.api.gql(document, token=tenancy.tenants[viewer].admin)
    return data


def _fragments(depth: int, *names: str) -> str:
    return " ".join(
        fragment(SCHEMA, SCHEMA.get_type(name), depth, name)  # type: ignore[arg-type]
        for name in names
    )


WALK = (
    "query { viewer { organization { ...Organization } }"
    " organizations(first: 500) { totalCount edges { node { ...Organization } } }"
    " numbers(first: 500) { totalCount edges { node { ...Number } } }"
    " numberCounts { state count } }"
)
BATCH = 25


@on_the_tree
@pytest.mark.parametrize("viewer", VIEWERS)
async def test_everything_a_token_reaches_is_its_subtree_and_all_of_it(
    tenancy: Tenancy, viewer: str
) -> None:
    """From the viewer down every nested field, then `node` and `number` for each id seen."""
    answers = [await _data(tenancy, viewer, f"{WALK} {_fragments(2, 'Organization', 'Number')}")]
    seen_ids = {str(v) for v in values_of(answers, "id")}
    seen_numbers = {str(v) for v in values_of(answers, "e164")}
    lookups = [f'node(id: "{i}") {{ ...Node }}' for i in sorted(seen_ids)] + [
        f'number(e164: "{e}") {{ ...Number }}' for e in sorted(seen_numbers)
    ]
    for start in range(0, len(lookups), BATCH):
        batch = lookups[start : start + BATCH]
        calls = " ".join(f"a{i}: {call}" for i, call in enumerate(batch))
        used = [name for name in ("Node", "Number") if any(f"...{name} " in c for c in batch)]
        found = await _data(tenancy, viewer, f"query {{ {calls} }} {_fragments(1, *used)}")
        assert None not in found.values()
        answers.append(found)

    own = tenancy.within(viewer)
    visible = tenancy.visible_numbers(viewer)
    series_ids = {tenancy.series_gid}
    operator_ids = {tenancy.operators[t.label].gid for t in own}
    assert {str(v) for v in values_of(answers, "id")} == (
        {t.gid for t in own}
        | {number_gid(e) for e in visible}
        | series_ids
        | operator_ids
        | {t.port_order for t in own}
    )
    assert {str(v) for v in values_of(answers, "e164")} == visible
    assert sum(c["count"] for c in answers[0]["numberCounts"]) == len(visible)
    assert answers[0]["organizations"]["totalCount"] == len(own)
    text = str(answers)
    assert leaked(text, tenancy.forbidden(viewer)) == []
    assert tenancy.tenants[viewer].secret in text


@on_the_tree
async def test_a_department_sees_none_of_its_parent_s_pool_even_what_is_held_for_it(
    tenancy: Tenancy,
) -> None:
    """C1 reserved one of its numbers for D1 and assigned one to D1: both stay C1's."""
    c1 = tenancy.tenants["C1"]
    held_for_d1 = [c1.numbers["reserved"], c1.numbers["assigned"]]
    query = "query($n: [String!]) { numbers(filter: {numbers: $n}) { totalCount } }"
    variables = {"n": held_for_d1}
    as_c1 = await tenancy.api.gql(query, variables, c1.admin)
    assert as_c1["numbers"]["totalCount"] == 2
    as_d1 = await tenancy.api.gql(query, variables, tenancy.tenants["D1"].admin)
    assert as_d1["numbers"]["totalCount"] == 0


# ---- CSV over HTTP ----


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _filter_targets() -> list[tuple[str, Target]]:
    """The NumberFilter fields that name a tenant's value, as export parameters."""
    query = SCHEMA.query_type
    assert query is not None
    return [
        (_snake(leaf.path[-1]), leaf.filler)
        for leaf in leaves("Query", "numbers", query.fields["numbers"])
        if leaf.path[0] == "filter"
        and isinstance(leaf.filler, Target)
        and leaf.filler.expect is Expect.ABSENT
    ]


def _param(value: Any) -> str:
    return ",".join(value) if isinstance(value, list) else str(value)


@on_the_tree
@pytest.mark.parametrize("viewer", ["C1", "P1"])
async def test_a_csv_export_holds_only_the_subtree_whatever_the_filter_names(
    tenancy: Tenancy, viewer: str
) -> None:
    client, token = tenancy.api.client, tenancy.tenants[viewer].admin

    async def export(**params: str) -> str:
        response = await client.get("/export/numbers.csv", params=params, headers=_auth(token))
        assert response.status_code == 200, response.text
        return response.text

    everything = list(csv.DictReader(io.StringIO(await export())))
    assert {row["number"] for row in everything} == tenancy.visible_numbers(viewer)
    targets = _filter_targets()
    assert {"organization_id", "numbers", "owner_uuid", "pattern"} <= {p for p, _ in targets}
    # Whatever a made-up value names, the export is its header alone.
    made_up = await export(numbers=made_up_number(0))
    assert made_up.splitlines() == [",".join(exports.COLUMNS)]
    for param, target in targets:
        extra = {"include_descendants": "true"} if param == "organization_id" else {}
        for value in target.foreign(tenancy, viewer):
            assert await export(**{param: _param(value)}, **extra) == made_up, (param, value)


async def _import(tenancy: Tenancy, token: str, rows: list[str], **params: str) -> tuple[int, str]:
    text = "number,vendor,country,sku\n" + "".join(f"{n},isolation,SG,DID\n" for n in rows)
    response = await tenancy.api.client.post(
        "/import/numbers",
        params=params,
        files={"file": ("numbers.csv", text.encode(), "text/csv")},
        headers=_auth(token),
    )
    return response.status_code, response.text


@on_the_tree
@pytest.mark.parametrize("viewer", VIEWERS)
async def test_a_csv_import_goes_only_into_the_subtree_and_only_for_admins(
    tenancy: Tenancy, viewer: str
) -> None:
    """DESIGN: add (and so import) is for ADMIN tokens, into their subtree's pools."""
    tenant = tenancy.tenants[viewer]
    before = await snapshot(tenancy.api.db)
    fresh = [made_up_number(50)]
    for role in (Role.OPERATOR, Role.VIEWER):
        status, _ = await _import(tenancy, tenant.tokens[role], fresh)
        assert status == 403, role

    made_up_pool = await _import(tenancy, tenant.admin, fresh, organization_id=str(uuid4()))
    assert made_up_pool[0] == 404
    for other in tenancy.foreign(viewer):
        for named in (other.gid, str(other.org.uuid)):
            assert (
                await _import(tenancy, tenant.admin, fresh, organization_id=named) == made_up_pool
            )

    own = list(tenant.numbers.values())
    as_own = masked(await _import(tenancy, tenant.admin, own), own)
    for other in tenancy.foreign(viewer):
        theirs = [other.numbers[state] for state in STATES]
        answer = masked(await _import(tenancy, tenant.admin, theirs), theirs)
        assert answer == as_own, other.label
        assert leaked(answer, tenancy.forbidden(viewer)) == []
    assert await snapshot(tenancy.api.db) == before


# ---- history ----


async def test_a_number_from_a_sibling_s_pool_brings_none_of_the_sibling_s_history(
    api: Api,
) -> None:
    root = await api.root()
    p1 = await api.org("P1", OrganizationKind.PARTNER, root)
    c1 = await api.org("C1", OrganizationKind.CUSTOMER, p1)
    c2 = await api.org("C2", OrganizationKind.CUSTOMER, p1)
    p1_admin = await api.token_for(p1, Role.ADMIN, "partner desk")
    c2_operator = await api.token_for(c2, Role.OPERATOR, "C2-secret operator")
    c1_viewer = await api.token_for(c1, Role.VIEWER, "C1 viewer")
    number = "+6561000001"
    payload = """mutation($input: %sInput!) { %s(input: $input) { userErrors { code } } }"""

    async def run(name: str, token: str, **values: Any) -> None:
        mutation = payload % (name[0].upper() + name[1:], name)
        answer = await api.gql(mutation, {"input": values}, token)
        assert answer[name]["userErrors"] == [], name

    await run(
        "addNumbers",
        api.token,
        numbers=[number],
        vendor="v",
        country="SG",
        sku="s",
        organizationId=gid(p1),
    )
    await run("allocateNumbers", p1_admin, organizationId=gid(c2), numbers=[number])
    await run(
        "reserveNumbers",
        c2_operator,
        numbers=[number],
        reservedForId=gid(c2),
        remark="C2-secret: for our CEO",
    )
    await run("releaseNumbers", c2_operator, numbers=[number])
    await run("withdrawNumbers", p1_admin, organizationId=gid(c2), numbers=[number])
    await run("allocateNumbers", p1_admin, organizationId=gid(c1), numbers=[number])

    async def history(token: str) -> list[tuple[str, str, str | None]]:
        answer = await api.gql(
            "query($n: String!) { number(e164: $n) { history { totalCount "
            "edges { node { action actor remark } } } } }",
            {"n": number},
            token,
        )
        connection = answer["number"]["history"]
        events = [edge["node"] for edge in connection["edges"]]
        assert connection["totalCount"] == len(events)
        return [(e["action"], e["actor"], e["remark"]) for e in reversed(events)]

    # C1 reads what happened in its own pool: the allocation that brought the number.
    assert await history(c1_viewer) == [("ALLOCATED", "partner desk", None)]
    # P1 reads all of it, C2's part included: its subtree held the number throughout.
    assert [action for action, _, _ in await history(p1_admin)] == [
        "ADDED",
        "ALLOCATED",
        "RESERVED",
        "RELEASED",
        "WITHDRAWN",
        "ALLOCATED",
    ]
    assert "C2-secret: for our CEO" in str(await history(p1_admin))
