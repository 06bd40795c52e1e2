"""Bounds are checked before work, the same on both databases (DESIGN, "Intake and integrity").

SQLite stores a text of any length in a VARCHAR(n); PostgreSQL refuses it, and a 405-
character e-mail used to reach the database and fail there (a 500). Every text input is
checked against its column's size, read from the model, and the tree's depth against
NUMBRA_MAX_TREE_DEPTH, which the path column bounds.
"""

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import ValidationError

from domain.clock import ManualClock
from models import Number, Organization, OrganizationKind, Series, Token
from models.base import column_length
from models.database import Database
from models.organizations import DEEPEST, path_segment
from settings import Settings
from tests.support.api import Api, gid
from tests.support.isolation import snapshot

N1 = "+6561000001"
NOTES_LIMIT = 4000  # notes are TEXT: the API's own bound


def email(length: int) -> str:
    domain = "@x.example"
    return "a" * (length - len(domain)) + domain


def text(length: int) -> str:
    return "t" * length


# Each text input: (mutation, its input type, the field, its column, how to fill it).
Fill = Callable[[int], str]
ORG_NAME = column_length(Organization.name)
TEXT_INPUTS: list[tuple[str, str, str, int, Fill]] = [
    (
        "createOrganization",
        "CreateOrganizationInput",
        "name",
        column_length(Organization.name),
        text,
    ),
    *(
        ("createOrganization", "CreateOrganizationInput", field, column_length(column), email)
        for field, column in (
            ("billingEmail", Organization.billing_email),
            ("ownerEmail", Organization.owner_email),
            ("supportEmail", Organization.support_email),
        )
    ),
    (
        "updateOrganization",
        "UpdateOrganizationInput",
        "name",
        column_length(Organization.name),
        text,
    ),
    *(
        ("updateOrganization", "UpdateOrganizationInput", field, column_length(column), email)
        for field, column in (
            ("billingEmail", Organization.billing_email),
            ("ownerEmail", Organization.owner_email),
            ("supportEmail", Organization.support_email),
        )
    ),
    ("createToken", "CreateTokenInput", "name", column_length(Token.name), text),
    ("createSeries", "CreateSeriesInput", "name", column_length(Series.name), text),
    *(
        ("addNumbers", "AddNumbersInput", field, column_length(column), text)
        for field, column in (
            ("vendor", Number.vendor),
            ("sku", Number.sku),
            ("routing", Number.routing),
            ("visibleToDomain", Number.visible_to_domain),
            ("tag", Number.tag),
        )
    ),
    ("addNumbers", "AddNumbersInput", "notes", NOTES_LIMIT, text),
    *(
        ("editNumbers", "EditNumbersInput", field, column_length(column), text)
        for field, column in (
            ("sku", Number.sku),
            ("routing", Number.routing),
            ("visibleToDomain", Number.visible_to_domain),
            ("tag", Number.tag),
        )
    ),
    ("editNumbers", "EditNumbersInput", "notes", NOTES_LIMIT, text),
    ("reserveNumbers", "ReserveNumbersInput", "tag", column_length(Number.reservation_tag), text),
]
SHOWN = {
    "createOrganization": "organization { id }",
    "updateOrganization": "organization { id }",
    "createToken": "token",
    "createSeries": "series { id }",
}


def base_input(mutation: str, org: Organization) -> dict[str, Any]:
    inputs: dict[str, dict[str, Any]] = {
        "createOrganization": {"name": "Dept", "kind": "CUSTOMER"},
        "updateOrganization": {"id": gid(org)},
        "createToken": {"name": "desk", "organizationId": gid(org), "role": "VIEWER"},
        "createSeries": {"name": "Singapore 62", "prefix": "+6562", "country": "SG"},
        "addNumbers": {"numbers": ["+6561000002"], "vendor": "V", "country": "SG", "sku": "S"},
        "editNumbers": {"numbers": [N1]},
        "reserveNumbers": {"numbers": [N1], "reservedForId": gid(org)},
    }
    return inputs[mutation]


async def call(api: Api, mutation: str, input_type: str, values: dict[str, Any]) -> Any:
    query = (
        f"mutation($input: {input_type}!) {{ {mutation}(input: $input) "
        f"{{ {SHOWN.get(mutation, 'numbers { e164 }')} userErrors {{ code field message }} }} }}"
    )
    return (await api.gql(query, {"input": values}))[mutation]


@pytest.fixture
async def partner(api: Api) -> Organization:
    org = await api.org("Resell", OrganizationKind.PARTNER, await api.root())
    payload = await call(
        api,
        "addNumbers",
        "AddNumbersInput",
        {"numbers": [N1], "vendor": "V", "country": "SG", "sku": "S"},
    )
    assert payload["userErrors"] == []
    return org


