"""Finding numbers through the API: the NumberFilter of `numbers` and `numberCounts`.

One test per filter field, every form of the pattern language (the contract's
description of NumberFilter is normative), combined filters, paging by cursor,
per-state counts, and scoping to the token's subtree.
"""

import asyncio
import json
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from domain import ids
from models import Organization, OrganizationKind, Role
from models.database import Database
from settings import Settings
from tests.support.api import Api, gid
from tests.support.databases import StatementCounter

SEARCH = """
query($filter: NumberFilter, $first: Int, $after: String) {
  numbers(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { e164 state } }
  }
}"""

COUNTS = "query($filter: NumberFilter) { numberCounts(filter: $filter) { state count } }"

NUMBER = "query($e164: String!) { number(e164: $e164) { e164 } }"

CREATE_SERIES = """
mutation($input: CreateSeriesInput!) {
  createSeries(input: $input) { series { id prefix } userErrors { code message field } }
}"""

INPUT_TYPES = {
    "addNumbers": "AddNumbersInput",
    "reserveNumbers": "ReserveNumbersInput",
    "assignNumbers": "AssignNumbersInput",
    "lockNumbers": "LockNumbersInput",
    "deleteNumbers": "DeleteNumbersInput",
    "editNumbers": "EditNumbersInput",
}

STATES = [
    "AVAILABLE",
    "RESERVED",
    "LOCKED",
    "ASSIGNED",
    "DELETED",
    "PORTING_IN",
    "PORTING_OUT",
    "BLOCKED",
]

# Fixed-line (6[1-9]xxxxxx) and mobile (8xxxxxxx, 9xxxxxxx) numbers of Singapore.
F1, F2, F3, F4, F5, F6 = (f"+656100000{i}" for i in range(1, 7))
FIXED_OTHER = "+6561234567"
MOBILE_8 = "+6581650000"
MOBILE_9 = "+6591230045"
# Contains 0001 but does not end with it.
FIXED_0001 = "+6561000123"
# London numbers: one ends with 0065 (it contains 65 without beginning +65), one with 0001.
GB_65 = "+442079460065"
GB_01 = "+442079460001"
MISSING = "+6569999999"


# ---- helpers ----


async def ok(api: Api, mutation: str, input: dict[str, Any], token: str | None = None) -> list[str]:
    """A number mutation that must succeed; the e164 of the numbers it returns."""
    query = (
        f"mutation($input: {INPUT_TYPES[mutation]}!) {{ {mutation}(input: $input) "
        + "{ numbers { e164 } userErrors { code message field number } } }"
    )
    payload = (await api.gql(query, {"input": input}, token=token))[mutation]
    assert payload["userErrors"] == [], payload["userErrors"]
    return [n["e164"] for n in payload["numbers"]]


async def add(api: Api, *numbers: str, **fields: Any) -> list[str]:
    """Add Singapore numbers to the root's pool unless the fields say otherwise."""
    base = {"numbers": list(numbers), "vendor": "Singtel", "country": "SG", "sku": "DID-SG"}
    return await ok(api, "addNumbers", base | fields)


async def add_gb(api: Api, *numbers: str, **fields: Any) -> list[str]:
    return await add(api, *numbers, **({"country": "GB", "vendor": "BT", "sku": "DID-GB"} | fields))


async def search(
    api: Api,
    filter: dict[str, Any] | None = None,
    token: str | None = None,
    first: int | None = 500,
    after: str | None = None,
) -> dict[str, Any]:
    variables = {"filter": filter, "first": first, "after": after}
    connection: dict[str, Any] = (await api.gql(SEARCH, variables, token=token))["numbers"]
    return connection


async def counts(
    api: Api, filter: dict[str, Any] | None = None, token: str | None = None
) -> dict[str, int]:
    rows = (await api.gql(COUNTS, {"filter": filter}, token=token))["numberCounts"]
    states = [row["state"] for row in rows]
    assert sorted(states) == sorted(STATES), rows
    return {row["state"]: row["count"] for row in rows}


