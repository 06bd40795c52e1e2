"""Tokens (issue 17): expiry, the subtree's list, revocation effective from the very next
request in every process, lastUsedAt to the minute, and NOT_FOUND for what a token may
not see exactly as for a made-up id."""

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from domain import access, ids, tokens
from domain.clock import ManualClock
from models import Organization, OrganizationKind, Role, Token
from models.database import Database
from settings import Settings
from tests.support.api import Api, gid
from tests.support.databases import StatementCounter

CREATE_TOKEN = """
mutation($input: CreateTokenInput!) {
  createToken(input: $input) { token userErrors { code field } }
}"""

TOKENS = """
query($first: Int, $after: String, $revoked: Boolean) {
  tokens(first: $first, after: $after, includeRevoked: $revoked) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node {
      id name role createdAt expiresAt lastUsedAt revokedAt organization { name }
    } }
  }
}"""

REVOKE = """
mutation($id: ID!) {
  revokeToken(input: {id: $id}) {
    token { id name revokedAt }
    userErrors { code field message }
  }
}"""

NODE = "query($id: ID!) { node(id: $id) { id ... on Token { name role } } }"
VIEWER = "{ viewer { tokenName } }"


async def _tree(api: Api) -> dict[str, Organization]:
    root = await api.root()
    p1 = await api.org("P1", OrganizationKind.PARTNER, root)
    c1 = await api.org("C1", OrganizationKind.CUSTOMER, p1)
    c2 = await api.org("C2", OrganizationKind.CUSTOMER, p1)
    return {"root": root, "P1": p1, "C1": c1, "C2": c2}


async def _uuid_of(db: Database, name: str) -> uuid.UUID:
    async with db.read() as session:
        found = await session.scalar(sa.select(Token.uuid).where(Token.name == name))
    assert found is not None
    return found


def token_gid(key: uuid.UUID) -> str:
    return ids.encode(tokens.TYPE_NAME, key)


async def _listed(api: Api, token: str, **variables: Any) -> list[dict[str, Any]]:
    answer = await api.gql(TOKENS, variables, token)
    return [edge["node"] for edge in answer["tokens"]["edges"]]


# ---- expiry ----


async def test_a_token_that_expires_works_until_then_and_is_401_after(
    api: Api, clock: ManualClock
) -> None:
    root = gid(await api.root())
    expires = clock.now() + timedelta(hours=1)
    made = await api.gql(
        CREATE_TOKEN,
        {
            "input": {
                "name": "for an hour",
                "organizationId": root,
                "role": "VIEWER",
                "expiresAt": expires.isoformat(),
            }
        },
    )
    token = made["createToken"]["token"]
    assert (await api.gql(VIEWER, token=token))["viewer"]["tokenName"] == "for an hour"
    [listed] = [t for t in await _listed(api, api.token) if t["name"] == "for an hour"]
    assert listed["expiresAt"] == expires.isoformat()

    clock.advance(timedelta(hours=1))
    assert (await api.post(VIEWER, token=token)).status_code == 401


async def test_an_expiry_not_in_the_future_is_refused_with_every_other_problem(
    api: Api, clock: ManualClock
) -> None:
    for when in (clock.now(), clock.now() - timedelta(days=1)):
        answer = await api.gql(
            CREATE_TOKEN,
            {
                "input": {
                    "name": " ",
                    "organizationId": gid(await api.root()),
                    "role": "ADMIN",
                    "expiresAt": when.isoformat(),
                }
            },
        )
        assert answer["createToken"]["token"] is None
        assert sorted(tuple(e["field"]) for e in answer["createToken"]["userErrors"]) == [
            ("input", "expiresAt"),
            ("input", "name"),
        ]


# ---- the list ----


