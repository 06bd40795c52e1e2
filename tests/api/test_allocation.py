"""Allocation across the organization tree, through the API.

Numbers move from a parent's pool to a child's (allocateNumbers) and back
(withdrawNumbers), by a quantity of a series or by name; a number in a pool is
usable only by its organization and the organizations below it; the nested
views an SPA asks for cost the same number of statements for any tree size.
"""

import re
import uuid
from typing import Any

import pytest

from domain import ids, search
from models import Organization, OrganizationKind, Role
from tests.support.api import Api, gid
from tests.support.databases import StatementCounter
from tests.support.mutations import NumberMutations, codes

NUMBER = """
fragment N on Number {
  e164 state
  organization { name }
  series { prefix }
  reservation { tag reservedFor { name } }
}
"""
MUTATIONS = NumberMutations(NUMBER)
call, ok, refused = MUTATIONS.call, MUTATIONS.ok, MUTATIONS.refused

CREATE_SERIES = """
mutation($input: CreateSeriesInput!) {
  createSeries(input: $input) { series { id prefix } userErrors { code field } }
}"""

HOLDINGS = """
query($id: ID!, $descendants: Boolean) {
  organization(id: $id) {
    allocations { organization { name } series { prefix } allocated unused }
    numberCounts(includeDescendants: $descendants) { state count }
  }
}"""

POOL = """
query($id: ID!, $descendants: Boolean, $first: Int, $after: String) {
  organization(id: $id) {
    numbers(includeDescendants: $descendants, first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage endCursor }
      edges { node { e164 organization { name } } }
    }
  }
}"""

GET = NUMBER + "query($e164: String!) { number(e164: $e164) { ...N } }"

HISTORY = """
query($e164: String!) {
  number(e164: $e164) {
    history(first: 50) { edges { node { action fromState toState actor remark } } }
  }
}"""

SPA_VIEW = """
{
  organizations(first: 500) {
    edges {
      node {
        name
        numberCounts(includeDescendants: true) { state count }
        allocations { series { prefix } allocated unused }
        numbers(first: 2) { totalCount edges { node { e164 state } } }
        children { name }
      }
    }
  }
}"""


def sg(index: int, area: int = 61) -> str:
    """A Singapore fixed-line number: +65 6x followed by six digits."""
    return f"+65{area}{index:06d}"


N1, N2, N3, N4, N5 = (sg(i) for i in range(1, 6))


# ---- helpers ----


async def add(api: Api, *numbers: str, to: Organization | None = None) -> None:
    fields: dict[str, Any] = {
        "numbers": list(numbers),
        "vendor": "Singtel",
        "country": "SG",
        "sku": "DID-SG",
    }
    if to is not None:
        fields["organizationId"] = gid(to)
    await ok(api, "addNumbers", fields)


async def series(api: Api, prefix: str = "+6561") -> str:
    data = await api.gql(
        CREATE_SERIES, {"input": {"name": f"Singapore {prefix}", "prefix": prefix, "country": "SG"}}
    )
    assert data["createSeries"]["userErrors"] == []
    series_id: str = data["createSeries"]["series"]["id"]
    return series_id


async def holdings(
    api: Api, org: Organization, descendants: bool = False, token: str | None = None
) -> tuple[dict[str, tuple[int, int]], dict[str, int]]:
    """(allocated, unused) per series prefix, and the non-zero counts per state."""
    found = (await api.gql(HOLDINGS, {"id": gid(org), "descendants": descendants}, token=token))[
        "organization"
    ]
    assert found is not None
    for row in found["allocations"]:
        assert row["organization"] == {"name": org.name}
    allocations = {
        row["series"]["prefix"]: (row["allocated"], row["unused"]) for row in found["allocations"]
    }
    return allocations, counts(found["numberCounts"])


def counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {row["state"]: row["count"] for row in rows if row["count"]}


async def pool_of(api: Api, org: Organization, descendants: bool = False) -> list[str]:
    """Every number in the organization's pool (or subtree), in order."""
    found = (await api.gql(POOL, {"id": gid(org), "descendants": descendants, "first": 500}))[
        "organization"
    ]
    assert found is not None
    return [edge["node"]["e164"] for edge in found["numbers"]["edges"]]