async def found(
    api: Api, filter: dict[str, Any] | None = None, token: str | None = None
) -> set[str]:
    """The numbers a filter finds, after checking the list and the counts agree on them."""
    connection = await search(api, filter, token)
    e164s = [edge["node"]["e164"] for edge in connection["edges"]]
    assert e164s == sorted(set(e164s)), "not in ascending e164 order, or repeated"
    assert connection["totalCount"] == len(e164s)
    assert connection["pageInfo"]["hasNextPage"] is False
    per_state = Counter(edge["node"]["state"] for edge in connection["edges"])
    assert await counts(api, filter, token) == {state: per_state[state] for state in STATES}
    return set(e164s)


async def series(api: Api, name: str, prefix: str, country: str = "SG") -> str:
    variables = {"input": {"name": name, "prefix": prefix, "country": country}}
    payload = (await api.gql(CREATE_SERIES, variables))["createSeries"]
    assert payload["userErrors"] == [], payload["userErrors"]
    series_id: str = payload["series"]["id"]
    return series_id


async def tree(api: Api) -> tuple[Organization, Organization, Organization, Organization]:
    """A partner, two sibling customers below it, and a department of the first customer."""
    partner = await api.org("Partner", OrganizationKind.PARTNER, await api.root())
    first = await api.org("Customer 1", OrganizationKind.CUSTOMER, partner)
    second = await api.org("Customer 2", OrganizationKind.CUSTOMER, partner)
    department = await api.org("Department", OrganizationKind.DEPARTMENT, first)
    return partner, first, second, department


def made_up_org() -> str:
    return ids.encode("Organization", uuid.uuid4())


def iso(moment: datetime) -> str:
    return moment.isoformat()


def names(message: str, pattern: str) -> bool:
    """Whether an error message quotes the pattern it refuses."""
    return any(quoted in message for quoted in (repr(pattern), json.dumps(pattern)))


# ---- one filter field at a time ----


async def test_states_selects_numbers_in_any_of_the_given_states(api: Api) -> None:
    await add(api, F1, F2, F3, F4, F5)
    await ok(api, "reserveNumbers", {"numbers": [F2], "reservedForId": gid(await api.root())})
    await ok(api, "lockNumbers", {"numbers": [F3]})
    await ok(api, "assignNumbers", {"numbers": [F4], "subscriptionUuid": str(uuid.uuid4())})
    await ok(api, "deleteNumbers", {"numbers": [F5], "reason": "FAULTY"})

    assert await found(api, {"states": ["AVAILABLE"]}) == {F1}
    assert await found(api, {"states": ["RESERVED", "LOCKED"]}) == {F2, F3}
    assert await found(api, {"states": ["ASSIGNED"]}) == {F4}
    assert await found(api, {"states": ["DELETED"]}) == {F5}
    assert await found(api) == {F1, F2, F3, F4, F5}


async def pattern_inventory(api: Api) -> None:
    await add(api, F1, FIXED_OTHER, FIXED_0001, MOBILE_8, MOBILE_9)
    await add_gb(api, GB_65, GB_01)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        # Without "*": a leading "+" matches from the start, otherwise anywhere.
        ("65", {F1, FIXED_0001, FIXED_OTHER, MOBILE_8, MOBILE_9, GB_65}),
        ("0065", {GB_65}),
        ("44", {GB_65, GB_01}),
        ("1234", {FIXED_OTHER}),
        ("0001", {F1, FIXED_0001, GB_01}),
        ("+65", {F1, FIXED_0001, FIXED_OTHER, MOBILE_8, MOBILE_9}),
        ("+6561", {F1, FIXED_0001, FIXED_OTHER}),
        ("+44", {GB_65, GB_01}),
        ("+4420", {GB_65, GB_01}),
        ("+6561000001", {F1}),
        ("+656", {F1, FIXED_0001, FIXED_OTHER}),
        ("+6", {F1, FIXED_0001, FIXED_OTHER, MOBILE_8, MOBILE_9}),
        ("+7", set()),
        # With "*": matched whole.
        ("+65*", {F1, FIXED_0001, FIXED_OTHER, MOBILE_8, MOBILE_9}),
        ("+659*", {MOBILE_9}),
        ("*0001", {F1, GB_01}),
        ("*0065", {GB_65}),
        ("*65", {GB_65}),
        ("+65*00*", {F1, FIXED_0001, MOBILE_8, MOBILE_9}),
        ("+44*65", {GB_65}),
        ("+65*0001", {F1}),
        ("*000*", {F1, FIXED_0001, MOBILE_8, GB_01}),
        ("*65*", {F1, FIXED_0001, FIXED_OTHER, MOBILE_8, MOBILE_9, GB_65}),
        ("*", {F1, FIXED_0001, FIXED_OTHER, MOBILE_8, MOBILE_9, GB_65, GB_01}),
        # No "+" but a "*": matched whole against the number with its "+".
        ("6561*", {F1, FIXED_0001, FIXED_OTHER}),
        ("65*", {F1, FIXED_0001, FIXED_OTHER, MOBILE_8, MOBILE_9}),
        ("44*0001", {GB_01}),
        ("61*", set()),
    ],
)
async def test_pattern(api: Api, pattern: str, expected: set[str]) -> None:
    await pattern_inventory(api)

    assert await found(api, {"pattern": pattern}) == expected


