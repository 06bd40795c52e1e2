"""Cost limits (issue 17): every answer carries its cost; a token over its budget for the
minute gets 429 with Retry-After and RATE_LIMITED, and nothing runs; failed
authentications are limited per client address. The README's worked examples are the
first tests."""

import hashlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from domain.clock import ManualClock
from models import NumberState, Role
from models.database import Database
from settings import Settings
from tests.support.api import Api, gid
from tests.support.databases import StatementCounter
from tests.support.world import World

# README, "Cost limits": the worked examples and the cost each is documented to have.
EXAMPLE_QUERY = """
{
  organizations(first: 20) {
    edges { node { name numbers(first: 50) { totalCount edges { node { e164 } } } } }
  }
}"""
EXAMPLE_QUERY_COST = 12  # 1 + ceil((20 + 20 * 50) / 100) = 1 + ceil(10.2)
EXAMPLE_MUTATION = """
mutation($numbers: [String!]!, $for: ID!) {
  reserveNumbers(input: {numbers: $numbers, reservedForId: $for}) {
    numbers { e164 state }
    userErrors { code }
  }
}"""
EXAMPLE_MUTATION_COST = 14  # 1 + 10 + ceil(250 / 100)
BUDGET = 30
RELEASE_ONE = (
    'mutation { releaseNumbers(input: {numbers: ["+6561000001"]}) { userErrors { code } } }'
)


@pytest.fixture
async def limited(
    db: Database, settings: Settings, clock: ManualClock, root_token: str
) -> AsyncIterator[Api]:
    """The app with a budget of BUDGET a minute and 3 failed authentications a minute."""
    from web.app import create_app

    tight = settings.model_copy(
        update={"cost_budget_per_minute": BUDGET, "auth_failures_per_minute": 3}
    )
    async with Api.open(create_app(tight, db=db, clock=clock), root_token, db, clock) as api:
        yield api


def cost(response: httpx.Response) -> dict[str, Any]:
    found: dict[str, Any] = response.json()["extensions"]["cost"]
    return found


async def test_the_readme_examples_cost_what_the_readme_says(api: Api) -> None:
    query = await api.post(EXAMPLE_QUERY)
    assert query.status_code == 200
    assert cost(query)["requested"] == EXAMPLE_QUERY_COST

    numbers = [f"+6561{i:07d}" for i in range(250)]
    mutation = await api.post(EXAMPLE_MUTATION, {"numbers": numbers, "for": gid(await api.root())})
    assert mutation.status_code == 200
    assert cost(mutation)["requested"] == EXAMPLE_MUTATION_COST


@pytest.mark.parametrize(
    ("document", "variables", "expected"),
    [
        ("{ __typename }", {}, 1),
        # Defaults: organizations 100, Organization.numbers 50.
        ("{ organizations { edges { node { numbers { totalCount } } } } }", {}, 1 + 51),
        # A variable, its default, and a null (the largest page, 500).
        ("query($n: Int) { numbers(first: $n) { totalCount } }", {"n": 101}, 1 + 2),
        ("query($n: Int = 300) { numbers(first: $n) { totalCount } }", {}, 1 + 3),
        ("query($n: Int) { numbers(first: $n) { totalCount } }", {"n": None}, 1 + 5),
        # Past the largest page counts as it (the field refuses it anyway).
        ("{ numbers(first: 100000) { totalCount } }", {}, 1 + 5),
        # Each alias and each spread counts.
        (
            "{ a: numbers(first: 100) { totalCount } b: numbers(first: 100) { totalCount } }",
            {},
            1 + 2,
        ),
        ("{ ...F ...F } fragment F on Query { numbers(first: 100) { totalCount } }", {}, 1 + 2),
        # A mutation: 10, and 1 per 100 numbers named, rounded up.
        (
            RELEASE_ONE,
            {},
            1 + 10 + 1,
        ),
        (
            'mutation { createSeries(input: {name: "x", prefix: "+6569", country: "SG"}) '
            "{ userErrors { code } } }",
            {},
            1 + 10,
        ),
        # Not a document: the operation alone.
        ("{ nonsense", {}, 1),
    ],
)
async def test_the_cost_of_a_request(
    api: Api, document: str, variables: dict[str, Any], expected: int
) -> None:
    assert cost(await api.post(document, variables))["requested"] == expected


async def test_every_answer_carries_the_budget_left_and_when_it_resets(
    limited: Api, clock: ManualClock
) -> None:
    clock.advance(timedelta(seconds=20))
    first = cost(await limited.post("{ __typename }"))
    second = cost(await limited.post(EXAMPLE_QUERY))
    assert first == {
        "requested": 1,
        "remaining": BUDGET - 1,
        "resetAt": "2026-03-02T09:01:00+00:00",
    }
    assert second == {
        "requested": EXAMPLE_QUERY_COST,
        "remaining": BUDGET - 1 - EXAMPLE_QUERY_COST,
        "resetAt": "2026-03-02T09:01:00+00:00",
    }
    # Refused answers carry it too (a document that does not validate).
    assert cost(await limited.post("{ nothing }"))["remaining"] == second["remaining"] - 1


