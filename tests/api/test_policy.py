"""The number policy per organization through the API: set, inherit, clear, bounds, the
parent ceiling, who may set it, and the nested view without N+1."""

from dataclasses import dataclass
from typing import Any

import pytest

from models import Organization, OrganizationKind, Role
from tests.support.api import Api, gid
from tests.support.databases import StatementCounter
from tests.support.mutations import NumberMutations, codes

FIELDS = (
    "freeReservationDays expiredHoldDays terminatedHoldDays cancelledHoldDays swapHoldDays "
    "lockDays noticeDays afterHold"
)
SET = (
    "mutation($input: SetNumberPolicyInput!) { setNumberPolicy(input: $input) { "
    f"organization {{ id policy {{ {FIELDS} }} policyOverrides {{ {FIELDS} }} }} "
    "userErrors { code message field number } } }"
)
VIEW = (
    f"{{ organizations {{ edges {{ node {{ name policy {{ {FIELDS} }} "
    f"policyOverrides {{ {FIELDS} }} }} }} }} }}"
)
# The settings' defaults (settings/__init__.py).
DEFAULTS = {
    "freeReservationDays": 28,
    "expiredHoldDays": 56,
    "terminatedHoldDays": 28,
    "cancelledHoldDays": 28,
    "swapHoldDays": 1,
    "lockDays": 90,
    "noticeDays": 7,
    "afterHold": "AVAILABLE",
}
NOTHING_SET = dict.fromkeys(DEFAULTS)


@dataclass(frozen=True)
class Tree:
    """Four levels: the provider, a partner, its customer, the customer's department."""

    root: Organization
    partner: Organization
    customer: Organization
    department: Organization


@pytest.fixture
async def tree(api: Api) -> Tree:
    root = await api.root()
    partner = await api.org("Partner", OrganizationKind.PARTNER, root)
    customer = await api.org("Customer", OrganizationKind.CUSTOMER, partner)
    department = await api.org("Department", OrganizationKind.DEPARTMENT, customer)
    return Tree(root, partner, customer, department)


async def set_policy(
    api: Api, org: Organization, *, token: str | None = None, **values: Any
) -> dict[str, Any]:
    payload: dict[str, Any] = (
        await api.gql(SET, {"input": {"organizationId": gid(org), **values}}, token=token)
    )["setNumberPolicy"]
    return payload


async def ok(api: Api, org: Organization, *, token: str | None = None, **values: Any) -> None:
    payload = await set_policy(api, org, token=token, **values)
    assert payload["userErrors"] == [], payload["userErrors"]


async def policies(api: Api) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """(effective, own) per organization name."""
    edges = (await api.gql(VIEW))["organizations"]["edges"]
    return {e["node"]["name"]: (e["node"]["policy"], e["node"]["policyOverrides"]) for e in edges}


async def test_values_set_above_are_inherited_below_then_the_settings(api: Api, tree: Tree) -> None:
    assert all(pair == (DEFAULTS, NOTHING_SET) for pair in (await policies(api)).values())

    await ok(api, tree.root, lockDays=100, freeReservationDays=20)
    await ok(api, tree.partner, expiredHoldDays=40, afterHold="LOCKED")
    await ok(api, tree.customer, freeReservationDays=10, noticeDays=3)

    found = await policies(api)
    assert found["Department"] == (
        {
            **DEFAULTS,
            "lockDays": 100,
            "freeReservationDays": 10,
            "expiredHoldDays": 40,
            "afterHold": "LOCKED",
            "noticeDays": 3,
        },
        NOTHING_SET,
    )
    assert found["Partner"] == (
        {**DEFAULTS, "lockDays": 100, "freeReservationDays": 20, "expiredHoldDays": 40,
         "afterHold": "LOCKED"},
        {**NOTHING_SET, "expiredHoldDays": 40, "afterHold": "LOCKED"},
    )  # fmt: skip
    assert found["Customer"][1] == {**NOTHING_SET, "freeReservationDays": 10, "noticeDays": 3}
    assert found["Provider"][0] == {**DEFAULTS, "lockDays": 100, "freeReservationDays": 20}


async def test_null_clears_an_override_and_omitted_fields_stay(api: Api, tree: Tree) -> None:
    await ok(api, tree.root, swapHoldDays=5)
    await ok(api, tree.customer, swapHoldDays=2, lockDays=30, afterHold="DELETED")

    await ok(api, tree.customer, swapHoldDays=None, afterHold=None)

    effective, own = (await policies(api))["Department"]
    assert own == NOTHING_SET
    assert (effective["swapHoldDays"], effective["lockDays"], effective["afterHold"]) == (
        5,
        30,
        "AVAILABLE",
    )
    assert (await policies(api))["Customer"][1] == {**NOTHING_SET, "lockDays": 30}