@pytest.mark.parametrize(
    "pattern",
    [
        "65a",
        "",
        "+",
        "6-5",
        "%",
        "_",
        "6_1",
        "65%",
        "+65%",
        "6[5]",
        "++65",
        "6+5",
        " 65",
        "65 ",
        "65\n",
        "\n65",
    ],
)
async def test_a_pattern_that_is_not_of_the_language_is_a_validation_error(
    api: Api, pattern: str
) -> None:
    """Only digits, a leading "+" and "*"; SQL LIKE metacharacters are refused, not matched."""
    await pattern_inventory(api)

    for query in (SEARCH, COUNTS):
        errors = await api.errors(query, {"filter": {"pattern": pattern}})
        assert errors[0]["extensions"]["code"] == "VALIDATION", errors
        assert names(errors[0]["message"], pattern), errors


async def test_like_metacharacters_never_match_everything(api: Api) -> None:
    await pattern_inventory(api)

    for pattern in ("%", "_", "+%", "6%", "%65%", "_65", "*%", "*_*", "\\%"):
        body = (await api.post(SEARCH, {"filter": {"pattern": pattern}, "first": 500})).json()
        if body.get("errors"):
            assert body["errors"][0]["extensions"]["code"] == "VALIDATION", body
        else:
            assert body["data"]["numbers"]["edges"] == [], pattern


async def test_numbers_selects_exact_numbers_named_in_any_notation(api: Api) -> None:
    await add(api, F1, F2, F3, F4)

    bulk = ["+65 6100 0001", "6561000002", "(+65) 6100-0004", MISSING]
    assert await found(api, {"numbers": bulk}) == {F1, F2, F4}
    assert await found(api, {"numbers": [F3]}) == {F3}
    assert await found(api, {"numbers": [MISSING]}) == set()


async def test_numbers_with_an_entry_that_is_not_a_number_is_a_validation_error(
    api: Api,
) -> None:
    await add(api, F1)

    for query in (SEARCH, COUNTS):
        errors = await api.errors(query, {"filter": {"numbers": [F1, "not a number"]}})
        assert errors[0]["extensions"]["code"] == "VALIDATION", errors


async def test_capabilities_selects_numbers_that_have_all_of_them(api: Api) -> None:
    await add(api, F1, capabilities=["VOICE"])
    await add(api, F2, capabilities=["VOICE", "SMS"])
    await add(api, F3, capabilities=["SMS"])
    await add(api, F4, capabilities=["VOICE", "SMS", "FAX"])
    await add(api, F5, capabilities=["FAX"])

    assert await found(api, {"capabilities": ["VOICE", "SMS"]}) == {F2, F4}
    assert await found(api, {"capabilities": ["SMS", "VOICE"]}) == {F2, F4}
    assert await found(api, {"capabilities": ["SMS"]}) == {F2, F3, F4}
    assert await found(api, {"capabilities": ["VOICE"]}) == {F1, F2, F4}
    assert await found(api, {"capabilities": ["FAX", "VOICE"]}) == {F4}
    assert await found(api, {"capabilities": ["FAX"]}) == {F4, F5}


