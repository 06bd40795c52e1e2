"""Webhook endpoints and their delivery log through the API: ADMIN only, scoped to the
subtree, every problem in userErrors, URLs refused where deliveries may not go."""

from typing import Any

import pytest
import sqlalchemy as sa

from domain import ids
from domain.csv import imports
from models import Number, NumberEvent, NumberState, OrganizationKind, Role
from settings import Settings
from tests.support.api import Api, gid
from tests.support.databases import StatementCounter
from tests.support.world import World

CREATE = """
mutation ($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) {
    endpoint { id url actions enabled disabledReason organization { name } }
    secret
    userErrors { code field message }
  }
}
"""
UPDATE = """
mutation ($input: UpdateWebhookEndpointInput!) {
  updateWebhookEndpoint(input: $input) {
    endpoint { id url actions enabled }
    secret
    userErrors { code field }
  }
}
"""
DELETE = """
mutation ($input: DeleteWebhookEndpointInput!) {
  deleteWebhookEndpoint(input: $input) { endpoint { id } secret userErrors { code field } }
}
"""
PING = """
mutation ($input: PingWebhookEndpointInput!) {
  pingWebhookEndpoint(input: $input) {
    delivery { id eventId action status attempts nextAttemptAt endpoint { id } }
    userErrors { code field }
  }
}
"""
REDELIVER = """
mutation ($input: RedeliverWebhookInput!) {
  redeliverWebhook(input: $input) { delivery { id status } userErrors { code field } }
}
"""
ENDPOINTS = """
query ($first: Int, $after: String, $status: WebhookDeliveryStatus) {
  webhookEndpoints(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      id url organization { name }
      deliveries(first: 5, status: $status) {
        totalCount
        edges { node { id action status attempts lastResponseStatus lastError eventId } }
      }
    } }
  }
}
"""
URL = "https://hooks.example.com/numbra"


@pytest.fixture
def settings(database_url: str) -> Settings:
    # example.com resolves to public addresses; no test sends anything to it.
    return Settings(_env_file=None, database_url=database_url, webhook_allow_private=True)


async def _create(api: Api, token: str | None = None, **fields: Any) -> dict[str, Any]:
    data = await api.gql(CREATE, {"input": {"url": URL} | fields}, token)
    return data["createWebhookEndpoint"]  # type: ignore[no-any-return]


async def test_create_list_update_and_delete(api: Api) -> None:
    created = await _create(api, actions=["RESERVED", "ASSIGNED"])
    assert created["userErrors"] == []
    assert created["secret"].startswith("whsec_")
    endpoint = created["endpoint"]
    assert endpoint["actions"] == ["RESERVED", "ASSIGNED"]
    assert (endpoint["enabled"], endpoint["disabledReason"]) == (True, None)
    listed = (await api.gql(ENDPOINTS))["webhookEndpoints"]
    assert listed["totalCount"] == 1
    assert listed["edges"][0]["node"]["id"] == endpoint["id"]
    node = await api.gql("query ($id: ID!) { node(id: $id) { id } }", {"id": endpoint["id"]})
    assert node["node"] == {"id": endpoint["id"]}

    changed = (
        await api.gql(UPDATE, {"input": {"id": endpoint["id"], "actions": [], "enabled": False}})
    )["updateWebhookEndpoint"]
    assert changed["endpoint"]["actions"] == []
    assert changed["endpoint"]["enabled"] is False
    assert changed["secret"] is None
    rotated = (await api.gql(UPDATE, {"input": {"id": endpoint["id"], "rotateSecret": True}}))[
        "updateWebhookEndpoint"
    ]
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != created["secret"]

    deleted = (await api.gql(DELETE, {"input": {"id": endpoint["id"]}}))["deleteWebhookEndpoint"]
    assert deleted["userErrors"] == []
    assert (await api.gql(ENDPOINTS))["webhookEndpoints"]["totalCount"] == 0


