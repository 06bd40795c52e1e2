"""Intake: who may bring numbers in, and what a number held elsewhere answers.

DESIGN, "Intake and integrity": numbers enter through the provider's ADMINs and those
of organizations an ancestor has allowed (`mayAddNumbers`). A number already held
outside the caller's subtree is answered ALREADY_EXISTS without where or in what state;
such answers are counted per token and UTC day (dry runs too), and past
NUMBRA_INTAKE_REFUSALS_PER_DAY the token's intake is refused with RATE_LIMITED and the
provider's support e-mail is told, once per token and day.
"""

import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from domain.access import NO_TOKEN, Caller, Viewer
from domain.clock import ManualClock
from domain.csv import imports
from domain.errors import DomainError, ErrorCode
from domain.policy import Policy
from models import Notice, NoticeKind, Organization, OrganizationKind, Role
from models.database import Database
from models.intake import IntakeRefusal
from settings import Settings
from tests.support.api import Api, gid
from tests.support.isolation import snapshot
from tests.support.mutations import NumberMutations
from tests.support.world import World

MUTATIONS = NumberMutations("fragment N on Number { e164 }")
STATES = ("available", "reserved", "locked", "assigned", "deleted")
FRESH = "+6562000001"

UPDATE = """
mutation($input: UpdateOrganizationInput!) {
  updateOrganization(input: $input) {
    organization { name mayAddNumbers }
    userErrors { code field message }
  }
}"""
MAY_ADD = "query($id: ID!) { organization(id: $id) { mayAddNumbers } }"


@dataclass
class Tree:
    api: Api
    world: World
    root: Organization
    p1: Organization
    c1: Organization
    p2: Organization
    p1_admin: str
    c1_admin: str
    # Numbers P2 holds, one in each state; one held by C1 (inside P1's subtree).
    theirs: dict[str, str]
    inside: str


async def make_tree(api: Api) -> Tree:
    root = await api.root()
    world = World(api.db, api.clock, root)
    p1 = await api.org("Resell", OrganizationKind.PARTNER, root)
    c1 = await api.org("Acme", OrganizationKind.CUSTOMER, p1)
    p2 = await api.org("Other-secret", OrganizationKind.PARTNER, root)
    theirs = dict(zip(STATES, await world.add(len(STATES), p2), strict=True))
    await world.reserve([theirs["reserved"]], p2)
    await world.lock([theirs["locked"]])
    await world.assign([theirs["assigned"]])
    await world.delete([theirs["deleted"]])
    [inside] = await world.add(1, c1)
    return Tree(
        api,
        world,
        root,
        p1,
        c1,
        p2,
        await api.token_for(p1, Role.ADMIN, "p1 desk"),
        await api.token_for(c1, Role.ADMIN, "c1 desk"),
        theirs,
        inside,
    )


async def allow(api: Api, org: Organization, may: bool = True, token: str | None = None) -> Any:
    payload = (await api.gql(UPDATE, {"input": {"id": gid(org), "mayAddNumbers": may}}, token))[
        "updateOrganization"
    ]
    return payload


async def add(api: Api, numbers: list[str], token: str, **fields: Any) -> dict[str, Any]:
    base = {"numbers": numbers, "vendor": "V", "country": "SG", "sku": "S"}
    return await MUTATIONS.call(api, "addNumbers", base | fields, token)


def csv(*numbers: str) -> str:
    return "number,vendor,country,sku\n" + "".join(f"{n},V,SG,S\n" for n in numbers)


def masked(text: str, *numbers: str) -> str:
    for number in numbers:
        text = text.replace(number, "<N>")
    return text


# ---- who may ----


async def test_intake_is_the_provider_s_and_allowed_organizations(api: Api) -> None:
    tree = await make_tree(api)
    refused = await add(api, [FRESH], tree.p1_admin)
    assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"]
    for dry_run in (False, True):
        response = await api.upload_csv(csv(FRESH), tree.p1_admin, dry_run=dry_run)
        assert response.status_code == 403, response.text
    assert (await api.gql(MAY_ADD, {"id": gid(tree.root)}))["organization"]["mayAddNumbers"]
    assert not (await api.gql(MAY_ADD, {"id": gid(tree.p1)}))["organization"]["mayAddNumbers"]

    payload = await allow(api, tree.p1)
    assert payload["userErrors"] == []
    assert payload["organization"]["mayAddNumbers"] is True
    assert (await add(api, [FRESH], tree.p1_admin))["userErrors"] == []
    response = await api.upload_csv(csv("+6562000002"), tree.p1_admin)
    assert (response.status_code, response.json()["added"]) == (200, 1)
    # Its customer is not allowed by that.
    refused = await add(api, ["+6562000003"], tree.c1_admin)
    assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"]