async def test_capabilities_follow_an_edit(api: Api) -> None:
    await add(api, F1, F2, capabilities=["VOICE"])
    await ok(api, "editNumbers", {"numbers": [F2], "capabilities": ["VOICE", "SMS"]})

    assert await found(api, {"capabilities": ["VOICE", "SMS"]}) == {F2}


async def test_sku_and_vendor_select_exact_values(api: Api) -> None:
    await add(api, F1, F2)
    await add(api, F3, sku="DID-SG-GOLD", vendor="StarHub")
    await add(api, F4, vendor="StarHub")
    await ok(api, "editNumbers", {"numbers": [F2], "sku": "DID-SG-GOLD"})

    assert await found(api, {"sku": "DID-SG-GOLD"}) == {F2, F3}
    assert await found(api, {"sku": "DID-SG"}) == {F1, F4}
    assert await found(api, {"sku": "DID"}) == set()
    assert await found(api, {"vendor": "StarHub"}) == {F3, F4}
    assert await found(api, {"vendor": "Singtel"}) == {F1, F2}
    assert await found(api, {"vendor": "Star"}) == set()


async def test_country_selects_the_numbers_of_one_country(api: Api) -> None:
    await add(api, F1, MOBILE_9)
    await add_gb(api, GB_65, GB_01)

    assert await found(api, {"country": "SG"}) == {F1, MOBILE_9}
    assert await found(api, {"country": "GB"}) == {GB_65, GB_01}
    assert await found(api, {"country": "MY"}) == set()


async def test_routing_selects_an_exact_route(api: Api) -> None:
    await add(api, F1, F2, routing="sip:pbx-1.example")
    await add(api, F3, routing="sip:pbx-2.example")
    await add(api, F4)

    assert await found(api, {"routing": "sip:pbx-1.example"}) == {F1, F2}
    assert await found(api, {"routing": "sip:pbx-2.example"}) == {F3}
    assert await found(api, {"routing": "sip:pbx"}) == set()


@pytest.mark.parametrize("field", ["golden", "portedIn"])
async def test_a_flag_selects_numbers_with_it_set_or_not(api: Api, field: str) -> None:
    await add(api, F1, F2, **{field: True})
    await add(api, F3)
    await add(api, F4)
    await ok(api, "editNumbers", {"numbers": [F4], field: True})
    await ok(api, "editNumbers", {"numbers": [F2], field: False})

    assert await found(api, {field: True}) == {F1, F4}
    assert await found(api, {field: False}) == {F2, F3}


async def test_visible_to_domain_selects_an_exact_domain(api: Api) -> None:
    await add(api, F1, F2, visibleToDomain="acme.example")
    await add(api, F3, visibleToDomain="globex.example")
    await add(api, F4)

    assert await found(api, {"visibleToDomain": "acme.example"}) == {F1, F2}
    assert await found(api, {"visibleToDomain": "globex.example"}) == {F3}
    assert await found(api, {"visibleToDomain": "acme"}) == set()


async def test_subscription_uuid_selects_the_numbers_of_one_subscription(api: Api) -> None:
    await add(api, F1, F2, F3, F4)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    await ok(api, "assignNumbers", {"numbers": [F1, F2], "subscriptionUuid": first})
    await ok(api, "assignNumbers", {"numbers": [F3], "subscriptionUuid": second})

    assert await found(api, {"subscriptionUuid": first}) == {F1, F2}
    assert await found(api, {"subscriptionUuid": second}) == {F3}
    assert await found(api, {"subscriptionUuid": str(uuid.uuid4())}) == set()