async def owner_of(api: Api, e164: str) -> str:
    number = (await api.gql(GET, {"e164": e164}))["number"]
    assert number is not None
    name: str = number["organization"]["name"]
    return name


async def events(api: Api, e164: str) -> list[tuple[str, str, str, str, str | None]]:
    """The history, newest first, as (action, from, to, actor, remark)."""
    number = (await api.gql(HISTORY, {"e164": e164}))["number"]
    assert number is not None
    return [
        (n["action"], n["fromState"], n["toState"], n["actor"], n["remark"])
        for n in (e["node"] for e in number["history"]["edges"])
    ]


async def partner_tree(api: Api) -> tuple[Organization, Organization, Organization]:
    """A partner below the root, and two sibling customers below the partner."""
    partner = await api.org("Partner", OrganizationKind.PARTNER, await api.root())
    first = await api.org("Customer 1", OrganizationKind.CUSTOMER, partner)
    second = await api.org("Customer 2", OrganizationKind.CUSTOMER, partner)
    return partner, first, second


# ---- allocating a quantity of a series ----


async def test_allocating_a_quantity_moves_that_many_available_numbers_of_the_series(
    api: Api,
) -> None:
    root = await api.root()
    partner = await api.org("Partner", OrganizationKind.PARTNER, root)
    s61 = await series(api, "+6561")
    await series(api, "+6562")
    await add(api, N1, N2, N3, N4, N5, sg(1, 62), sg(2, 62))
    await ok(api, "lockNumbers", {"numbers": [N1]})

    moved = await ok(
        api,
        "allocateNumbers",
        {"organizationId": gid(partner), "seriesId": s61, "quantity": 3, "remark": "launch"},
    )

    assert len(moved) == 3
    moved_e164 = sorted(n["e164"] for n in moved)
    assert set(moved_e164) <= {N2, N3, N4, N5}
    for number in moved:
        assert number["state"] == "AVAILABLE"
        assert number["series"] == {"prefix": "+6561"}
        assert number["organization"] == {"name": "Partner"}
    assert await pool_of(api, partner) == moved_e164
    assert await holdings(api, partner) == ({"+6561": (3, 3)}, {"AVAILABLE": 3})
    assert await holdings(api, root) == (
        {"+6561": (2, 1), "+6562": (2, 2)},
        {"AVAILABLE": 3, "LOCKED": 1},
    )
    for e164 in moved_e164:
        assert (await events(api, e164))[0] == (
            "ALLOCATED",
            "AVAILABLE",
            "AVAILABLE",
            "root admin",
            "launch",
        )
    [untouched] = {N2, N3, N4, N5} - set(moved_e164)
    assert [e[0] for e in await events(api, untouched)] == ["ADDED"]


async def test_asking_more_than_the_parent_holds_says_how_many_and_moves_nothing(
    api: Api,
) -> None:
    root = await api.root()
    partner = await api.org("Partner", OrganizationKind.PARTNER, root)
    s61 = await series(api)
    await add(api, N1, N2, N3, N4)
    await ok(api, "lockNumbers", {"numbers": [N4]})

    errors = await refused(
        api, "allocateNumbers", {"organizationId": gid(partner), "seriesId": s61, "quantity": 4}
    )

    assert codes(errors) == {("QUANTITY_EXCEEDS_AVAILABLE", ("input", "quantity"), None)}
    # The parent holds 3 AVAILABLE numbers of the series (the fourth is locked).
    assert re.search(r"(?<![\d+])3(?!\d)", errors[0]["message"]), errors[0]["message"]
    assert await holdings(api, partner) == ({}, {})
    assert await holdings(api, root) == ({"+6561": (4, 3)}, {"AVAILABLE": 3, "LOCKED": 1})
    assert await pool_of(api, root) == [N1, N2, N3, N4]


