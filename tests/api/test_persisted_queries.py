"""Automatic persisted queries (Apollo's protocol) through the ASGI app: register, hit,
miss, mismatch, GET, the locked mode, and limits and scoping on the persisted path."""

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from domain.clock import ManualClock
from models import OrganizationKind, Role
from models.database import Database
from settings import Settings
from tests.support.api import Api, without_cost

VIEWER = "query Who { viewer { role } }"
ORGS = "query Orgs { organizations(first: 50) { edges { node { name } } } }"


def sha(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def apq(document: str | None, sha256: str, variables: dict[str, Any] | None = None) -> Any:
    body: dict[str, Any] = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256}}}
    if document is not None:
        body["query"] = document
    if variables is not None:
        body["variables"] = variables
    return body


async def send(api: Api, body: Any, token: str | None = None) -> httpx.Response:
    return await api.client.post("/graphql", json=body, headers=api.auth(token))


@pytest.fixture
async def locked(
    db: Database, settings: Settings, clock: ManualClock, root_token: str
) -> AsyncIterator[Api]:
    """The app with NUMBRA_PERSISTED_ONLY=true."""
    from web.app import create_app

    app = create_app(settings.model_copy(update={"persisted_only": True}), db=db, clock=clock)
    async with Api.open(app, root_token, db, clock) as client:
        yield client


