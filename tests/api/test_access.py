"""Who may call the API and what each token sees: bearer tokens, roles, tenant isolation."""

import hashlib
import logging
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from domain import ids, organizations, series
from models import Organization, OrganizationKind, Role, Token
from tests.support.api import Api, gid, without_cost
from web.logging import JsonFormatter

VIEWER = "{ viewer { role tokenName organization { name kind } } }"

CREATE_TOKEN = """
mutation($input: CreateTokenInput!) {
  createToken(input: $input) {
    token
    userErrors { code message field number }
  }
}"""

ORGANIZATION = """
query($id: ID!) {
  organization(id: $id) {
    name
    parent { name }
    ancestors { name }
    children { name }
  }
}"""

NODE = """
query($id: ID!) {
  node(id: $id) {
    id
    ... on Organization { name }
    ... on Series { name prefix country }
  }
}"""

ORGANIZATIONS = "{ organizations { totalCount edges { node { name } } } }"

CREATE_ORGANIZATION = """
mutation($input: CreateOrganizationInput!) {
  createOrganization(input: $input) {
    organization { name }
    userErrors { code message field number }
  }
}"""

UPDATE_ORGANIZATION = """
mutation($input: UpdateOrganizationInput!) {
  updateOrganization(input: $input) {
    organization { name }
    userErrors { code message field number }
  }
}"""

SERIES = "{ series { totalCount edges { node { name prefix country } } } }"

CREATE_SERIES = """
mutation($input: CreateSeriesInput!) {
  createSeries(input: $input) {
    series { id name prefix country }
    userErrors { code message field number }
  }
}"""


def made_up_id(type_name: str = organizations.TYPE_NAME) -> str:
    return ids.encode(type_name, uuid.uuid4())


async def tree(api: Api) -> dict[str, Organization]:
    """root → P1 → C1 → D1, with a sibling C2 under P1, and a second partner P2."""
    root = await api.root()
    p1 = await api.org("P1", OrganizationKind.PARTNER, root)
    c1 = await api.org("C1", OrganizationKind.CUSTOMER, p1)
    d1 = await api.org("D1", OrganizationKind.DEPARTMENT, c1)
    c2 = await api.org("C2", OrganizationKind.CUSTOMER, p1)
    p2 = await api.org("P2", OrganizationKind.PARTNER, root)
    return {"root": root, "P1": p1, "C1": c1, "D1": d1, "C2": c2, "P2": p2}


async def revoke(api: Api, token: str) -> None:
    async with api.db.write() as session:
        await session.execute(
            sa.update(Token)
            .where(Token.token_hash == hashlib.sha256(token.encode()).hexdigest())
            .values(revoked_at=api.clock.now())
        )