@pytest.mark.parametrize(
    ("field", "bad", "good"),
    [
        ("freeReservationDays", [0, 366], [1, 28]),
        ("expiredHoldDays", [0, 366], [1, 365]),
        ("terminatedHoldDays", [-1, 366], [1, 365]),
        ("cancelledHoldDays", [0, 1000], [1, 365]),
        ("swapHoldDays", [0, 366], [1, 365]),
        ("lockDays", [0, 3651], [1, 3650]),
        ("noticeDays", [0, 31], [1, 30]),
    ],
)
async def test_bounds(api: Api, tree: Tree, field: str, bad: list[int], good: list[int]) -> None:
    for days in bad:
        given: dict[str, Any] = {field: days}
        payload = await set_policy(api, tree.customer, **given)
        assert codes(payload["userErrors"]) == {("VALIDATION", ("input", field), None)}
        assert payload["organization"] is None
    assert (await policies(api))["Customer"][1] == NOTHING_SET
    for days in good:
        given = {field: days}
        await ok(api, tree.customer, **given)
        assert (await policies(api))["Customer"][1][field] == days


async def test_every_problem_is_reported_and_nothing_is_set(api: Api, tree: Tree) -> None:
    payload = await set_policy(api, tree.customer, lockDays=0, noticeDays=99, swapHoldDays=3)
    assert codes(payload["userErrors"]) == {
        ("VALIDATION", ("input", "lockDays"), None),
        ("VALIDATION", ("input", "noticeDays"), None),
    }
    assert (await policies(api))["Customer"][1] == NOTHING_SET


async def test_a_free_reservation_period_may_not_exceed_the_parents(api: Api, tree: Tree) -> None:
    # Nothing set: the ceiling is the settings' 28 days, the root's own excepted.
    payload = await set_policy(api, tree.partner, freeReservationDays=29)
    assert codes(payload["userErrors"]) == {("VALIDATION", ("input", "freeReservationDays"), None)}
    await ok(api, tree.root, freeReservationDays=60)
    await ok(api, tree.partner, freeReservationDays=30)
    payload = await set_policy(api, tree.department, freeReservationDays=31)
    assert codes(payload["userErrors"]) == {("VALIDATION", ("input", "freeReservationDays"), None)}
    await ok(api, tree.customer, freeReservationDays=30)

    # A parent lowering its own below a child's: the child keeps its value, but the
    # parent's is its ceiling, and so everyone's below.
    await ok(api, tree.partner, freeReservationDays=14)
    found = await policies(api)
    assert found["Customer"][1]["freeReservationDays"] == 30
    assert [found[name][0]["freeReservationDays"] for name in found] == [60, 14, 14, 14]
    await ok(api, tree.partner, freeReservationDays=None)
    found = await policies(api)
    assert [found[name][0]["freeReservationDays"] for name in found] == [60, 60, 30, 30]


async def test_an_admin_of_the_organization_or_above_sets_it(api: Api, tree: Tree) -> None:
    customer_admin = await api.token_for(tree.customer, Role.ADMIN)
    await ok(api, tree.customer, token=customer_admin, lockDays=10)
    await ok(api, tree.department, token=customer_admin, lockDays=11)

    payload = await set_policy(api, tree.partner, token=customer_admin, lockDays=12)
    assert codes(payload["userErrors"]) == {("NOT_FOUND", ("input", "organizationId"), None)}
    for role in (Role.OPERATOR, Role.VIEWER):
        token = await api.token_for(tree.customer, role)
        payload = await set_policy(api, tree.customer, token=token, lockDays=13)
        assert [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"]
    found = await policies(api)
    assert (found["Customer"][1]["lockDays"], found["Department"][1]["lockDays"]) == (10, 11)
    assert found["Partner"][1]["lockDays"] is None


async def test_the_nested_view_costs_the_same_statements_for_many_organizations(
    api: Api, tree: Tree, statements: StatementCounter
) -> None:
    await ok(api, tree.partner, lockDays=10)

    async def count() -> int:
        statements.reset()
        await api.gql(VIEW)
        return statements.count

    few = await count()
    for n in range(10):
        partner = await api.org(f"P{n}", OrganizationKind.PARTNER, tree.root)
        customer = await api.org(f"C{n}", OrganizationKind.CUSTOMER, partner)
        await ok(api, customer, noticeDays=2)
    assert await count() == few


AFTER_HOLD = NumberMutations("fragment N on Number { e164 afterHold }")


async def test_a_numbers_own_after_hold_is_set_by_add_and_edit_and_cleared_by_null(
    api: Api,
) -> None:
    [added] = await AFTER_HOLD.ok(
        api,
        "addNumbers",
        {
            "numbers": ["+6561000001"],
            "vendor": "V",
            "country": "SG",
            "sku": "s",
            "afterHold": "DELETED",
        },
    )
    assert added["afterHold"] == "DELETED"
    edit = {"numbers": ["+6561000001"]}
    [kept] = await AFTER_HOLD.ok(api, "editNumbers", {**edit, "sku": "t"})
    assert kept["afterHold"] == "DELETED"
    [locked] = await AFTER_HOLD.ok(api, "editNumbers", {**edit, "afterHold": "LOCKED"})
    assert locked["afterHold"] == "LOCKED"
    [cleared] = await AFTER_HOLD.ok(api, "editNumbers", {**edit, "afterHold": None})
    assert cleared["afterHold"] is None
