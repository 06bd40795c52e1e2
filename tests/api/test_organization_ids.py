"""One way to name an organization: wherever an input names one by ID, its UUID names it too.

DESIGN, "Names, ids and lookups": an ID that is neither an organization's global ID nor
its UUID is VALIDATION naming the field, never a silent empty answer; a well-formed id of
no organization the viewer may see stays NOT_FOUND (or null), as isolation wants.
"""

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from domain import ids
from models import Organization, OrganizationKind
from tests.support.api import Api, gid
from tests.support.isolation import snapshot
from tests.support.mutations import NumberMutations

MUTATIONS = NumberMutations("fragment N on Number { e164 state organization { name } }")
N1, N2 = "+6561000001", "+6561000002"
# Not an id of any kind; an id of another type; a UUID no organization has.
MALFORMED = ["xyz", ids.encode("Number", N1), ids.encode("Organization", "not-a-uuid")]


def made_up() -> str:
    return str(uuid.uuid4())


async def world(api: Api) -> tuple[Organization, Organization]:
    root = await api.root()
    partner = await api.org("Resell", OrganizationKind.PARTNER, root)
    customer = await api.org("Acme", OrganizationKind.CUSTOMER, partner)
    return partner, customer


async def add(api: Api, *numbers: str, **fields: Any) -> None:
    base = {"numbers": list(numbers), "vendor": "V", "country": "SG", "sku": "S"}
    await MUTATIONS.ok(api, "addNumbers", base | fields)


# mutation, its input (given the organization reference), the field naming it
NamedBy = Callable[[str], dict[str, Any]]
MUTATION_CASES: dict[str, tuple[str, str, NamedBy]] = {
    "createOrganization.parentId": (
        "createOrganization",
        "CreateOrganizationInput",
        lambda ref: {"name": "Dept", "kind": "DEPARTMENT", "parentId": ref},
    ),
    "updateOrganization.id": (
        "updateOrganization",
        "UpdateOrganizationInput",
        lambda ref: {"id": ref, "name": "Renamed"},
    ),
    "createToken.organizationId": (
        "createToken",
        "CreateTokenInput",
        lambda ref: {"organizationId": ref, "name": "desk", "role": "VIEWER"},
    ),
    "addNumbers.organizationId": (
        "addNumbers",
        "AddNumbersInput",
        lambda ref: {
            "numbers": [N2],
            "vendor": "V",
            "country": "SG",
            "sku": "S",
            "organizationId": ref,
        },
    ),
    "reserveNumbers.reservedForId": (
        "reserveNumbers",
        "ReserveNumbersInput",
        lambda ref: {"numbers": [N1], "reservedForId": ref},
    ),
    "allocateNumbers.organizationId": (
        "allocateNumbers",
        "AllocateNumbersInput",
        lambda ref: {"numbers": [N1], "organizationId": ref},
    ),
}
PAYLOAD_FIELD = {
    "createOrganization": "organization { name }",
    "updateOrganization": "organization { name }",
    "createToken": "token",
}


async def mutate(api: Api, case: str, ref: str) -> dict[str, Any]:
    mutation, input_type, make = MUTATION_CASES[case]
    shown = PAYLOAD_FIELD.get(mutation, "numbers { e164 }")
    query = (
        f"mutation($input: {input_type}!) {{ {mutation}(input: $input) "
        f"{{ {shown} userErrors {{ code field message }} }} }}"
    )
    payload: dict[str, Any] = (await api.gql(query, {"input": make(ref)}))[mutation]
    return payload


@pytest.mark.parametrize("case", MUTATION_CASES)
async def test_every_mutation_naming_an_organization_takes_its_uuid(api: Api, case: str) -> None:
    partner, _customer = await world(api)
    await add(api, N1)
    payload = await mutate(api, case, str(partner.uuid))
    assert payload["userErrors"] == []


@pytest.mark.parametrize("case", MUTATION_CASES)
async def test_an_organization_id_that_is_neither_is_validation_naming_the_field(
    api: Api, case: str
) -> None:
    await world(api)
    await add(api, N1)
    field = ["input", case.split(".")[1]]
    before = await snapshot(api.db)
    for ref in MALFORMED:
        payload = await mutate(api, case, ref)
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
            ("VALIDATION", field)
        ], ref
    for unknown in (made_up(), ids.encode("Organization", made_up())):
        payload = await mutate(api, case, unknown)
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("NOT_FOUND", field)]
    assert await snapshot(api.db) == before


FILTERED = """
query($org: ID) {
  numbers(filter: {organizationId: $org, includeDescendants: true}) { edges { node { e164 } } }
  numberCounts(filter: {organizationId: $org}) { state count }
}"""


async def test_the_number_filter_takes_the_uuid_and_refuses_what_is_neither(api: Api) -> None:
    partner, customer = await world(api)
    await add(api, N1, organizationId=gid(customer))
    for ref in (gid(partner), str(partner.uuid)):
        data = await api.gql(FILTERED, {"org": ref})
        assert [e["node"]["e164"] for e in data["numbers"]["edges"]] == [N1]
    for ref in MALFORMED:
        errors = await api.errors(FILTERED, {"org": ref})
        assert {e["extensions"]["code"] for e in errors} == {"VALIDATION"}, ref
        assert {tuple(e["extensions"]["field"]) for e in errors} == {("filter", "organizationId")}
    # Well-formed but no one's: nothing, as before.
    data = await api.gql(FILTERED, {"org": made_up()})
    assert data["numbers"]["edges"] == []


ORGANIZATION = "query($id: ID!) { organization(id: $id) { name } }"


async def test_the_organization_query_takes_the_uuid_and_refuses_what_is_neither(
    api: Api,
) -> None:
    partner, _customer = await world(api)
    for ref in (gid(partner), str(partner.uuid)):
        assert (await api.gql(ORGANIZATION, {"id": ref}))["organization"] == {"name": "Resell"}
    assert (await api.gql(ORGANIZATION, {"id": made_up()}))["organization"] is None
    errors = await api.errors(ORGANIZATION, {"id": "xyz"})
    assert [e["extensions"]["code"] for e in errors] == ["VALIDATION"]
    assert errors[0]["extensions"]["field"] == ["id"]


async def test_csv_routes_refuse_an_organization_id_that_is_neither(api: Api) -> None:
    partner, _customer = await world(api)
    await add(api, N1, organizationId=gid(partner))
    response = await api.upload_csv(
        "number,vendor,country,sku\n+6561000009,V,SG,S\n", organization_id="xyz"
    )
    assert response.status_code == 400, response.text
    assert [(e["code"], e["field"]) for e in response.json()["errors"]] == [
        ("VALIDATION", ["organization_id"])
    ]
    exported = await api.client.get(
        "/export/numbers.csv", params={"organization_id": "xyz"}, headers=api.auth()
    )
    assert exported.status_code == 400, exported.text
    assert [(e["code"], e["field"]) for e in exported.json()["errors"]] == [
        ("VALIDATION", ["filter", "organization_id"])
    ]
    by_uuid = await api.client.get(
        "/export/numbers.csv",
        params={"organization_id": str(partner.uuid)},
        headers=api.auth(),
    )
    assert N1 in by_uuid.text