# Authentication


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic {token}", "Token {token}", "Bearer", "Bearer nbr_unknown", "revoked"],
    ids=["no header", "basic", "other scheme", "empty", "unknown", "revoked"],
)
async def test_a_request_without_a_valid_token_is_401(api: Api, authorization: str | None) -> None:
    headers = {}
    if authorization == "revoked":
        token = await api.token_for(await api.root(), Role.ADMIN)
        assert (await api.gql(VIEWER, token=token))["viewer"]["role"] == "ADMIN"
        await revoke(api, token)
        headers["Authorization"] = f"Bearer {token}"
    elif authorization is not None:
        headers["Authorization"] = authorization.format(token=api.token)

    response = await api.client.post("/graphql", json={"query": VIEWER}, headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json() == {"errors": [{"message": "a valid bearer token is required"}]}


async def test_graphiql_is_served_to_anyone_but_runs_queries_only_with_a_token(api: Api) -> None:
    page = await api.client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "graphiql" in page.text.lower()

    anonymous = await api.client.get(
        "/graphql", params={"query": VIEWER}, headers={"Accept": "text/html"}
    )
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")

    with_token = await api.client.get(
        "/graphql", params={"query": VIEWER}, headers={"Authorization": f"Bearer {api.token}"}
    )
    assert with_token.status_code == 200
    assert with_token.json()["data"]["viewer"]["role"] == "ADMIN"


async def test_viewer_is_the_token_s_organization_role_and_name(api: Api) -> None:
    orgs = await tree(api)
    token = await api.token_for(orgs["C1"], Role.OPERATOR, name="billing robot")
    assert await api.gql(VIEWER, token=token) == {
        "viewer": {
            "role": "OPERATOR",
            "tokenName": "billing robot",
            "organization": {"name": "C1", "kind": "CUSTOMER"},
        }
    }


async def test_tokens_are_stored_only_as_a_sha256_hash(api: Api) -> None:
    created = (
        await api.gql(
            CREATE_TOKEN,
            {"input": {"name": "ci", "organizationId": gid(await api.root()), "role": "VIEWER"}},
        )
    )["createToken"]
    token = created["token"]
    assert token.startswith("nbr_")

    async with api.db.read() as session:
        rows = (await session.execute(sa.select(Token.__table__))).mappings().all()
    assert len(rows) == 2
    for raw in (api.token, token):
        digest = hashlib.sha256(raw.encode()).hexdigest()
        assert [row["name"] for row in rows if row["token_hash"] == digest]
        for row in rows:
            assert not any(raw in str(value) for value in row.values()), row


async def test_token_text_never_reaches_the_logs(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    root = await api.root()
    with caplog.at_level(logging.DEBUG):
        created = (
            await api.gql(
                CREATE_TOKEN,
                {"input": {"name": "ci", "organizationId": gid(root), "role": "ADMIN"}},
            )
        )["createToken"]["token"]
        assert (await api.gql(VIEWER, token=created))["viewer"]["tokenName"] == "ci"
        assert (await api.post("{ nope }", token=created)).status_code == 400
        await revoke(api, created)
        assert (await api.post(VIEWER, token=created)).status_code == 401

    assert caplog.records, "nothing was logged: the test would prove nothing"
    assert any(record.name == "numbra.access" for record in caplog.records)
    logged = caplog.text + "".join(str(record.args) for record in caplog.records)
    # As NUMBRA_LOG_FORMAT=json writes them, extra fields included.
    logged += "".join(JsonFormatter().format(record) for record in caplog.records)
    assert api.token not in logged
    assert created not in logged


# Creating tokens


async def test_an_admin_creates_a_token_for_its_subtree_that_works_with_its_role(
    api: Api,
) -> None:
    orgs = await tree(api)
    partner_admin = await api.token_for(orgs["P1"], Role.ADMIN)

    payload = (
        await api.gql(
            CREATE_TOKEN,
            {"input": {"name": "shop", "organizationId": gid(orgs["C1"]), "role": "OPERATOR"}},
            token=partner_admin,
        )
    )["createToken"]
    assert payload["userErrors"] == []

    token = payload["token"]
    assert await api.gql(VIEWER, token=token) == {
        "viewer": {
            "role": "OPERATOR",
            "tokenName": "shop",
            "organization": {"name": "C1", "kind": "CUSTOMER"},
        }
    }
    refused = (
        await api.gql(CREATE_ORGANIZATION, {"input": {"name": "X", "kind": "DEPARTMENT"}}, token)
    )["createOrganization"]
    assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"]


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
async def test_only_admins_create_tokens(api: Api, role: Role) -> None:
    root = await api.root()
    token = await api.token_for(root, role)
    payload = (
        await api.gql(
            CREATE_TOKEN,
            {"input": {"name": "mine", "organizationId": gid(root), "role": role.value}},
            token=token,
        )
    )["createToken"]
    assert payload["token"] is None
    assert [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"]


async def test_a_token_for_an_org_outside_the_subtree_is_refused_as_if_it_did_not_exist(
    api: Api,
) -> None:
    orgs = await tree(api)
    partner_admin = await api.token_for(orgs["P1"], Role.ADMIN)

    async def create_for(org_id: str) -> dict[str, Any]:
        variables = {"input": {"name": "t", "organizationId": org_id, "role": "ADMIN"}}
        payload: dict[str, Any] = (await api.gql(CREATE_TOKEN, variables, token=partner_admin))[
            "createToken"
        ]
        return payload

    made_up = await create_for(made_up_id())
    assert made_up["token"] is None
    assert made_up["userErrors"] == [
        {
            "code": "NOT_FOUND",
            "message": "no such organization",
            "field": ["input", "organizationId"],
            "number": None,
        }
    ]
    for foreign in ("P2", "root"):
        assert await create_for(gid(orgs[foreign])) == made_up


async def test_create_token_reports_every_problem_together(api: Api) -> None:
    payload = (
        await api.gql(
            CREATE_TOKEN, {"input": {"name": "  ", "organizationId": "garbage", "role": "VIEWER"}}
        )
    )["createToken"]
    assert payload["token"] is None
    assert {(e["code"], tuple(e["field"])) for e in payload["userErrors"]} == {
        ("VALIDATION", ("input", "name")),
        ("VALIDATION", ("input", "organizationId")),
    }


FULL_WIDTH_SYSTEM = "\uff33\uff59\uff53\uff54\uff45\uff4d"


@pytest.mark.parametrize(
    "name", ["system", " SYSTEM ", FULL_WIDTH_SYSTEM, "numbra import", "Numbra  export", "numbra x"]
)
async def test_a_token_may_not_take_a_name_history_gives_jobs_or_the_cli(
    api: Api, name: str
) -> None:
    root = gid(await api.root())
    payload = (
        await api.gql(
            CREATE_TOKEN, {"input": {"name": name, "organizationId": root, "role": "ADMIN"}}
        )
    )["createToken"]

    assert payload["token"] is None
    [error] = payload["userErrors"]
    assert (error["code"], error["field"]) == ("VALIDATION", ["input", "name"])
    assert "history" in error["message"]
    for allowed in ("system admin", "numbra-bot", "systems"):
        created = await api.gql(
            CREATE_TOKEN, {"input": {"name": allowed, "organizationId": root, "role": "VIEWER"}}
        )
        assert created["createToken"]["userErrors"] == []


# Tenant isolation


async def test_organizations_outside_the_subtree_look_exactly_like_made_up_ids(api: Api) -> None:
    orgs = await tree(api)
    customer = await api.token_for(orgs["C1"], Role.VIEWER)

    for query in (ORGANIZATION, NODE):
        made_up = without_cost((await api.post(query, {"id": made_up_id()}, customer)).json())
        assert made_up["data"] in ({"organization": None}, {"node": None})
        assert "errors" not in made_up
        for foreign in ("C2", "P1", "P2", "root"):
            seen = without_cost(
                (await api.post(query, {"id": gid(orgs[foreign])}, customer)).json()
            )
            assert seen == made_up, foreign

    assert (await api.gql(NODE, {"id": gid(orgs["D1"])}, customer))["node"] == {
        "id": gid(orgs["D1"]),
        "name": "D1",
    }


async def test_a_token_lists_and_walks_only_its_subtree(api: Api) -> None:
    orgs = await tree(api)
    customer = await api.token_for(orgs["C1"], Role.VIEWER)

    listed = (await api.gql(ORGANIZATIONS, token=customer))["organizations"]
    assert [e["node"]["name"] for e in listed["edges"]] == ["C1", "D1"]
    assert listed["totalCount"] == 2

    c1 = (await api.gql(ORGANIZATION, {"id": gid(orgs["C1"])}, customer))["organization"]
    assert c1 == {"name": "C1", "parent": None, "ancestors": [], "children": [{"name": "D1"}]}
    d1 = (await api.gql(ORGANIZATION, {"id": gid(orgs["D1"])}, customer))["organization"]
    assert d1 == {
        "name": "D1",
        "parent": {"name": "C1"},
        "ancestors": [{"name": "C1"}],
        "children": [],
    }


async def test_foreign_organizations_cannot_be_changed_or_built_upon(api: Api) -> None:
    orgs = await tree(api)
    customer_admin = await api.token_for(orgs["C1"], Role.ADMIN)

    async def update(org_id: str) -> dict[str, Any]:
        variables = {"input": {"id": org_id, "name": "mine now"}}
        payload: dict[str, Any] = (await api.gql(UPDATE_ORGANIZATION, variables, customer_admin))[
            "updateOrganization"
        ]
        return payload

    async def create_under(org_id: str) -> dict[str, Any]:
        variables = {"input": {"name": "implant", "kind": "DEPARTMENT", "parentId": org_id}}
        payload: dict[str, Any] = (await api.gql(CREATE_ORGANIZATION, variables, customer_admin))[
            "createOrganization"
        ]
        return payload

    made_up_update = await update(made_up_id())
    made_up_create = await create_under(made_up_id())
    assert [(e["code"], e["field"]) for e in made_up_update["userErrors"]] == [
        ("NOT_FOUND", ["input", "id"])
    ]
    assert [(e["code"], e["field"]) for e in made_up_create["userErrors"]] == [
        ("NOT_FOUND", ["input", "parentId"])
    ]
    for foreign in ("C2", "P1", "P2", "root"):
        assert await update(gid(orgs[foreign])) == made_up_update, foreign
        assert await create_under(gid(orgs[foreign])) == made_up_create, foreign

    everything = (await api.gql(ORGANIZATIONS))["organizations"]
    assert sorted(e["node"]["name"] for e in everything["edges"]) == [
        "C1",
        "C2",
        "D1",
        "P1",
        "P2",
        "Provider",
    ]


# Series


async def test_series_are_visible_to_every_token_but_defined_only_by_root_admins(
    api: Api,
) -> None:
    orgs = await tree(api)
    created = (
        await api.gql(
            CREATE_SERIES,
            {"input": {"name": "Singapore mobile", "prefix": "+6581", "country": "sg"}},
        )
    )["createSeries"]
    assert created["userErrors"] == []
    assert created["series"]["country"] == "SG"

    department_viewer = await api.token_for(orgs["D1"], Role.VIEWER)
    assert (await api.gql(SERIES, token=department_viewer))["series"] == {
        "totalCount": 1,
        "edges": [{"node": {"name": "Singapore mobile", "prefix": "+6581", "country": "SG"}}],
    }


@pytest.mark.parametrize(
    ("org", "role"),
    [("P1", Role.ADMIN), ("root", Role.OPERATOR), ("root", Role.VIEWER)],
)
async def test_only_the_provider_s_admins_create_series(api: Api, org: str, role: Role) -> None:
    orgs = await tree(api)
    token = await api.token_for(orgs[org], role)
    payload = (
        await api.gql(
            CREATE_SERIES, {"input": {"name": "UK", "prefix": "+4420", "country": "GB"}}, token
        )
    )["createSeries"]
    assert payload["series"] is None
    assert [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"]
    assert (await api.gql(SERIES))["series"]["totalCount"] == 0


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"prefix": "6531"}, {("VALIDATION", "prefix")}),
        ({"prefix": "+06531"}, {("VALIDATION", "prefix")}),
        ({"country": "XX"}, {("VALIDATION", "country")}),
        ({"prefix": "+4420"}, {("VALIDATION", "prefix")}),
        (
            {"name": " ", "prefix": "65 31", "country": "Singapore"},
            {("VALIDATION", "name"), ("VALIDATION", "prefix"), ("VALIDATION", "country")},
        ),
    ],
    ids=["no plus", "leading zero", "unknown country", "foreign prefix", "all at once"],
)
async def test_create_series_validates_its_input(
    api: Api, given: dict[str, str], expected: set[tuple[str, str]]
) -> None:
    variables = {"input": {"name": "Singapore", "prefix": "+6531", "country": "SG"} | given}
    payload = (await api.gql(CREATE_SERIES, variables))["createSeries"]
    assert payload["series"] is None
    assert {(e["code"], e["field"][-1]) for e in payload["userErrors"]} == expected
    assert (await api.gql(SERIES))["series"]["totalCount"] == 0