async def test_only_an_admin_above_an_organization_sets_may_add_numbers(api: Api) -> None:
    tree = await make_tree(api)
    field = ["input", "mayAddNumbers"]
    # Not itself, and not the provider.
    for org, token in ((tree.p1, tree.p1_admin), (tree.c1, tree.c1_admin), (tree.root, None)):
        payload = await allow(api, org, token=token)
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("FORBIDDEN", field)]
    # A reseller not allowed cannot allow below it; the provider cannot skip a level.
    payload = await allow(api, tree.c1, token=tree.p1_admin)
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("FORBIDDEN", field)]
    payload = await allow(api, tree.c1)
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("VALIDATION", field)]
    # Allowed, the reseller passes it down.
    await allow(api, tree.p1)
    assert (await allow(api, tree.c1, token=tree.p1_admin))["userErrors"] == []
    assert (await add(api, [FRESH], tree.c1_admin))["userErrors"] == []
    # An operator is no ADMIN.
    operator = await api.token_for(tree.p1, Role.OPERATOR)
    payload = await allow(api, tree.c1, False, token=operator)
    assert [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"]
    # Taken from the reseller, it is taken from everything below it too.
    assert (await allow(api, tree.p1, False))["organization"]["mayAddNumbers"] is False
    assert not (await api.gql(MAY_ADD, {"id": gid(tree.c1)}))["organization"]["mayAddNumbers"]
    refused = await add(api, ["+6562000009"], tree.c1_admin)
    assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"]


# ---- what a number held elsewhere answers ----


@pytest.fixture
async def tree(api: Api) -> Tree:
    tree = await make_tree(api)
    await allow(api, tree.p1)
    return tree


async def test_a_number_held_elsewhere_answers_as_one_held_inside(api: Api, tree: Tree) -> None:
    own = await add(api, [tree.inside], tree.p1_admin)
    [expected] = own["userErrors"]
    assert expected["code"] == "ALREADY_EXISTS"
    expected_text = masked(str(expected), tree.inside)
    for state, number in tree.theirs.items():
        [answer] = (await add(api, [number], tree.p1_admin))["userErrors"]
        assert masked(str(answer), number) == expected_text, state
        assert "Other" not in answer["message"]
        assert state.upper() not in answer["message"]
    own_row = (await api.upload_csv(csv(tree.inside), tree.p1_admin, dry_run=True)).json()
    for state, number in tree.theirs.items():
        report = (await api.upload_csv(csv(number), tree.p1_admin, dry_run=True)).json()
        assert masked(str(report), number) == masked(str(own_row), tree.inside), state


async def test_a_range_row_says_no_more_of_numbers_held_elsewhere_than_one_row_does(
    api: Api, tree: Tree
) -> None:
    world = tree.world
    await world.add_named([f"+65630000{i:02d}" for i in (3, 5, 8)], tree.p2)
    await world.add_named(["+6563000050", "+6563000051"], tree.c1)
    response = await api.upload_csv(
        "number,vendor,country,sku\n+6563000000-+6563000019,V,SG,S\n"
        "+6563000050-+6563000059,V,SG,S\n",
        tree.p1_admin,
        dry_run=True,
    )
    reasons = [bad["reason"] for bad in response.json()["bad_rows"]]
    # Elsewhere: the first one only, as a row of that number alone would say; no count.
    assert reasons[0] == "+6563000003 is already in the inventory"
    # Inside its own subtree the caller may hear how many.
    assert reasons[1] == "+6563000050 and 1 more numbers of the range are already in the inventory"


# ---- counted, and limited ----


LIMIT = 3


@pytest.fixture
async def limited(
    db: Database, database_url: str, clock: ManualClock, root_token: str
) -> AsyncIterator[Api]:
    from web.app import create_app

    settings = Settings(_env_file=None, database_url=database_url, intake_refusals_per_day=LIMIT)
    async with Api.open(create_app(settings, db=db, clock=clock), root_token, db, clock) as client:
        yield client


async def counted(api: Api) -> list[tuple[str, int]]:
    async with api.db.read() as session:
        rows = await session.execute(sa.select(IntakeRefusal.day, IntakeRefusal.count))
        return [(str(day), count) for day, count in rows]


async def alerts(api: Api) -> list[Notice]:
    async with api.db.read() as session:
        query = sa.select(Notice).where(Notice.kind == NoticeKind.INTAKE_LIMIT_REACHED)
        return list((await session.scalars(query)).all())


async def test_answers_about_numbers_held_elsewhere_are_limited_per_token_and_day(
    limited: Api,
) -> None:
    api = limited
    await _support(api, "noc@provider.test")
    tree = await make_tree(api)
    await allow(api, tree.p1)
    theirs = list(tree.theirs.values())
    # Inside its own subtree: not counted.
    await add(api, [tree.inside], tree.p1_admin)
    assert await counted(api) == []
    # Two answers by addNumbers, one by a dry run: the limit, not past it.
    codes = [e["code"] for e in (await add(api, theirs[:2], tree.p1_admin))["userErrors"]]
    assert codes == ["ALREADY_EXISTS"] * 2
    report = (await api.upload_csv(csv(theirs[2]), tree.p1_admin, dry_run=True)).json()
    assert report["bad_row_count"] == 1
    assert await counted(api) == [("2026-03-02", 3)]
    assert (await add(api, [FRESH], tree.p1_admin))["userErrors"] == []
    assert await alerts(api) == []

    # One more would be past it: refused whole, without the answer; then all intake is.
    before = await snapshot(api.db, but=("intake_refusals", "notices"))
    refused = await add(api, [theirs[3], "+6562000002"], tree.p1_admin)
    assert [(e["code"], e["number"]) for e in refused["userErrors"]] == [("RATE_LIMITED", None)]
    assert theirs[3] not in str(refused)
    refused = await add(api, ["+6562000003"], tree.p1_admin)
    assert [e["code"] for e in refused["userErrors"]] == ["RATE_LIMITED"]
    for dry_run in (True, False):
        response = await api.upload_csv(csv("+6562000004"), tree.p1_admin, dry_run=dry_run)
        assert response.status_code == 429, response.text
        assert [e["code"] for e in response.json()["errors"]] == ["RATE_LIMITED"]
    assert await snapshot(api.db, but=("intake_refusals", "notices")) == before

    # The provider's support hears of it once for the token and day.
    [alert] = await alerts(api)
    assert alert.number_id is None
    assert alert.token_id is not None
    # Other tokens, and the provider's, are not held back.
    other = await api.token_for(tree.p1, Role.ADMIN, "p1 second desk")
    assert (await add(api, ["+6562000005"], other))["userErrors"] == []
    assert (await add(api, ["+6562000006"], api.token))["userErrors"] == []

    # The next UTC day, the token may add again.
    assert isinstance(api.clock, ManualClock)
    api.clock.advance(timedelta(days=1))
    assert (await add(api, ["+6562000007"], tree.p1_admin))["userErrors"] == []
    assert len(await alerts(api)) == 1


async def test_an_import_stops_answering_at_the_limit(
    limited: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = limited
    # Chunks of 5 numbers: the fresh ones fill two before the numbers held elsewhere come.
    monkeypatch.setattr(imports, "CHUNK", 5)
    tree = await make_tree(api)
    await allow(api, tree.p1)
    theirs = list(tree.theirs.values())
    fresh = [f"+656200{i:04d}" for i in range(10)]
    before = await snapshot(api.db, but=("intake_refusals", "notices"))
    response = await api.upload_csv(csv(*fresh, *theirs), tree.p1_admin)
    assert response.status_code == 429, response.text
    assert not any(number in response.text for number in theirs)
    assert await snapshot(api.db, but=("intake_refusals", "notices")) == before
    assert await counted(api) == [("2026-03-02", len(theirs))]
    # Partial: the chunks written before stay, and the answer says how many.
    assert isinstance(api.clock, ManualClock)
    api.clock.advance(timedelta(days=1))
    response = await api.upload_csv(csv(*fresh, *theirs), tree.p1_admin, partial=True)
    assert response.status_code == 429
    [error] = response.json()["errors"]
    assert re.search(r"\b10 numbers\b", error["message"]), error


async def _support(api: Api, address: str) -> str:
    async with api.db.write() as session:
        root = await session.get(Organization, (await api.root()).id)
        assert root is not None
        root.support_email = address
    return address


async def test_the_cli_brings_numbers_only_where_the_api_would_and_is_not_counted(
    api: Api, tree: Tree
) -> None:
    """`numbra import --org` acts as an ADMIN of the organization, with no token: the
    operator on its own machine, who can read the database anyway."""

    def cli(org: Organization) -> Caller:
        viewer = Viewer(NO_TOKEN, "numbra import", Role.ADMIN, org.id, org.path)
        return Caller(viewer, api.clock, Policy(intake_refusals_per_day=1))

    with pytest.raises(DomainError) as refused:
        await imports.import_csv(api.db, cli(tree.c1), io.StringIO(csv(FRESH)))
    assert [p.code for p in refused.value.problems] == [ErrorCode.FORBIDDEN]
    theirs = list(tree.theirs.values())
    report = await imports.import_csv(api.db, cli(tree.p1), io.StringIO(csv(*theirs)), dry_run=True)
    assert report.bad_row_count == len(theirs)
    assert await counted(api) == []