async def test_owner_uuid_selects_the_numbers_an_organization_owns(api: Api) -> None:
    _, first, second, _ = await tree(api)
    await add(api, F1, F2, F3, F4, F5)
    subscription = str(uuid.uuid4())
    for numbers, owner in (([F1, F2], first), ([F3], second)):
        await ok(
            api,
            "assignNumbers",
            {"numbers": numbers, "subscriptionUuid": subscription, "ownerUuid": str(owner.uuid)},
        )
    # Without an owner, the pool's organization (the root) owns it.
    await ok(api, "assignNumbers", {"numbers": [F4], "subscriptionUuid": subscription})

    assert await found(api, {"ownerUuid": str(first.uuid)}) == {F1, F2}
    assert await found(api, {"ownerUuid": str(second.uuid)}) == {F3}
    assert await found(api, {"ownerUuid": str((await api.root()).uuid)}) == {F4}
    assert await found(api, {"ownerUuid": str(uuid.uuid4())}) == set()


async def test_tag_matches_the_number_s_own_tag_or_its_reservation_s(api: Api) -> None:
    root = gid(await api.root())
    await add(api, F1, tag="lobby")
    await add(api, F2)
    await add(api, F3, F4, tag="other")
    await add(api, F5)
    await ok(api, "reserveNumbers", {"numbers": [F2, F3], "reservedForId": root, "tag": "lobby"})
    await ok(api, "reserveNumbers", {"numbers": [F5], "reservedForId": root, "tag": "Alice"})

    assert await found(api, {"tag": "lobby"}) == {F1, F2, F3}
    assert await found(api, {"tag": "other"}) == {F3, F4}
    assert await found(api, {"tag": "Alice"}) == {F5}
    assert await found(api, {"tag": "lob"}) == set()


async def test_series_id_selects_the_numbers_of_one_series(api: Api) -> None:
    singapore = await series(api, "Singapore", "+65")
    fixed = await series(api, "Singapore 61", "+6561")
    mobile = await series(api, "Singapore 9", "+659")
    await add(api, F1, F2, MOBILE_8, MOBILE_9, "+6562000001")
    await add_gb(api, GB_65)

    assert await found(api, {"seriesId": fixed}) == {F1, F2}
    assert await found(api, {"seriesId": mobile}) == {MOBILE_9}
    # A number belongs to the series of its longest prefix only.
    assert await found(api, {"seriesId": singapore}) == {MOBILE_8, "+6562000001"}
    assert await found(api, {"seriesId": ids.encode("Series", uuid.uuid4())}) == set()


async def test_organization_id_selects_one_pool_or_with_descendants_its_subtree(
    api: Api,
) -> None:
    partner, first, second, department = await tree(api)
    root = await api.root()
    await add(api, F1)
    await add(api, F2, organizationId=gid(partner))
    await add(api, F3, organizationId=gid(first))
    await add(api, F4, organizationId=gid(department))
    await add(api, F5, organizationId=gid(second))

    own = {org.name: await found(api, {"organizationId": gid(org)}) for org in (root, partner)}
    assert own == {"Provider": {F1}, "Partner": {F2}}
    assert await found(api, {"organizationId": gid(first)}) == {F3}
    assert await found(api, {"organizationId": gid(first), "includeDescendants": False}) == {F3}

    def subtree(org: Organization) -> dict[str, Any]:
        return {"organizationId": gid(org), "includeDescendants": True}

    assert await found(api, subtree(partner)) == {F2, F3, F4, F5}
    assert await found(api, subtree(first)) == {F3, F4}
    assert await found(api, subtree(second)) == {F5}
    assert await found(api, subtree(department)) == {F4}
    assert await found(api, subtree(root)) == {F1, F2, F3, F4, F5}
    assert await found(api, {"organizationId": made_up_org()}) == set()
    assert await found(api, {"organizationId": made_up_org(), "includeDescendants": True}) == set()


