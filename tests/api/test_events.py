"""Events across numbers (numberEvents) and the tags in use (tags), through the API."""

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from domain import events
from domain.clock import ManualClock
from domain.details import NumberDetails
from models import Number, NumberEvent, Organization, OrganizationKind, Role
from tests.support.api import Api, gid
from tests.support.databases import StatementCounter
from tests.support.world import World

EVENTS = """
query ($filter: NumberEventFilter, $first: Int, $after: String) {
  numberEvents(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { action actor e164 remark organization { name } } }
  }
}
"""
TAGS = "query ($prefix: String) { tags(prefix: $prefix) { tag count } }"


async def _events(api: Api, token: str | None = None, **variables: Any) -> dict[str, Any]:
    data = await api.gql(EVENTS, variables, token)
    return data["numberEvents"]  # type: ignore[no-any-return]


def _actions(connection: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["node"]["action"], e["node"]["e164"]) for e in connection["edges"]]


async def _tree(api: Api) -> tuple[World, Any, Any, Any]:
    world = World(api.db, api.clock, await api.root())
    partner = await world.org("Partner", OrganizationKind.PARTNER)
    c1 = await world.org("C1", OrganizationKind.CUSTOMER, partner)
    c2 = await world.org("C2", OrganizationKind.CUSTOMER, partner)
    return world, partner, c1, c2


async def test_events_across_numbers_newest_first_and_scoped_like_history(api: Api) -> None:
    world, partner, c1, c2 = await _tree(api)
    ones = await world.add(2, c1)
    twos = await world.add(1, c2)
    await world.reserve(ones[:1], c1, remark="c1 remark")
    provider = await _events(api)
    assert _actions(provider)[:2] == [("RESERVED", ones[0]), ("ADDED", twos[0])]
    assert provider["totalCount"] == 4
    assert provider["edges"][0]["node"]["organization"]["name"] == "C1"

    c2_token = await api.token_for(c2, Role.VIEWER)
    seen = await _events(api, c2_token)
    assert _actions(seen) == [("ADDED", twos[0])]
    assert seen["totalCount"] == 1
    partner_token = await api.token_for(partner, Role.VIEWER)
    assert (await _events(api, partner_token))["totalCount"] == 4


async def test_filters_and_keyset_pages(api: Api) -> None:
    clock = api.clock
    assert isinstance(clock, ManualClock)
    world, partner, c1, c2 = await _tree(api)
    numbers = await world.add(5, c1)
    start = clock.now()
    clock.advance(timedelta(hours=1))
    await world.lock(numbers[:3])
    until = clock.now() + timedelta(seconds=1)
    clock.advance(timedelta(hours=1))
    await world.unlock(numbers[:1])

    locked = await _events(api, filter={"actions": ["LOCKED"]})
    assert sorted(e164 for _, e164 in _actions(locked)) == numbers[:3]
    window = await _events(
        api,
        filter={"from": (start + timedelta(minutes=1)).isoformat(), "to": until.isoformat()},
    )
    assert {action for action, _ in _actions(window)} == {"LOCKED"}
    one = await _events(api, filter={"number": numbers[0].removeprefix("+")})
    assert [a for a, _ in _actions(one)] == ["UNLOCKED", "LOCKED", "ADDED"]
    assert (await _events(api, filter={"actor": "tester"}))["totalCount"] == 9
    assert (await _events(api, filter={"actor": "someone else"}))["totalCount"] == 0
    only_c2 = {"organizationId": str(c2.uuid), "includeDescendants": False}
    assert (await _events(api, filter=only_c2))["edges"] == []
    subtree = await _events(api, filter={"organizationId": gid(partner)})
    assert subtree["totalCount"] == 9

    seen: list[tuple[str, str]] = []
    after = None
    while True:
        page = await _events(api, first=4, after=after)
        seen += _actions(page)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == _actions(await _events(api, first=50))
    assert len(seen) == 9


async def _every_page(
    api: Api, token: str | None, spec: dict[str, Any] | None
) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    after = None
    while True:
        page = await _events(api, token, filter=spec, first=7, after=after)
        seen += _actions(page)
        if not page["pageInfo"]["hasNextPage"]:
            return seen
        after = page["pageInfo"]["endCursor"]