async def test_every_problem_is_reported_and_nothing_is_created(api: Api) -> None:
    refused = await _create(
        api, url="ftp://x", actions=["reserved", "OK"], organizationId="not-an-id"
    )
    assert refused["endpoint"] is None
    assert refused["secret"] is None
    assert sorted((e["code"], tuple(e["field"])) for e in refused["userErrors"]) == [
        ("VALIDATION", ("input", "actions")),
        ("VALIDATION", ("input", "organizationId")),
        ("VALIDATION", ("input", "url")),
    ]
    assert (await api.gql(ENDPOINTS))["webhookEndpoints"]["totalCount"] == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/x",
        "https://127.0.0.1/x",
        "https://localhost/x",
        "https://10.1.2.3/x",
        "https://192.168.0.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://224.0.0.1/x",
        "https://0.0.0.0/x",
        "https://no-such-host.invalid/x",
        "https://" + "ü" * 300 + "/x",
        "https://a b/x",
        "https://[::1/x",
        "https://host:99999/x",
        "https://user:pw@hooks.example.com/x",
        "https://" + "a" * 2000,
        "",
    ],
)
async def test_targets_deliveries_may_not_reach_are_refused(
    api: Api, settings: Settings, url: str
) -> None:
    settings.webhook_allow_private = False
    refused = await _create(api, url=url)
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [
        ("VALIDATION", ["input", "url"])
    ]