async def test_over_budget_is_429_with_retry_after_and_nothing_runs(
    limited: Api, clock: ManualClock, statements: StatementCounter
) -> None:
    root = await limited.root()
    [number] = await World(limited.db, clock, root).add(1)
    clock.advance(timedelta(seconds=45))
    await limited.post("{ __typename }")
    statements.reset()
    await limited.post("{ __typename }")
    lookup = statements.count  # the token's lookup: nothing of the operation
    assert (await limited.post(EXAMPLE_QUERY)).status_code == 200
    assert (await limited.post(RELEASE_ONE)).status_code == 200
    remaining = BUDGET - 2 - EXAMPLE_QUERY_COST - 12  # 4: a mutation costs at least 11

    statements.reset()
    refused = await limited.post(EXAMPLE_MUTATION, {"numbers": [number], "for": gid(root)})
    assert statements.count == lookup
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "15"
    body = refused.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {"code": "RATE_LIMITED"}
    assert error["message"] == (
        f"this request costs 12 and 4 of this token's budget of {BUDGET} a minute is left: "
        "retry in 15 s"
    )
    assert body["extensions"]["cost"] == {
        "requested": 12,
        "remaining": remaining,
        "resetAt": "2026-03-02T09:01:00+00:00",
    }
    assert (await World(limited.db, clock, root).row(number)).state is NumberState.AVAILABLE

    clock.advance(timedelta(seconds=15))
    again = await limited.post(EXAMPLE_MUTATION, {"numbers": [number], "for": gid(root)})
    assert again.status_code == 200
    assert again.json()["data"]["reserveNumbers"]["userErrors"] == []
    assert cost(again)["remaining"] == BUDGET - 12


async def test_a_request_dearer_than_the_whole_budget_says_so(limited: Api) -> None:
    refused = await limited.post(
        "{ numbers(first: 500) { edges { node { history(first: 50) { totalCount } } } } }"
    )
    assert refused.status_code == 429
    [error] = refused.json()["errors"]
    assert error["message"] == (
        f"this request costs 256, more than the whole budget of {BUDGET} a minute: "
        "ask for smaller pages"
    )


async def test_each_token_has_a_budget_of_its_own(limited: Api) -> None:
    other = await limited.token_for(await limited.root(), Role.VIEWER, "other")
    assert (await limited.post(EXAMPLE_QUERY)).status_code == 200
    assert (await limited.post(EXAMPLE_QUERY)).status_code == 200
    assert (await limited.post(EXAMPLE_QUERY)).status_code == 429
    answer = await limited.post(EXAMPLE_QUERY, token=other)
    assert answer.status_code == 200
    assert cost(answer)["remaining"] == BUDGET - EXAMPLE_QUERY_COST


def _sha(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


async def test_persisted_queries_and_get_are_charged_alike(limited: Api) -> None:
    document = (
        "query Orgs { organizations(first: 20) "
        "{ edges { node { numbers(first: 50) { totalCount } } } } }"
    )
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": _sha(document)}}
    missed = await limited.client.post(
        "/graphql", json={"extensions": extensions}, headers=limited.auth()
    )
    assert cost(missed) == cost(missed) | {"requested": 1, "remaining": BUDGET - 1}
    registered = await limited.client.post(
        "/graphql", json={"query": document, "extensions": extensions}, headers=limited.auth()
    )
    assert cost(registered)["requested"] == EXAMPLE_QUERY_COST
    params = {"extensions": json.dumps(extensions)}
    by_get = await limited.client.get("/graphql", params=params, headers=limited.auth())
    assert by_get.status_code == 200
    assert cost(by_get)["requested"] == EXAMPLE_QUERY_COST
    assert cost(by_get)["remaining"] == BUDGET - 1 - 2 * EXAMPLE_QUERY_COST
    refused = await limited.client.get("/graphql", params=params, headers=limited.auth())
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "60"


# ---- failed authentications ----


async def test_failed_authentications_are_limited_per_client_address(
    limited: Api, clock: ManualClock, statements: StatementCounter
) -> None:
    for _ in range(3):
        assert (await limited.post("{ __typename }", token="nbr_guess")).status_code == 401
    statements.reset()
    refused = await limited.post("{ __typename }")  # even a valid token, from this address
    assert statements.count == 0
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "60"
    assert refused.json()["errors"][0]["extensions"] == {"code": "RATE_LIMITED"}
    assert (
        await limited.client.get("/export/numbers.csv", headers=limited.auth())
    ).status_code == 429

    clock.advance(timedelta(minutes=1))
    assert (await limited.post("{ __typename }")).status_code == 200