async def _read_directly(
    api: Api, pools: sa.ColumnElement[bool], actions: list[str] | None
) -> list[tuple[str, str]]:
    """The events of these pools (and actions), newest first, as the tables hold them."""
    query = (
        sa.select(NumberEvent.action, Number.e164)
        .join(Number, Number.id == NumberEvent.number_id)
        .join(Organization, Organization.id == NumberEvent.organization_id)
        .where(pools)
        .order_by(NumberEvent.id.desc())
    )
    if actions is not None:
        query = query.where(NumberEvent.action.in_(actions))
    async with api.db.read() as session:
        return [(action, e164) for action, e164 in await session.execute(query)]


async def test_pages_filtered_by_action_in_every_scope_are_its_events_newest_first(
    api: Api,
) -> None:
    """However a page is read (each pool's events, each pool's of each action, each
    action's across many pools, or a walk of every event), paging through it gives the
    scope's events of those actions and no other, newest first."""
    world = World(api.db, api.clock, await api.root())
    kind = OrganizationKind
    # More pools than are read one by one, then a few: a customer with a department.
    many = await world.org("Many", kind.PARTNER)
    many_pools = [many] + [
        await world.org(f"M{n}", kind.CUSTOMER, many) for n in range(events.MERGED_POOLS)
    ]
    few = await world.org("Few", kind.PARTNER)
    customer = await world.org("C", kind.CUSTOMER, few)
    department = await world.org("D", kind.DEPARTMENT, customer)
    pools = [*many_pools, few, customer, department]
    # One number at a time, pool after pool: every pool's events interleaved by id.
    numbers = {pool.id: await world.add(2, pool) for pool in pools}
    for step in range(2):
        for pool in pools:
            await world.lock(numbers[pool.id][step:] if step else numbers[pool.id][:1])
    for pool in pools:
        await world.unlock(numbers[pool.id][:1])
    for pool in pools[::2]:
        await world.reserve(numbers[pool.id][:1], pool)

    # More actions than are read one range each, some never done, one done left out.
    actions = ["ADDED", "LOCKED", "RESERVED", *(f"NEVER{n}" for n in range(6))]
    assert len(actions) > events.MERGED_RANGES
    specs: list[list[str] | None] = [
        None,
        ["LOCKED"],
        ["RESERVED", "UNLOCKED"],
        ["NEVER0"],
        actions,
    ]
    viewers: list[tuple[str | None, Organization]] = [(None, world.root)]
    for org in (many, few, customer, department):
        viewers.append((await api.token_for(org, Role.VIEWER), org))
    for token, org in viewers:
        for spec in specs:
            subtree = Organization.path.startswith(org.path)
            expected = await _read_directly(api, subtree, spec)
            seen = await _every_page(api, token, {"actions": spec} if spec else None)
            assert seen == expected, (org.name, spec)
    # One pool alone, its department's events left out.
    for spec in specs:
        only = {"organizationId": gid(customer), "includeDescendants": False}
        expected = await _read_directly(api, Organization.id == customer.id, spec)
        seen = await _every_page(api, None, {**only, "actions": spec})
        assert seen == expected, spec
    assert len(await _read_directly(api, Organization.id == customer.id, ["LOCKED"])) == 2


async def test_bad_filters_are_validation(api: Api) -> None:
    clock = api.clock
    later, now = clock.now() + timedelta(days=1), clock.now()
    cases = [
        {"from": later.isoformat(), "to": now.isoformat()},
        {"number": "not a number"},
        {"organizationId": "neither an id nor a uuid"},
    ]
    for spec in cases:
        errors = await api.errors(EVENTS, {"filter": spec})
        assert errors[0]["extensions"]["code"] == "VALIDATION", (spec, errors)
    errors = await api.errors(EVENTS, {"after": "bad cursor"})
    assert errors[0]["extensions"]["code"] == "VALIDATION"