async def test_a_prefix_of_another_country_says_which_code_it_needs(api: Api) -> None:
    variables = {"input": {"name": "London", "prefix": "+4420", "country": "SG"}}
    payload = (await api.gql(CREATE_SERIES, variables))["createSeries"]
    assert payload["userErrors"] == [
        {
            "code": "VALIDATION",
            "message": "numbers of SG begin +65; +4420 does not",
            "field": ["input", "prefix"],
            "number": None,
        }
    ]


async def test_a_duplicate_prefix_already_exists(api: Api) -> None:
    variables = {"input": {"name": "Singapore", "prefix": "+6531", "country": "SG"}}
    assert (await api.gql(CREATE_SERIES, variables))["createSeries"]["userErrors"] == []
    again = (await api.gql(CREATE_SERIES, variables))["createSeries"]
    assert again["series"] is None
    assert [(e["code"], e["field"]) for e in again["userErrors"]] == [
        ("ALREADY_EXISTS", ["input", "prefix"])
    ]
    assert (await api.gql(SERIES))["series"]["totalCount"] == 1


async def test_node_fetches_a_series_by_its_id(api: Api) -> None:
    orgs = await tree(api)
    variables = {"input": {"name": "Singapore", "prefix": "+6531", "country": "SG"}}
    created = (await api.gql(CREATE_SERIES, variables))["createSeries"]["series"]

    viewer = await api.token_for(orgs["C2"], Role.VIEWER)
    assert (await api.gql(NODE, {"id": created["id"]}, viewer))["node"] == created
    assert (await api.gql(NODE, {"id": made_up_id(series.TYPE_NAME)}, viewer))["node"] is None