async def test_an_admin_lists_its_subtree_s_tokens_paged_and_never_their_secrets(
    api: Api,
) -> None:
    orgs = await _tree(api)
    p1_admin = await api.token_for(orgs["P1"], Role.ADMIN, "p1 admin")
    made = {
        await api.token_for(orgs[label], role, f"{label} {role}")
        for label in ("C1", "C2")
        for role in Role
    }
    above = await api.token_for(orgs["root"], Role.VIEWER, "root viewer")

    seen: list[dict[str, Any]] = []
    after = None
    while True:
        answer = await api.post(TOKENS, {"first": 2, "after": after}, p1_admin)
        body = answer.json()
        page = body["data"]["tokens"]
        seen += [edge["node"] for edge in page["edges"]]
        text = json.dumps(body)
        assert all(raw not in text for raw in (*made, p1_admin, above))
        assert all(access.hash_token(raw) not in text for raw in made)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    names = [t["name"] for t in seen]
    assert sorted(names) == sorted(["p1 admin", *(f"{c} {r}" for c in ("C1", "C2") for r in Role)])
    assert page["totalCount"] == len(names) == 7
    assert {t["organization"]["name"] for t in seen} == {"P1", "C1", "C2"}


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
async def test_only_admins_list_tokens(api: Api, role: Role) -> None:
    token = await api.token_for(await api.root(), role)
    [error] = await api.errors(TOKENS, {}, token)
    assert error["extensions"]["code"] == "FORBIDDEN"


async def test_revoked_tokens_are_listed_only_when_asked_for(api: Api) -> None:
    root = await api.root()
    await api.token_for(root, Role.VIEWER, "to revoke")
    key = await _uuid_of(api.db, "to revoke")
    await api.gql(REVOKE, {"id": token_gid(key)})
    assert "to revoke" not in [t["name"] for t in await _listed(api, api.token)]
    [revoked] = [t for t in await _listed(api, api.token, revoked=True) if t["name"] == "to revoke"]
    assert revoked["revokedAt"] is not None


async def test_a_cursor_that_is_not_one_is_a_validation_error(api: Api) -> None:
    for after in ("nonsense", "WyJ4Il0=", "WyJ4IiwgInkiXQ=="):
        [error] = await api.errors(TOKENS, {"after": after})
        assert error["extensions"] == {"code": "VALIDATION", "field": ["after"]}, after


# ---- revoking ----


async def test_a_revoked_token_is_refused_from_the_very_next_request_in_every_process(
    api: Api, db: Database, settings: Settings, clock: ManualClock
) -> None:
    """Two apps on one database stand for two processes: neither caches a token."""
    from web.app import create_app

    target = await api.token_for(await api.root(), Role.OPERATOR, "leaked")
    async with Api.open(create_app(settings, db=db, clock=clock), api.token, db, clock) as other:
        assert (await other.post(VIEWER, token=target)).status_code == 200
        answer = await api.gql(REVOKE, {"id": token_gid(await _uuid_of(db, "leaked"))})
        assert answer["revokeToken"]["userErrors"] == []
        assert answer["revokeToken"]["token"]["revokedAt"] == clock.now().isoformat()
        assert (await other.post(VIEWER, token=target)).status_code == 401
        assert (await api.post(VIEWER, token=target)).status_code == 401


@pytest.mark.parametrize("role", list(Role))
async def test_any_token_revokes_itself(api: Api, role: Role) -> None:
    orgs = await _tree(api)
    token = await api.token_for(orgs["C1"], role, "myself")
    answer = await api.gql(REVOKE, {"id": str(await _uuid_of(api.db, "myself"))}, token)
    assert answer["revokeToken"]["token"]["name"] == "myself"
    assert (await api.post(VIEWER, token=token)).status_code == 401


async def test_revoking_a_revoked_token_changes_nothing(api: Api, clock: ManualClock) -> None:
    await api.token_for(await api.root(), Role.VIEWER, "twice")
    target = token_gid(await _uuid_of(api.db, "twice"))
    first = (await api.gql(REVOKE, {"id": target}))["revokeToken"]["token"]["revokedAt"]
    clock.advance(timedelta(minutes=5))
    again = await api.gql(REVOKE, {"id": target})
    assert again["revokeToken"] == {
        "token": {"id": target, "name": "twice", "revokedAt": first},
        "userErrors": [],
    }