async def test_an_invisible_organization_or_unknown_number_selects_nothing(api: Api) -> None:
    world, _partner, c1, c2 = await _tree(api)
    await world.add(2, c1)
    c2_token = await api.token_for(c2, Role.VIEWER)
    for spec in ({"organizationId": gid(c1)}, {"number": "+6569990000"}):
        page = await _events(api, c2_token, filter=spec)
        assert page["edges"] == []
        assert page["totalCount"] == 0


async def test_event_numbers_and_pools_without_n_plus_one(
    api: Api, statements: StatementCounter
) -> None:
    world, partner, c1, c2 = await _tree(api)
    # The token's first request in a minute also records its use: not counted here.
    await _events(api)
    counts = []
    for pool in (c1, c2, partner):
        await world.add(3, pool)
        statements.reset()
        await _events(api)
        counts.append(statements.count)
    assert counts[0] == counts[1] == counts[2], counts


async def test_a_page_loads_its_pools_once_and_only_when_asked(
    api: Api, statements: StatementCounter
) -> None:
    world, _partner, c1, c2 = await _tree(api)
    await world.add(2, c1)
    await world.add(1, c2)
    await _events(api)
    without = EVENTS.replace(" organization { name }", "")
    through_fragment = """
    query { numberEvents { totalCount edges { node { action e164 ...Pool } } } }
    fragment Pool on NumberEvent { organization { name } }
    """
    counts = {}
    for label, query in (("asked", EVENTS), ("not asked", without), ("fragment", through_fragment)):
        statements.reset()
        page = (await api.gql(query))["numberEvents"]
        counts[label] = statements.count
        names = [edge["node"].get("organization", {}).get("name") for edge in page["edges"]]
        assert names == ([None] * 3 if label == "not asked" else ["C2", "C1", "C1"]), label
    assert counts["asked"] == counts["fragment"] == counts["not asked"] + 1, counts


async def test_tags_counted_over_numbers_and_reservations_in_the_subtree(api: Api) -> None:
    world, _partner, c1, c2 = await _tree(api)
    ones = await world.add(3, c1)
    twos = await world.add(2, c2)
    await world.edit(ones, NumberDetails(tag="sales"))
    await world.edit(twos, NumberDetails(tag="Support"))
    await world.reserve(ones[:1], c1, tag="sales")
    await world.reserve(twos[:1], c2, tag="sally")
    everything = (await api.gql(TAGS))["tags"]
    assert everything == [
        {"tag": "sales", "count": 3},
        {"tag": "Support", "count": 2},
        {"tag": "sally", "count": 1},
    ]
    assert (await api.gql(TAGS, {"prefix": "sal"}))["tags"] == [
        {"tag": "sales", "count": 3},
        {"tag": "sally", "count": 1},
    ]
    assert (await api.gql(TAGS, {"prefix": "support"}))["tags"] == []
    c2_token = await api.token_for(c2, Role.VIEWER)
    assert (await api.gql(TAGS, token=c2_token))["tags"] == [
        {"tag": "Support", "count": 2},
        {"tag": "sally", "count": 1},
    ]


async def test_a_subscription_sent_over_http_is_refused_with_a_clear_error(api: Api) -> None:
    """GraphiQL sends a subscription over HTTP when it has not parsed the document yet (its
    fetcher picks the websocket from the parsed document). The answer says where
    subscriptions run, as a client error; it used to be a masked internal error (the
    Subscription root's field resolved to null)."""
    for document in (
        "subscription { numberEvents { action e164 } }",
        "query Q { viewer { tokenName } } subscription S { numberEvents { action } }",
    ):
        response = await api.client.post(
            "/graphql",
            json={"query": document, "operationName": "S" if "S {" in document else None},
            headers=api.auth(),
        )
        body = response.json()
        assert response.status_code == 400, body
        assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST", body
        assert "websocket" in body["errors"][0]["message"], body
    # The same document's query still runs over HTTP.
    both = "query Q { viewer { tokenName } } subscription S { numberEvents { action } }"
    response = await api.client.post(
        "/graphql", json={"query": both, "operationName": "Q"}, headers=api.auth()
    )
    assert response.json()["data"]["viewer"]["tokenName"]