async def test_only_admins_change_endpoints(api: Api) -> None:
    endpoint = (await _create(api))["endpoint"]
    operator = await api.token_for(await api.root(), Role.OPERATOR)
    for query, variables in [
        (CREATE, {"url": URL}),
        (UPDATE, {"id": endpoint["id"], "enabled": False}),
        (DELETE, {"id": endpoint["id"]}),
        (PING, {"id": endpoint["id"]}),
    ]:
        data = await api.gql(query, {"input": variables}, operator)
        [payload] = data.values()
        assert [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"]
    listed = (await api.gql(ENDPOINTS, token=operator))["webhookEndpoints"]
    assert listed["totalCount"] == 1


async def test_another_subtrees_endpoint_is_not_found_as_a_made_up_one(api: Api) -> None:
    world = World(api.db, api.clock, await api.root())
    mine = await world.org("Mine", OrganizationKind.PARTNER)
    theirs = await world.org("Theirs", OrganizationKind.PARTNER)
    their_endpoint = (await _create(api, organizationId=gid(theirs)))["endpoint"]["id"]
    ping = (await api.gql(PING, {"input": {"id": their_endpoint}}))["pingWebhookEndpoint"]
    their_delivery = ping["delivery"]["id"]
    made_up = "V2ViaG9va0VuZHBvaW50OjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMA"
    token = await api.token_for(mine, Role.ADMIN)
    for query, name, field in [
        (UPDATE, "updateWebhookEndpoint", "id"),
        (DELETE, "deleteWebhookEndpoint", "id"),
        (PING, "pingWebhookEndpoint", "id"),
        (REDELIVER, "redeliverWebhook", "deliveryId"),
    ]:
        real = their_delivery if field == "deliveryId" else their_endpoint
        answers = [
            (await api.gql(query, {"input": {field: ref}}, token))[name] for ref in (real, made_up)
        ]
        assert answers[0] == answers[1]
        assert [e["code"] for e in answers[0]["userErrors"]] == ["NOT_FOUND"]
    for ref in (their_endpoint, their_delivery):
        node = await api.gql("query ($id: ID!) { node(id: $id) { id } }", {"id": ref}, token)
        assert node["node"] is None
    assert (await api.gql(ENDPOINTS, token=token))["webhookEndpoints"]["totalCount"] == 0
    with_theirs = await api.gql(
        CREATE, {"input": {"url": URL, "organizationId": gid(theirs)}}, token
    )
    assert [e["code"] for e in with_theirs["createWebhookEndpoint"]["userErrors"]] == ["NOT_FOUND"]


async def test_events_fill_the_delivery_log_and_a_ping_joins_it(api: Api) -> None:
    world = World(api.db, api.clock, await api.root())
    endpoint = (await _create(api, actions=["ADDED"]))["endpoint"]
    await world.add(2)
    ping = (await api.gql(PING, {"input": {"id": endpoint["id"]}}))["pingWebhookEndpoint"]
    delivery = ping["delivery"]
    assert (delivery["action"], delivery["status"], delivery["attempts"]) == ("PING", "PENDING", 0)
    assert delivery["endpoint"]["id"] == endpoint["id"]
    log = (await api.gql(ENDPOINTS))["webhookEndpoints"]["edges"][0]["node"]["deliveries"]
    assert log["totalCount"] == 3
    assert [edge["node"]["action"] for edge in log["edges"]] == ["PING", "ADDED", "ADDED"]
    assert len({edge["node"]["eventId"] for edge in log["edges"]}) == 3
    failed = await api.gql(ENDPOINTS, {"status": "FAILED"})
    assert failed["webhookEndpoints"]["edges"][0]["node"]["deliveries"]["totalCount"] == 0
    again = await api.gql(REDELIVER, {"input": {"deliveryId": delivery["id"]}})
    assert again["redeliverWebhook"]["delivery"]["status"] == "PENDING"


async def test_an_imports_added_events_each_get_their_delivery(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of 2: each imported number's ADDED event is written with its number (on
    PostgreSQL in the same statement) and gets its delivery, as an added one does."""
    monkeypatch.setattr(imports, "CHUNK", 2)
    await _create(api, actions=["ADDED"])
    numbers = [f"+656100070{i}" for i in range(5)]
    rows = "".join(f"{n},Singtel,SG,DID\n" for n in numbers)
    response = await api.upload_csv("number,vendor,country,sku\n" + rows)
    assert response.status_code == 200, response.text
    log = (await api.gql(ENDPOINTS))["webhookEndpoints"]["edges"][0]["node"]["deliveries"]
    assert log["totalCount"] == len(numbers)
    assert {edge["node"]["action"] for edge in log["edges"]} == {"ADDED"}
    async with api.db.read() as session:
        events = await session.execute(
            sa.select(Number.e164, NumberEvent.id, NumberEvent.to_state)
            .join(Number, Number.id == NumberEvent.number_id)
            .where(NumberEvent.action == "ADDED")
        )
        added = {e164: (event_id, state) for e164, event_id, state in events}
    assert sorted(added) == numbers
    assert {state for _, state in added.values()} == {NumberState.AVAILABLE}
    assert {edge["node"]["eventId"] for edge in log["edges"]} == {
        ids.encode("NumberEvent", str(event_id)) for event_id, _ in added.values()
    }


async def test_pages_of_endpoints(api: Api) -> None:
    for _ in range(3):
        await _create(api)
    first = (await api.gql(ENDPOINTS, {"first": 2}))["webhookEndpoints"]
    assert first["pageInfo"]["hasNextPage"] is True
    after = first["pageInfo"]["endCursor"]
    rest = (await api.gql(ENDPOINTS, {"first": 2, "after": after}))["webhookEndpoints"]
    assert len(rest["edges"]) == 1
    assert rest["pageInfo"]["hasNextPage"] is False


async def test_statements_do_not_grow_with_the_endpoints_listed(
    api: Api, statements: StatementCounter
) -> None:
    world = World(api.db, api.clock, await api.root())
    counts = []
    for endpoints in (2, 6):
        while (await api.gql(ENDPOINTS))["webhookEndpoints"]["totalCount"] < endpoints:
            await _create(api)
        await world.add(1)
        await api.gql(ENDPOINTS)  # the token's first use of the minute is marked
        statements.reset()
        await api.gql(ENDPOINTS)
        counts.append(statements.count)
    assert counts[0] == counts[1]


async def test_a_disabled_endpoint_is_neither_pinged_nor_redelivered_to(api: Api) -> None:
    endpoint = (await _create(api))["endpoint"]
    delivery = (await api.gql(PING, {"input": {"id": endpoint["id"]}}))["pingWebhookEndpoint"]
    await api.gql(UPDATE, {"input": {"id": endpoint["id"], "enabled": False}})
    ping = (await api.gql(PING, {"input": {"id": endpoint["id"]}}))["pingWebhookEndpoint"]
    assert [(e["code"], e["field"]) for e in ping["userErrors"]] == [("CONFLICT", ["input", "id"])]
    again = await api.gql(REDELIVER, {"input": {"deliveryId": delivery["delivery"]["id"]}})
    assert [e["code"] for e in again["redeliverWebhook"]["userErrors"]] == ["CONFLICT"]