async def test_expires_before_selects_reservations_and_locks_lapsing_before_the_time(
    api: Api,
) -> None:
    now = api.clock.now()
    root = gid(await api.root())
    await add(api, F1, F2, F3, F4, F5, F6)
    for number, days in ((F1, 2), (F2, 10)):
        ends = iso(now + timedelta(days=days))
        await ok(
            api, "reserveNumbers", {"numbers": [number], "reservedForId": root, "expiresAt": ends}
        )
    for number, days in ((F3, 3), (F4, 20)):
        await ok(
            api, "lockNumbers", {"numbers": [number], "expiresAt": iso(now + timedelta(days=days))}
        )
    # F5 is assigned and F6 available: neither lapses.
    await ok(api, "assignNumbers", {"numbers": [F5], "subscriptionUuid": str(uuid.uuid4())})

    def before(moment: datetime) -> dict[str, Any]:
        return {"expiresBefore": iso(moment)}

    assert await found(api, before(now + timedelta(days=5))) == {F1, F3}
    assert await found(api, before(now + timedelta(days=365))) == {F1, F2, F3, F4}
    assert await found(api, before(now + timedelta(days=1))) == set()
    # Strictly before: a reservation that lapses at the time given is not included.
    assert await found(api, before(now + timedelta(days=2))) == set()
    assert await found(api, before(now + timedelta(days=2, seconds=1))) == {F1}
    # The same instant written with another offset selects the same numbers.
    singapore = timezone(timedelta(hours=8))
    assert await found(api, before((now + timedelta(days=5)).astimezone(singapore))) == {F1, F3}
    assert await found(api, before((now + timedelta(days=2)).astimezone(singapore))) == set()


# ---- several fields at once ----


async def test_filters_combine_with_and(api: Api) -> None:
    partner, first, _, _ = await tree(api)
    await add(api, F1, F2, F3, capabilities=["VOICE", "SMS"], organizationId=gid(partner))
    await add(api, F4, capabilities=["VOICE"], organizationId=gid(partner))
    await add(api, F5, capabilities=["VOICE", "SMS"], organizationId=gid(first), vendor="StarHub")
    await add(api, MOBILE_9, capabilities=["VOICE", "SMS"], organizationId=gid(partner))
    await add(api, F6, capabilities=["VOICE", "SMS"])
    await ok(api, "lockNumbers", {"numbers": [F2]})

    combined = {
        "states": ["AVAILABLE"],
        "pattern": "+6561*",
        "capabilities": ["SMS"],
        "vendor": "Singtel",
        "organizationId": gid(partner),
        "includeDescendants": True,
    }
    assert await found(api, combined) == {F1, F3}
    assert await found(api, combined | {"states": ["AVAILABLE", "LOCKED"]}) == {F1, F2, F3}
    assert await found(api, combined | {"vendor": "StarHub"}) == {F5}
    assert await found(api, combined | {"includeDescendants": False, "vendor": "StarHub"}) == set()
    assert await found(api, combined | {"pattern": "+659"}) == {MOBILE_9}
    assert await found(api, combined | {"numbers": [F1, F2, F4, F6]}) == {F1}


# ---- paging ----


@pytest.mark.parametrize("matching", [8, 9])
async def test_paging_by_cursor_returns_every_match_once_in_e164_order(
    api: Api, matching: int
) -> None:
    numbers = [f"+65610000{i:02d}" for i in range(matching)]
    await add(api, *reversed(numbers[::2]))
    await add(api, *numbers[1::2])
    await add(api, MOBILE_8, MOBILE_9)
    filter = {"pattern": "+6561"}

    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        page = await search(api, filter, first=3, after=after)
        pages += 1
        edges = page["edges"]
        assert page["totalCount"] == matching
        assert page["pageInfo"]["hasPreviousPage"] == (after is not None)
        assert len(edges) == 3 or not page["pageInfo"]["hasNextPage"]
        assert page["pageInfo"]["startCursor"] == edges[0]["cursor"]
        assert page["pageInfo"]["endCursor"] == edges[-1]["cursor"]
        seen += [edge["node"]["e164"] for edge in edges]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert pages < 10, "paging does not end"

    assert seen == numbers
    assert pages == 3


async def test_a_page_size_over_the_maximum_is_a_validation_error(api: Api) -> None:
    await add(api, F1)

    assert len((await search(api, first=500))["edges"]) == 1
    for first in (501, 10_000, -1):
        errors = await api.errors(SEARCH, {"first": first})
        assert errors[0]["extensions"]["code"] == "VALIDATION", errors


async def test_a_cursor_that_is_not_one_is_a_validation_error(api: Api) -> None:
    await add(api, F1)

    errors = await api.errors(SEARCH, {"first": 3, "after": "garbage!"})

    assert errors[0]["extensions"]["code"] == "VALIDATION", errors