EVERY_TEXT_INPUT = pytest.mark.parametrize(
    ("mutation", "input_type", "field", "limit", "fill"),
    TEXT_INPUTS,
    ids=[f"{m}.{f}" for m, _t, f, _n, _fill in TEXT_INPUTS],
)


@EVERY_TEXT_INPUT
async def test_a_text_one_longer_than_its_column_is_validation_and_changes_nothing(
    api: Api,
    partner: Organization,
    mutation: str,
    input_type: str,
    field: str,
    limit: int,
    fill: Fill,
) -> None:
    before = await snapshot(api.db)
    values = base_input(mutation, partner) | {field: fill(limit + 1)}
    payload = await call(api, mutation, input_type, values)
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("VALIDATION", ["input", field])
    ]
    assert str(limit) in payload["userErrors"][0]["message"]
    assert await snapshot(api.db) == before


@EVERY_TEXT_INPUT
async def test_a_text_as_long_as_its_column_is_stored(
    api: Api,
    partner: Organization,
    mutation: str,
    input_type: str,
    field: str,
    limit: int,
    fill: Fill,
) -> None:
    values = base_input(mutation, partner) | {field: fill(limit)}
    payload = await call(api, mutation, input_type, values)
    assert payload["userErrors"] == []


CSV_COLUMNS = {
    "vendor": column_length(Number.vendor),
    "sku": column_length(Number.sku),
    "routing": column_length(Number.routing),
    "visible_to_domain": column_length(Number.visible_to_domain),
    "tag": column_length(Number.tag),
    "notes": NOTES_LIMIT,
}


@pytest.mark.parametrize("column", CSV_COLUMNS)
async def test_an_import_cell_longer_than_its_column_is_a_bad_row(api: Api, column: str) -> None:
    limit = CSV_COLUMNS[column]
    cells = {"number": N1, "vendor": "V", "country": "SG", "sku": "S"}
    header = ",".join([*cells, column] if column not in cells else cells)
    row = cells | {column: text(limit + 1)}
    body = header + "\n" + ",".join(row[name] for name in header.split(",")) + "\n"
    before = await snapshot(api.db)
    response = await api.upload_csv(body)
    assert response.status_code == 422, response.text  # nothing written: bad rows
    report = response.json()
    assert report["added"] == 0
    assert [(bad["line"], str(limit) in bad["reason"]) for bad in report["bad_rows"]] == [(2, True)]
    assert await snapshot(api.db) == before


# ---- the depth of the tree ----


def test_the_deepest_organization_s_path_fits_its_column() -> None:
    width = len(path_segment(1))
    assert 1 + width * (DEEPEST + 1) <= column_length(Organization.path)
    assert 1 + width * (DEEPEST + 2) > column_length(Organization.path)
    assert Settings(_env_file=None).max_tree_depth < DEEPEST
    with pytest.raises(ValidationError):
        Settings(_env_file=None, max_tree_depth=DEEPEST + 1)


@pytest.fixture
async def shallow(
    db: Database, database_url: str, clock: ManualClock, root_token: str
) -> AsyncIterator[Api]:
    """The API with a tree at most 3 levels below the provider."""
    from web.app import create_app

    settings = Settings(_env_file=None, database_url=database_url, max_tree_depth=3)
    async with Api.open(create_app(settings, db=db, clock=clock), root_token, db, clock) as client:
        yield client


CREATE = """
mutation($input: CreateOrganizationInput!) {
  createOrganization(input: $input) {
    organization { id depth }
    userErrors { code field message }
  }
}"""


async def test_an_organization_below_the_deepest_level_is_validation(shallow: Api) -> None:
    parent = None
    for depth in (1, 2, 3):
        payload = (
            await shallow.gql(
                CREATE, {"input": {"name": f"level {depth}", "kind": "PARTNER", "parentId": parent}}
            )
        )["createOrganization"]
        assert payload["userErrors"] == []
        assert payload["organization"]["depth"] == depth
        parent = payload["organization"]["id"]
    before = await snapshot(shallow.db)
    payload = (
        await shallow.gql(
            CREATE, {"input": {"name": "level 4", "kind": "PARTNER", "parentId": parent}}
        )
    )["createOrganization"]
    assert payload["organization"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("VALIDATION", ["input", "parentId"])
    ]
    assert "3" in payload["userErrors"][0]["message"]
    assert await snapshot(shallow.db) == before


def test_an_event_s_actor_column_holds_any_token_name() -> None:
    """A token's name is written as the actor of every event it makes."""
    from models import NumberEvent

    assert column_length(NumberEvent.actor) >= column_length(Token.name)