@pytest.mark.parametrize("quantity", [0, -1, 100_001])
async def test_a_quantity_outside_1_to_100000_is_a_validation_error(
    api: Api, quantity: int
) -> None:
    root = await api.root()
    partner = await api.org("Partner", OrganizationKind.PARTNER, root)
    s61 = await series(api)
    await add(api, N1)

    errors = await refused(
        api,
        "allocateNumbers",
        {"organizationId": gid(partner), "seriesId": s61, "quantity": quantity},
    )

    assert codes(errors) == {("VALIDATION", ("input", "quantity"), None)}
    assert await pool_of(api, root) == [N1]


async def test_a_quantity_of_100000_is_valid_and_checked_against_the_pool(api: Api) -> None:
    root = await api.root()
    partner = await api.org("Partner", OrganizationKind.PARTNER, root)
    s61 = await series(api)
    await add(api, N1)

    errors = await refused(
        api,
        "allocateNumbers",
        {"organizationId": gid(partner), "seriesId": s61, "quantity": 100_000},
    )

    assert [e["code"] for e in errors] == ["QUANTITY_EXCEEDS_AVAILABLE"]
    assert await pool_of(api, root) == [N1]


@pytest.mark.parametrize(
    "mutation", ["allocateNumbers", "withdrawNumbers"], ids=["allocate", "withdraw"]
)
@pytest.mark.parametrize(
    "how",
    [
        {"quantity": 1, "numbers": [N1], "series": True},
        {"numbers": [N1], "series": True},
        {},
    ],
    ids=["series-quantity-and-numbers", "series-and-numbers", "neither"],
)
async def test_either_a_series_with_a_quantity_or_numbers_must_be_given(
    api: Api, mutation: str, how: dict[str, Any]
) -> None:
    root = await api.root()
    partner = await api.org("Partner", OrganizationKind.PARTNER, root)
    s61 = await series(api)
    await add(api, N1, N2)
    await ok(api, "allocateNumbers", {"organizationId": gid(partner), "numbers": [N2]})
    input: dict[str, Any] = {"organizationId": gid(partner)}
    input.update({k: v for k, v in how.items() if k != "series"})
    if how.get("series"):
        input["seriesId"] = s61

    errors = await refused(api, mutation, input)

    assert [e["code"] for e in errors] == ["VALIDATION"], errors
    assert await pool_of(api, root) == [N1]
    assert await pool_of(api, partner) == [N2]


@pytest.mark.parametrize("series_id", ["unknown", "garbage!"])
async def test_an_unknown_series_is_not_found(api: Api, series_id: str) -> None:
    root = await api.root()
    partner = await api.org("Partner", OrganizationKind.PARTNER, root)
    await series(api)
    await add(api, N1)
    if series_id == "unknown":
        series_id = ids.encode("Series", uuid.uuid4())

    errors = await refused(
        api,
        "allocateNumbers",
        {"organizationId": gid(partner), "seriesId": series_id, "quantity": 1},
    )

    assert codes(errors) == {("NOT_FOUND", ("input", "seriesId"), None)}
    assert await pool_of(api, root) == [N1]


# ---- allocating named numbers ----


async def test_named_available_and_reserved_numbers_move_and_the_reservation_follows(
    api: Api,
) -> None:
    root = await api.root()
    partner = await api.org("Partner", OrganizationKind.PARTNER, root)
    await series(api)
    await add(api, N1, N2, N3)
    await ok(
        api, "reserveNumbers", {"numbers": [N2], "reservedForId": gid(root), "tag": "Alice, sales"}
    )

    moved = await ok(
        api,
        "allocateNumbers",
        {"organizationId": gid(partner), "numbers": ["6561000001", N2], "remark": "for Alice"},
    )

    by_e164 = {n["e164"]: n for n in moved}
    assert set(by_e164) == {N1, N2}
    assert by_e164[N1]["state"] == "AVAILABLE"
    assert by_e164[N1]["organization"] == {"name": "Partner"}
    reserved = by_e164[N2]
    assert reserved["state"] == "RESERVED"
    assert reserved["organization"] == {"name": "Partner"}
    assert reserved["reservation"] == {"tag": "Alice, sales", "reservedFor": {"name": "Partner"}}
    assert await pool_of(api, partner) == [N1, N2]
    assert await pool_of(api, root) == [N3]
    assert await holdings(api, partner) == (
        {"+6561": (2, 1)},
        {"AVAILABLE": 1, "RESERVED": 1},
    )
    assert (await events(api, N1))[0] == (
        "ALLOCATED",
        "AVAILABLE",
        "AVAILABLE",
        "root admin",
        "for Alice",
    )
    assert (await events(api, N2))[0] == (
        "ALLOCATED",
        "RESERVED",
        "RESERVED",
        "root admin",
        "for Alice",
    )