# ---- counts ----


async def test_number_counts_has_every_state_zeros_included_for_the_same_filter(
    api: Api,
) -> None:
    await add(api, F1, F2, F3, F4)
    await add(api, MOBILE_9)
    await ok(api, "lockNumbers", {"numbers": [F2, MOBILE_9]})
    await ok(api, "assignNumbers", {"numbers": [F3], "subscriptionUuid": str(uuid.uuid4())})

    assert await counts(api) == {
        "AVAILABLE": 2,
        "RESERVED": 0,
        "LOCKED": 2,
        "ASSIGNED": 1,
        "DELETED": 0,
        "PORTING_IN": 0,
        "PORTING_OUT": 0,
        "BLOCKED": 0,
    }
    assert await counts(api, {"pattern": "+6561"}) == {
        "AVAILABLE": 2,
        "RESERVED": 0,
        "LOCKED": 1,
        "ASSIGNED": 1,
        "DELETED": 0,
        "PORTING_IN": 0,
        "PORTING_OUT": 0,
        "BLOCKED": 0,
    }
    assert await counts(api, {"states": ["LOCKED"]}) == {
        "AVAILABLE": 0,
        "RESERVED": 0,
        "LOCKED": 2,
        "ASSIGNED": 0,
        "DELETED": 0,
        "PORTING_IN": 0,
        "PORTING_OUT": 0,
        "BLOCKED": 0,
    }
    assert await counts(api, {"pattern": "+44"}) == dict.fromkeys(STATES, 0)


# ---- scoping ----


async def test_a_customer_never_finds_numbers_of_a_sibling_or_of_the_parent(api: Api) -> None:
    partner, first, second, department = await tree(api)
    await add(api, F1)
    await add(api, F2, organizationId=gid(partner))
    await add(api, F3, organizationId=gid(first))
    await add(api, F4, organizationId=gid(department))
    await add(api, F5, organizationId=gid(second))
    await ok(api, "reserveNumbers", {"numbers": [F5], "reservedForId": gid(second), "tag": "x"})
    token = await api.token_for(first, Role.VIEWER)
    nothing = dict.fromkeys(STATES, 0)

    assert await found(api, token=token) == {F3, F4}
    assert await found(api, {"pattern": "+65"}, token) == {F3, F4}
    assert await found(api, {"pattern": "*"}, token) == {F3, F4}
    assert await found(api, {"numbers": [F1, F2, F3, F5]}, token) == {F3}
    assert await found(api, {"tag": "x"}, token) == set()
    assert await found(api, {"states": ["RESERVED"]}, token) == set()
    own = {"organizationId": gid(first), "includeDescendants": True}
    assert await found(api, own, token) == {F3, F4}

    for org_id in (gid(second), gid(partner), gid(await api.root()), made_up_org()):
        for descendants in (False, True):
            filter = {"organizationId": org_id, "includeDescendants": descendants}
            assert await found(api, filter, token) == set()
            assert await counts(api, filter, token) == nothing
            assert (await search(api, filter, token))["totalCount"] == 0

    for e164 in (F1, F2, F5):
        assert (await api.gql(NUMBER, {"e164": e164}, token=token))["number"] is None
    assert (await api.gql(NUMBER, {"e164": F3}, token=token))["number"] == {"e164": F3}

    partner_token = await api.token_for(partner, Role.VIEWER)
    assert await found(api, token=partner_token) == {F2, F3, F4, F5}
    assert await found(api, {"organizationId": gid(await api.root())}, partner_token) == set()
    assert await found(api, token=api.token) == {F1, F2, F3, F4, F5}


# ---- statements made once (domain/search.py, _page_statements) ----