async def test_an_unknown_hash_is_not_found_then_registered_then_served(api: Api) -> None:
    missed = await send(api, apq(None, sha(VIEWER)))
    assert missed.status_code == 200
    assert missed.json()["errors"] == [
        {"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}
    ]

    registered = await send(api, apq(VIEWER, sha(VIEWER)))
    assert without_cost(registered.json()) == {"data": {"viewer": {"role": "ADMIN"}}}

    hit = await send(api, apq(None, sha(VIEWER)))
    assert without_cost(hit.json()) == {"data": {"viewer": {"role": "ADMIN"}}}


async def test_a_hash_that_does_not_match_the_query_is_400(api: Api) -> None:
    wrong = await send(api, apq(VIEWER, sha(ORGS)))
    assert wrong.status_code == 400
    assert "provided sha does not match query" in wrong.text
    # Nothing was registered under either hash.
    for document in (VIEWER, ORGS):
        body = (await send(api, apq(None, sha(document)))).json()
        assert body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize(
    "extension",
    [{"version": 2, "sha256Hash": "0" * 64}, {"version": 1, "sha256Hash": "XYZ"}, "v1", None],
)
async def test_a_malformed_persisted_query_extension_is_400(api: Api, extension: Any) -> None:
    response = await send(api, {"extensions": {"persistedQuery": extension or {}}})
    assert response.status_code == 400


async def test_a_known_hash_works_over_get_for_queries_only(api: Api) -> None:
    await send(api, apq(VIEWER, sha(VIEWER)))
    params = {"extensions": json.dumps(apq(None, sha(VIEWER))["extensions"])}
    got = await api.client.get("/graphql", params=params, headers=api.auth())
    assert got.status_code == 200
    assert without_cost(got.json()) == {"data": {"viewer": {"role": "ADMIN"}}}

    mutation = (
        'mutation M { createOrganization(input: {name: "X", kind: CUSTOMER}) { __typename } }'
    )
    await send(api, apq(mutation, sha(mutation)))
    params = {"extensions": json.dumps(apq(None, sha(mutation))["extensions"])}
    refused = await api.client.get("/graphql", params=params, headers=api.auth())
    assert refused.status_code in (400, 405)


async def test_a_document_that_fails_validation_is_not_registered(api: Api) -> None:
    bad = "query Bad { viewer { nope } }"
    answered = (await send(api, apq(bad, sha(bad)))).json()
    assert answered["errors"]
    again = (await send(api, apq(None, sha(bad)))).json()
    assert again["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_limits_and_scoping_hold_on_the_persisted_path(api: Api) -> None:
    root = await api.root()
    partner = await api.org("Partner", OrganizationKind.PARTNER, root)
    other = await api.org("Other", OrganizationKind.PARTNER, root)
    await api.org("Customer", OrganizationKind.CUSTOMER, partner)
    partner_token = await api.token_for(partner, Role.VIEWER)

    # Registered by the provider, run by the partner: the partner sees its subtree only.
    await send(api, apq(ORGS, sha(ORGS)))
    seen = (await send(api, apq(None, sha(ORGS)), token=partner_token)).json()
    names = {edge["node"]["name"] for edge in seen["data"]["organizations"]["edges"]}
    assert names == {"Partner", "Customer"}
    assert other.name not in names

    # The page-size limit applies to variables sent with a hash.
    page = "query Page($first: Int) { numbers(first: $first) { edges { node { e164 } } } }"
    await send(api, apq(page, sha(page), {"first": 5}))
    too_many = (await send(api, apq(None, sha(page), {"first": 100_000}))).json()
    assert too_many["errors"], too_many

    # The depth limit refuses a deep document, which is then not registered either.
    deep = (
        "query Deep { viewer { " + "organization { parent { " * 12 + "name" + " } }" * 12 + " } }"
    )
    assert (await send(api, apq(deep, sha(deep)))).json()["errors"]
    missed = (await send(api, apq(None, sha(deep)))).json()
    assert missed["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"

    # No token: 401 before any lookup.
    anonymous = await api.client.post("/graphql", json=apq(None, sha(ORGS)))
    assert anonymous.status_code == 401


async def test_locked_mode_runs_registered_operations_only(locked: Api) -> None:
    root = await locked.root()
    partner = await locked.org("Partner", OrganizationKind.PARTNER, root)
    partner_admin = await locked.token_for(partner, Role.ADMIN)

    # A plain document that is not registered does not run.
    plain = (await locked.post(VIEWER)).json()
    assert plain["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_REGISTERED"
    # Only an ADMIN of the provider registers: not a partner's ADMIN.
    refused = (await send(locked, apq(VIEWER, sha(VIEWER)), token=partner_admin)).json()
    assert refused["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_REGISTERED"
    assert "data" not in refused or refused["data"] is None
    registered = without_cost((await send(locked, apq(VIEWER, sha(VIEWER)))).json())
    assert registered == {"data": {"viewer": {"role": "ADMIN"}}}

    # Then everyone runs it, by hash or by its text.
    by_hash = without_cost((await send(locked, apq(None, sha(VIEWER)), token=partner_admin)).json())
    assert by_hash == {"data": {"viewer": {"role": "ADMIN"}}}
    assert without_cost((await locked.post(VIEWER, token=partner_admin)).json()) == by_hash


async def test_a_document_registered_through_one_process_is_served_by_another(
    api: Api, db: Database, settings: Settings, clock: ManualClock
) -> None:
    from web.app import create_app

    await send(api, apq(VIEWER, sha(VIEWER)))
    async with Api.open(create_app(settings, db=db, clock=clock), api.token, db, clock) as other:
        hit = await send(other, apq(None, sha(VIEWER)))
    assert without_cost(hit.json()) == {"data": {"viewer": {"role": "ADMIN"}}}


async def test_the_redis_store_keeps_documents_for_every_process() -> None:
    """Against the test Redis, on keys of this test's own (no flush: others share it)."""
    import redis.asyncio

    from domain.persisted import REDIS_PREFIX, RedisStore
    from tests.support.databases import service_unavailable
    from tests.support.job_processes import REDIS_URL

    document = f"query Mine {{ viewer {{ role }} }} # {uuid.uuid4()}"
    key = sha(document)
    client = redis.asyncio.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (redis.RedisError, OSError) as exc:
        await client.aclose()
        service_unavailable("Redis", exc)
    one, other = RedisStore(REDIS_URL, capacity=10_000), RedisStore(REDIS_URL, capacity=10_000)
    try:
        assert await other.get(key) is None
        assert await one.add(key, document)
        assert await other.get(key) == document
    finally:
        await client.delete(REDIS_PREFIX + key)
        await client.srem(REDIS_PREFIX + "keys", key)
        for store in (one, other):
            await store.redis.aclose()
        await client.aclose()