async def test_a_number_not_in_the_parent_s_pool_is_refused_by_name_and_nothing_moves(
    api: Api,
) -> None:
    root = await api.root()
    partner, customer, _ = await partner_tree(api)
    await series(api)
    await add(api, N1)  # the root's pool: the customer's grandparent
    await add(api, N2, to=partner)  # the customer's parent
    await add(api, N3, to=customer)  # already the customer's

    for stranger in (N1, N3):
        errors = await refused(
            api, "allocateNumbers", {"organizationId": gid(customer), "numbers": [N2, stranger]}
        )
        assert codes(errors) == {("INVALID_TRANSITION", ("input", "numbers", "1"), stranger)}
        assert stranger in errors[0]["message"]

    assert await pool_of(api, root) == [N1]
    assert await pool_of(api, partner) == [N2]
    assert await pool_of(api, customer) == [N3]
    assert [e[0] for e in await events(api, N2)] == ["ADDED"]


@pytest.mark.parametrize("state", ["LOCKED", "ASSIGNED"])
async def test_a_locked_or_assigned_number_is_not_allocated_nor_the_others_named_with_it(
    api: Api, state: str
) -> None:
    root = await api.root()
    partner = await api.org("Partner", OrganizationKind.PARTNER, root)
    await series(api)
    await add(api, N1, N2)
    if state == "LOCKED":
        await ok(api, "lockNumbers", {"numbers": [N2]})
    else:
        await ok(api, "assignNumbers", {"numbers": [N2], "subscriptionUuid": str(uuid.uuid4())})

    errors = await refused(
        api, "allocateNumbers", {"organizationId": gid(partner), "numbers": [N1, N2]}
    )

    assert codes(errors) == {("INVALID_TRANSITION", ("input", "numbers", "1"), N2)}
    assert await pool_of(api, root) == [N1, N2]
    assert await holdings(api, partner) == ({}, {})


async def test_a_number_reserved_for_an_org_outside_the_child_is_not_allocated_to_it(
    api: Api,
) -> None:
    partner, first, second = await partner_tree(api)
    await series(api)
    await add(api, N1, to=partner)
    await ok(api, "reserveNumbers", {"numbers": [N1], "reservedForId": gid(second)})

    errors = await refused(api, "allocateNumbers", {"organizationId": gid(first), "numbers": [N1]})

    assert codes(errors) == {("INVALID_TRANSITION", ("input", "numbers", "0"), N1)}
    assert await pool_of(api, partner) == [N1]


# ---- withdrawing ----


async def _three_levels(api: Api) -> tuple[Organization, Organization, Organization, str]:
    """Root → partner → customer, the customer holding N1..N3 (N3 reserved), the partner N4."""
    root = await api.root()
    partner = await api.org("Partner", OrganizationKind.PARTNER, root)
    customer = await api.org("Customer", OrganizationKind.CUSTOMER, partner)
    s61 = await series(api)
    await add(api, N1, N2, N3, N4, N5)
    await ok(api, "allocateNumbers", {"organizationId": gid(partner), "numbers": [N1, N2, N3, N4]})
    await ok(api, "allocateNumbers", {"organizationId": gid(customer), "numbers": [N1, N2, N3]})
    await ok(api, "reserveNumbers", {"numbers": [N3], "reservedForId": gid(customer)})
    return root, partner, customer, s61