async def test_a_filter_sent_again_answers_from_each_viewer_s_subtree_and_the_current_rows(
    api: Api,
) -> None:
    """The page's statement is kept per filter and subtree: the same filter sent by
    viewers of different subtrees, in turn and again, finds each one's own numbers, and a
    number added since is found (statements are kept, never answers)."""
    partner, first, second, _department = await tree(api)
    await add(api, F1)
    await add(api, F2, organizationId=gid(partner))
    await add(api, F3, organizationId=gid(first))
    await add(api, F5, organizationId=gid(second))
    customer = await api.token_for(first, Role.VIEWER)
    reseller = await api.token_for(partner, Role.VIEWER)
    filter = {"pattern": "+6561", "states": ["AVAILABLE"]}

    for _ in range(3):
        assert await found(api, filter, customer) == {F3}
        assert await found(api, filter, reseller) == {F2, F3, F5}
        assert await found(api, filter) == {F1, F2, F3, F5}

    await add(api, F4, organizationId=gid(first))
    await ok(api, "reserveNumbers", {"numbers": [F3], "reservedForId": gid(first), "tag": "t"})
    assert await found(api, filter, customer) == {F4}
    assert await found(api, filter, reseller) == {F2, F4, F5}
    page = await search(api, filter, customer, first=1)
    after = page["pageInfo"]["endCursor"]
    assert [edge["node"]["e164"] for edge in page["edges"]] == [F4]
    assert (await search(api, filter, reseller, first=1, after=after))["edges"][0]["node"][
        "e164"
    ] == F5


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_kept_statement_is_made_again_after_a_minute(
    api: Api, statements: StatementCounter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite a page without a prefix chooses its plan from the counters when its
    statement is made; a kept statement keeps that choice for PLAN_SECONDS only, so a
    pool that grew since is read by the plan that suits it within the minute."""
    from domain import search as domain_search

    partner, _first, _second, _department = await tree(api)
    await add(api, F1, F2, organizationId=gid(partner))
    reseller = await api.token_for(partner, Role.VIEWER)
    filter = {"states": ["AVAILABLE"]}

    async def counted() -> int:
        statements.reset()
        page = await search(api, filter, reseller)
        assert [edge["node"]["e164"] for edge in page["edges"]] == [F1, F2]
        return sum("number_state_counts" in sql for sql in statements.sql)

    assert await counted() == 1
    assert await counted() == 0
    monkeypatch.setattr(domain_search, "PLAN_SECONDS", 0.0)
    assert await counted() == 1


async def test_kept_statements_are_bounded(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past PAGE_STATEMENTS distinct filters the least recently used is dropped, and a
    filter whose statement was dropped is made again and answers the same."""
    from domain import search as domain_search

    monkeypatch.setattr(domain_search, "PAGE_STATEMENTS", 3)
    await add(api, F1, F2, F3)
    expected = {"+6561000001": {F1}, "+6561000002": {F2}, "+656100000*": {F1, F2, F3}}
    for _ in range(2):
        for pattern, numbers in expected.items():
            for sku in ("DID-SG", None):
                assert await found(api, {"pattern": pattern, "sku": sku}) == numbers
                assert len(domain_search._page_statements) <= 3


# ---- connections under concurrent requests ----


async def test_concurrent_searches_reuse_the_pool_s_connections(
    api: Api, database_url: str, settings: Settings
) -> None:
    """Eight clients searching at once, round after round, are served by the connections
    the pool kept from the first round (NUMBRA_DATABASE_POOL_SIZE, 10): none is opened and
    closed again per request. On SQLite a read session is closed in place, its connection
    back in the pool before another request runs."""
    from sqlalchemy import event

    from web.app import create_app

    await add(api, F1, F2, F3)
    filter = {"pattern": "+6561", "states": ["AVAILABLE"]}
    db = Database(database_url, pool_size=settings.database_pool_size)
    opened: list[object] = []

    def on_connect(*_args: object) -> None:
        opened.append(object())

    async def rounds(client: Api, count: int) -> None:
        async def searches() -> None:
            for _ in range(count):
                assert await found(client, filter) == {F1, F2, F3}

        await asyncio.gather(*(searches() for _ in range(8)))

    try:
        app = create_app(settings, db=db, clock=api.clock)
        async with Api.open(app, api.token, db, api.clock) as client:
            await rounds(client, 1)
            for engine in db.engines:
                event.listen(engine.sync_engine.pool, "connect", on_connect)
            await rounds(client, 5)
    finally:
        await db.dispose()
    assert opened == [], f"{len(opened)} connections opened for 40 searches after the first 8"