async def test_a_token_that_cannot_see_a_token_gets_not_found_as_for_a_made_up_id(
    api: Api,
) -> None:
    orgs = await _tree(api)
    c1_admin = await api.token_for(orgs["C1"], Role.ADMIN, "c1 admin")
    c1_operator = await api.token_for(orgs["C1"], Role.OPERATOR, "c1 operator")
    for label, name in (("C2", "c2 token"), ("P1", "p1 token"), ("root", "root token")):
        await api.token_for(orgs[label], Role.VIEWER, name)
    await api.token_for(orgs["C1"], Role.VIEWER, "c1 viewer")

    async def answers(token: str, key: uuid.UUID) -> tuple[str, str]:
        revoke = (await api.post(REVOKE, {"id": token_gid(key)}, token)).json()
        node = (await api.post(NODE, {"id": token_gid(key)}, token)).json()
        for body in (revoke, node):
            body.pop("extensions")
        return (
            json.dumps(revoke).replace(token_gid(key), "<id>"),
            json.dumps(node).replace(token_gid(key), "<id>"),
        )

    made_up = await answers(c1_admin, uuid.uuid4())
    assert '"code": "NOT_FOUND"' in made_up[0]
    assert made_up[1] == '{"data": {"node": null}}'
    for name in ("c2 token", "p1 token", "root token"):
        assert await answers(c1_admin, await _uuid_of(api.db, name)) == made_up, name
    # Below ADMIN a token sees no token but itself, even in its own organization.
    for name in ("c1 viewer", "c1 admin", "c2 token"):
        assert await answers(c1_operator, await _uuid_of(api.db, name)) == made_up, name
    # Nothing was revoked.
    for name in ("c2 token", "p1 token", "root token", "c1 viewer"):
        async with api.db.read() as session:
            row = await session.scalar(sa.select(Token).where(Token.name == name))
        assert row is not None
        assert row.revoked_at is None


async def test_an_admin_revokes_and_fetches_tokens_below_it(api: Api) -> None:
    orgs = await _tree(api)
    p1_admin = await api.token_for(orgs["P1"], Role.ADMIN, "p1 admin")
    target = await api.token_for(orgs["C2"], Role.OPERATOR, "c2 operator")
    key = token_gid(await _uuid_of(api.db, "c2 operator"))
    node = await api.gql(NODE, {"id": key}, p1_admin)
    assert node["node"] == {"id": key, "name": "c2 operator", "role": "OPERATOR"}
    answer = await api.gql(REVOKE, {"id": key}, p1_admin)
    assert answer["revokeToken"]["userErrors"] == []
    assert (await api.post(VIEWER, token=target)).status_code == 401


async def test_an_id_that_names_no_token_is_a_validation_error(api: Api) -> None:
    for bad in ("nonsense", gid(await api.root())):
        answer = await api.gql(REVOKE, {"id": bad})
        [error] = answer["revokeToken"]["userErrors"]
        assert (error["code"], error["field"]) == ("VALIDATION", ["input", "id"])


# ---- last use ----


async def test_last_use_is_kept_to_the_minute_with_one_write_a_minute(
    api: Api, clock: ManualClock, statements: StatementCounter
) -> None:
    clock.advance(timedelta(seconds=17))
    token = await api.token_for(await api.root(), Role.VIEWER, "busy")

    async def last_used() -> str | None:
        [row] = [t for t in await _listed(api, api.token) if t["name"] == "busy"]
        return row["lastUsedAt"]  # type: ignore[no-any-return]

    assert await last_used() is None
    await api.gql(VIEWER, token=token)  # marks it used this minute
    assert await last_used() == "2026-03-02T09:00:00+00:00"

    statements.reset()
    for _ in range(5):
        await api.gql(VIEWER, token=token)
    # Each request is its token's lookup and the viewer's organization: no write.
    assert statements.count == 5 * 2

    clock.advance(timedelta(minutes=3))
    await api.gql(VIEWER, token=token)
    assert await last_used() == "2026-03-02T09:03:00+00:00"


async def test_authentication_stays_one_cheap_statement(
    api: Api, statements: StatementCounter
) -> None:
    """No cache outlives a revocation, so each request looks its token up: one statement
    on the token's unique hash, and no write within the minute of its last use."""
    await api.gql("{ __typename }")
    statements.reset()
    rounds = 20
    for _ in range(rounds):
        await api.gql("{ __typename }")
    assert statements.count == rounds