async def test_withdrawing_more_than_the_unused_count_says_how_many_and_moves_nothing(
    api: Api,
) -> None:
    root, partner, customer, s61 = await _three_levels(api)

    errors = await refused(
        api, "withdrawNumbers", {"organizationId": gid(customer), "seriesId": s61, "quantity": 3}
    )

    assert codes(errors) == {("QUANTITY_EXCEEDS_AVAILABLE", ("input", "quantity"), None)}
    # Two of the customer's three numbers are unused; the third is reserved.
    assert re.search(r"(?<![\d+])2(?!\d)", errors[0]["message"]), errors[0]["message"]
    assert await pool_of(api, customer) == [N1, N2, N3]
    assert await pool_of(api, partner) == [N4]
    assert await pool_of(api, root) == [N5]
    assert await holdings(api, customer) == ({"+6561": (3, 2)}, {"AVAILABLE": 2, "RESERVED": 1})


async def test_withdrawing_a_quantity_returns_unused_numbers_to_the_immediate_parent(
    api: Api,
) -> None:
    root, partner, customer, s61 = await _three_levels(api)

    back = await ok(
        api,
        "withdrawNumbers",
        {"organizationId": gid(customer), "seriesId": s61, "quantity": 2, "remark": "unused"},
    )

    assert sorted(n["e164"] for n in back) == [N1, N2]
    assert all(n["organization"] == {"name": "Partner"} for n in back)
    assert await pool_of(api, customer) == [N3]
    assert await pool_of(api, partner) == [N1, N2, N4]
    assert await pool_of(api, root) == [N5]
    assert await holdings(api, customer) == ({"+6561": (1, 0)}, {"RESERVED": 1})
    assert await holdings(api, partner) == ({"+6561": (3, 3)}, {"AVAILABLE": 3})
    for e164 in (N1, N2):
        assert (await events(api, e164))[0] == (
            "WITHDRAWN",
            "AVAILABLE",
            "AVAILABLE",
            "root admin",
            "unused",
        )

    errors = await refused(
        api, "withdrawNumbers", {"organizationId": gid(customer), "seriesId": s61, "quantity": 1}
    )
    assert [e["code"] for e in errors] == ["QUANTITY_EXCEEDS_AVAILABLE"]


async def test_withdrawing_by_name_takes_only_available_numbers_all_or_nothing(
    api: Api,
) -> None:
    root, partner, customer, _ = await _three_levels(api)

    errors = await refused(
        api, "withdrawNumbers", {"organizationId": gid(customer), "numbers": [N1, N3]}
    )
    assert codes(errors) == {("INVALID_TRANSITION", ("input", "numbers", "1"), N3)}
    assert await pool_of(api, customer) == [N1, N2, N3]

    # N4 is in the partner's pool, not the customer's.
    errors = await refused(
        api, "withdrawNumbers", {"organizationId": gid(customer), "numbers": [N4]}
    )
    assert codes(errors) == {("INVALID_TRANSITION", ("input", "numbers", "0"), N4)}

    back = await ok(
        api,
        "withdrawNumbers",
        {"organizationId": gid(customer), "numbers": [N2], "remark": "churned"},
    )

    assert [(n["e164"], n["state"], n["organization"]) for n in back] == [
        (N2, "AVAILABLE", {"name": "Partner"})
    ]
    assert await pool_of(api, customer) == [N1, N3]
    assert await pool_of(api, partner) == [N2, N4]
    assert await pool_of(api, root) == [N5]
    assert (await events(api, N2))[0] == (
        "WITHDRAWN",
        "AVAILABLE",
        "AVAILABLE",
        "root admin",
        "churned",
    )


# ---- several levels ----


async def test_numbers_flow_down_level_by_level_and_the_subtree_views_count_them(
    api: Api,
) -> None:
    root = await api.root()
    partner = await api.org("Partner", OrganizationKind.PARTNER, root)
    customer = await api.org("Customer", OrganizationKind.CUSTOMER, partner)
    department = await api.org("Department", OrganizationKind.DEPARTMENT, customer)
    partner_admin = await api.token_for(partner, Role.ADMIN, name="partner admin")
    customer_admin = await api.token_for(customer, Role.ADMIN, name="customer admin")
    s61 = await series(api)
    await add(api, *(sg(i) for i in range(1, 11)))

    to_partner = await ok(
        api, "allocateNumbers", {"organizationId": gid(partner), "seriesId": s61, "quantity": 6}
    )
    to_customer = await ok(
        api,
        "allocateNumbers",
        {"organizationId": gid(customer), "seriesId": s61, "quantity": 4},
        partner_admin,
    )
    to_department = await ok(
        api,
        "allocateNumbers",
        {"organizationId": gid(department), "seriesId": s61, "quantity": 2},
        customer_admin,
    )
    subtree = sorted(n["e164"] for n in to_partner)
    below_partner = {n["e164"] for n in to_customer}
    in_department = sorted(n["e164"] for n in to_department)
    assert below_partner <= set(subtree)
    assert set(in_department) <= below_partner
    await ok(api, "lockNumbers", {"numbers": [in_department[0]]}, customer_admin)
    assert (await events(api, in_department[0]))[1][:4] == (
        "ALLOCATED",
        "AVAILABLE",
        "AVAILABLE",
        "customer admin",
    )

    assert await holdings(api, partner, descendants=True) == (
        {"+6561": (2, 2)},
        {"AVAILABLE": 5, "LOCKED": 1},
    )
    assert await holdings(api, partner, descendants=False) == ({"+6561": (2, 2)}, {"AVAILABLE": 2})
    assert (await holdings(api, customer, descendants=True))[1] == {"AVAILABLE": 3, "LOCKED": 1}
    assert (await holdings(api, customer))[1] == {"AVAILABLE": 2}
    assert await holdings(api, department) == ({"+6561": (2, 1)}, {"AVAILABLE": 1, "LOCKED": 1})
    assert (await holdings(api, root, descendants=True))[1] == {"AVAILABLE": 9, "LOCKED": 1}
    assert (await holdings(api, root))[1] == {"AVAILABLE": 4}
    assert await pool_of(api, partner) == sorted(set(subtree) - below_partner)

    first = (await api.gql(POOL, {"id": gid(partner), "descendants": True, "first": 3}))[
        "organization"
    ]["numbers"]
    assert [e["node"]["e164"] for e in first["edges"]] == subtree[:3]
    assert first["totalCount"] == 6
    assert first["pageInfo"]["hasNextPage"] is True

    seen, after, pages = [], None, 0
    while True:
        page = (
            await api.gql(
                POOL, {"id": gid(partner), "descendants": True, "first": 4, "after": after}
            )
        )["organization"]["numbers"]
        pages += 1
        assert page["totalCount"] == 6
        assert page["pageInfo"]["hasPreviousPage"] == (after is not None)
        seen += [e["node"]["e164"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == subtree
    assert pages == 2


# ---- who may move what ----


async def test_a_partner_admin_allocates_from_its_own_pool_into_its_customers_only(
    api: Api,
) -> None:
    root = await api.root()
    partner, customer, _ = await partner_tree(api)
    other = await api.org("Other partner", OrganizationKind.PARTNER, root)
    s61 = await series(api)
    await add(api, N1, N2, N3)
    await add(api, N4, N5, to=partner)
    admin = await api.token_for(partner, Role.ADMIN, name="partner admin")

    moved = await ok(
        api,
        "allocateNumbers",
        {"organizationId": gid(customer), "seriesId": s61, "quantity": 1, "remark": "go"},
        admin,
    )
    assert [n["organization"] for n in moved] == [{"name": "Customer 1"}]
    assert (await events(api, moved[0]["e164"]))[0][3:] == ("partner admin", "go")

    into_itself = await refused(
        api,
        "allocateNumbers",
        {"organizationId": gid(partner), "seriesId": s61, "quantity": 1},
        admin,
    )
    assert [e["code"] for e in into_itself] == ["FORBIDDEN"]
    named_into_itself = await refused(
        api, "allocateNumbers", {"organizationId": gid(partner), "numbers": [N1]}, admin
    )
    assert "FORBIDDEN" in {e["code"] for e in named_into_itself}
    back_to_root = await refused(
        api,
        "withdrawNumbers",
        {"organizationId": gid(partner), "seriesId": s61, "quantity": 1},
        admin,
    )
    assert [e["code"] for e in back_to_root] == ["FORBIDDEN"]

    for outsider in (other, root):
        errors = await refused(
            api,
            "allocateNumbers",
            {"organizationId": gid(outsider), "seriesId": s61, "quantity": 1},
            admin,
        )
        assert codes(errors) == {("NOT_FOUND", ("input", "organizationId"), None)}

    assert await pool_of(api, root) == [N1, N2, N3]
    assert len(await pool_of(api, partner)) == 1
    assert await pool_of(api, other) == []


@pytest.mark.parametrize("mutation", ["allocateNumbers", "withdrawNumbers"])
async def test_operators_cannot_move_numbers_between_pools(api: Api, mutation: str) -> None:
    root = await api.root()
    partner = await api.org("Partner", OrganizationKind.PARTNER, root)
    s61 = await series(api)
    await add(api, N1)
    await add(api, N2, to=partner)
    operator = await api.token_for(root, Role.OPERATOR)

    for how in ({"seriesId": s61, "quantity": 1}, {"numbers": [N1 if mutation[0] == "a" else N2]}):
        errors = await refused(api, mutation, {"organizationId": gid(partner), **how}, operator)
        assert [e["code"] for e in errors] == ["FORBIDDEN"]

    assert await pool_of(api, root) == [N1]
    assert await pool_of(api, partner) == [N2]


async def test_a_number_allocated_to_an_org_is_usable_only_by_it_and_below(api: Api) -> None:
    partner, first, second = await partner_tree(api)
    department = await api.org("Department", OrganizationKind.DEPARTMENT, first)
    await series(api)
    await add(api, N1, N2, to=partner)
    await ok(api, "allocateNumbers", {"organizationId": gid(first), "numbers": [N1, N2]})

    for outsider in (second, partner):
        errors = await refused(
            api, "reserveNumbers", {"numbers": [N1], "reservedForId": gid(outsider)}
        )
        assert codes(errors) == {("INVALID_TRANSITION", ("input", "numbers", "0"), N1)}
    assert await owner_of(api, N1) == "Customer 1"
    assert [e[0] for e in await events(api, N1)] == ["ALLOCATED", "ADDED"]

    [held] = await ok(api, "reserveNumbers", {"numbers": [N1], "reservedForId": gid(department)})
    assert held["reservation"]["reservedFor"] == {"name": "Department"}
    [mine] = await ok(api, "reserveNumbers", {"numbers": [N2], "reservedForId": gid(first)})
    assert mine["reservation"]["reservedFor"] == {"name": "Customer 1"}


# ---- the nested SPA view ----


async def _fill(api: Api, org: Organization, first_index: int) -> None:
    """Three numbers of +6561 and one of +6562 in the organization's own pool."""
    numbers = [sg(first_index + i) for i in range(3)] + [sg(first_index, 62)]
    await add(api, *numbers, to=org)


POOL_PAGES = """
query($id: ID!, $descendants: Boolean!, $after: String) {
  organization(id: $id) {
    numbers(
      first: 2, after: $after, includeDescendants: $descendants, filter: {states: [AVAILABLE]}
    ) {
      edges { node { e164 } }
      pageInfo { endCursor }
    }
    children { name numbers(first: 2) { edges { node { e164 } } } }
  }
}"""


async def test_each_organization_gets_its_own_page_when_views_follow_one_another(
    api: Api,
) -> None:
    """A view's page statement is kept and run again with other organizations as its
    parameters: each view, alone or nested, asked in any order, reads its own pool."""
    root = await api.root()
    partner = await api.org("Partner", OrganizationKind.PARTNER, root)
    customer = await api.org("Customer", OrganizationKind.CUSTOMER, partner)
    other = await api.org("Other customer", OrganizationKind.CUSTOMER, partner)
    for index, org in enumerate((customer, other, partner), start=1):
        await _fill(api, org, index * 10)

    async def page(org: Organization, descendants: bool, after: str | None = None) -> Any:
        variables = {"id": gid(org), "descendants": descendants, "after": after}
        found = (await api.gql(POOL_PAGES, variables))["organization"]
        own = [edge["node"]["e164"] for edge in found["numbers"]["edges"]]
        children = {
            child["name"]: [edge["node"]["e164"] for edge in child["numbers"]["edges"]]
            for child in found["children"]
        }
        return own, children, found["numbers"]["pageInfo"]["endCursor"]

    for _ in range(2):
        for org, index in ((customer, 10), (other, 20), (partner, 30)):
            own, children, cursor = await page(org, False)
            assert own == [sg(index), sg(index + 1)], org.name
            assert (await page(org, False, cursor))[0] == [sg(index + 2), sg(index, 62)]
        own, children, _ = await page(partner, False)
        assert children == {"Customer": [sg(10), sg(11)], "Other customer": [sg(20), sg(21)]}
        assert (await page(partner, True))[0] == [sg(10), sg(11)]
        assert (await page(other, True))[0] == [sg(20), sg(21)]
        assert (await page(root, True))[0] == [sg(10), sg(11)]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_views_walk_decision_is_counted_once_a_minute(
    api: Api, statements: StatementCounter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite, whether a view's page walks the numbers in order is decided from the
    counters once, not at every look; decided again once PLAN_SECONDS have passed."""
    root = await api.root()
    partner = await api.org("Partner", OrganizationKind.PARTNER, root)
    await _fill(api, partner, 10)
    variables = {"id": gid(partner), "descendants": False, "after": None}

    async def decisions() -> tuple[list[str], int]:
        statements.reset()
        found = (await api.gql(POOL_PAGES, variables))["organization"]
        numbers = [edge["node"]["e164"] for edge in found["numbers"]["edges"]]
        assert numbers == [sg(10), sg(11)]
        counted = [sql for sql in statements.sql if "FROM number_state_counts) AS" in sql]
        return numbers, len(counted)

    assert (await decisions())[1] == 1
    assert (await decisions())[1] == 0
    monkeypatch.setattr(search, "PLAN_SECONDS", 0.0)
    assert (await decisions())[1] == 1


@pytest.mark.slow
async def test_the_nested_spa_view_runs_as_many_statements_for_200_orgs_as_for_5(
    api: Api, statements: StatementCounter
) -> None:
    root = await api.root()
    await series(api, "+6561")
    await series(api, "+6562")
    orgs = [root]
    partner = await api.org("Partner 0", OrganizationKind.PARTNER, root)
    customer = await api.org("Customer 0", OrganizationKind.CUSTOMER, partner)
    department = await api.org("Department 0", OrganizationKind.DEPARTMENT, customer)
    lone = await api.org("Lone partner", OrganizationKind.PARTNER, root)
    orgs += [partner, customer, department, lone]
    for index, org in enumerate(orgs):
        await _fill(api, org, index * 10)

    statements.reset()
    small = await api.gql(SPA_VIEW)
    at_5 = statements.count

    while len(orgs) < 200:
        n = len(orgs)
        # Branches of a partner, its customer and the customer's department.
        if n % 3 == 1:
            org = await api.org(f"Partner {n}", OrganizationKind.PARTNER, root)
        elif n % 3 == 2:
            org = await api.org(f"Customer {n}", OrganizationKind.CUSTOMER, orgs[-1])
        else:
            org = await api.org(f"Department {n}", OrganizationKind.DEPARTMENT, orgs[-1])
        orgs.append(org)
        await _fill(api, org, n * 10)

    statements.reset()
    large = await api.gql(SPA_VIEW)
    at_200 = statements.count

    assert len(small["organizations"]["edges"]) == 5
    assert len(large["organizations"]["edges"]) == 200
    for data, size in ((small, 5), (large, 200)):
        nodes = [e["node"] for e in data["organizations"]["edges"]]
        top = nodes[0]
        assert top["name"] == "Provider"
        assert counts(top["numberCounts"]) == {"AVAILABLE": 4 * size}
        for node in nodes:
            assert node["numbers"]["totalCount"] == 4
            assert len(node["numbers"]["edges"]) == 2
            held = node["allocations"]
            rows = {(a["series"]["prefix"], a["allocated"], a["unused"]) for a in held}
            assert rows == {("+6561", 3, 3), ("+6562", 1, 1)}, node["name"]
    assert at_200 == at_5, f"{at_5} statements for 5 organizations, {at_200} for 200"
