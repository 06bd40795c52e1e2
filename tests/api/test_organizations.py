"""The organization tree through the API: create, edit, list, nest, and scoping."""

import pytest

from models import OrganizationKind, Role
from tests.support.api import Api, gid
from tests.support.databases import StatementCounter

CREATE = """
mutation($input: CreateOrganizationInput!) {
  createOrganization(input: $input) {
    organization { id name kind depth billingEmail parent { name } ancestors { name } }
    userErrors { code message field number }
  }
}"""

UPDATE = """
mutation($input: UpdateOrganizationInput!) {
  updateOrganization(input: $input) {
    organization { id name billingEmail ownerEmail supportEmail }
    userErrors { code field }
  }
}"""

TREE = """
query($first: Int, $after: String) {
  organizations(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { cursor node { name depth } }
  }
}"""


async def test_admin_builds_a_tree_of_any_depth(api: Api) -> None:
    parent_id = None
    kinds = ["PARTNER", "PARTNER", "CUSTOMER", "DEPARTMENT", "DEPARTMENT", "DEPARTMENT"]
    for depth, kind in enumerate(kinds, start=1):
        payload = (
            await api.gql(
                CREATE,
                {"input": {"name": f"level {depth}", "kind": kind, "parentId": parent_id}},
            )
        )["createOrganization"]
        assert payload["userErrors"] == []
        org = payload["organization"]
        assert (org["name"], org["kind"], org["depth"]) == (f"level {depth}", kind, depth)
        assert [a["name"] for a in org["ancestors"]] == ["Provider"] + [
            f"level {d}" for d in range(1, depth)
        ]
        parent_id = org["id"]

    data = await api.gql(TREE, {"first": 100})
    names = [e["node"]["name"] for e in data["organizations"]["edges"]]
    assert names == ["Provider"] + [f"level {d}" for d in range(1, 7)]
    assert data["organizations"]["totalCount"] == 7


async def test_organizations_are_listed_depth_first_and_paged_by_cursor(api: Api) -> None:
    root = await api.root()
    p1 = await api.org("P1", OrganizationKind.PARTNER, root)
    p2 = await api.org("P2", OrganizationKind.PARTNER, root)
    await api.org("C2a", OrganizationKind.CUSTOMER, p2)
    await api.org("C1a", OrganizationKind.CUSTOMER, p1)
    await api.org("C1b", OrganizationKind.CUSTOMER, p1)

    seen, after, pages = [], None, 0
    while True:
        conn = (await api.gql(TREE, {"first": 2, "after": after}))["organizations"]
        pages += 1
        seen += [e["node"]["name"] for e in conn["edges"]]
        assert conn["pageInfo"]["hasPreviousPage"] == (after is not None)
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert seen == ["Provider", "P1", "C1a", "C1b", "P2", "C2a"]
    assert pages == 3


async def test_create_reports_every_problem_and_creates_nothing(api: Api) -> None:
    payload = (
        await api.gql(
            CREATE,
            {
                "input": {
                    "name": "  ",
                    "kind": "PROVIDER",
                    "billingEmail": "not-an-address",
                    "parentId": "bm90IGFuIGlk",
                }
            },
        )
    )["createOrganization"]
    assert payload["organization"] is None
    found = {(e["code"], tuple(e["field"])) for e in payload["userErrors"]}
    assert found == {
        ("VALIDATION", ("input", "name")),
        ("VALIDATION", ("input", "billingEmail")),
        # Not an id at all (base64 of "not an id"): bad input, not "not found".
        ("VALIDATION", ("input", "parentId")),
        ("VALIDATION", ("input", "kind")),
    }
    assert (await api.gql(TREE))["organizations"]["totalCount"] == 1


async def test_a_child_cannot_be_of_a_higher_kind_than_its_parent(api: Api) -> None:
    customer = await api.org("C", OrganizationKind.CUSTOMER, await api.root())
    payload = (
        await api.gql(
            CREATE, {"input": {"name": "P", "kind": "PARTNER", "parentId": gid(customer)}}
        )
    )["createOrganization"]
    assert [e["code"] for e in payload["userErrors"]] == ["VALIDATION"]
    assert "PARTNER cannot sit below a CUSTOMER" in payload["userErrors"][0]["message"]


async def test_update_sets_given_fields_clears_empty_ones_and_keeps_omitted(api: Api) -> None:
    org = await api.org(
        "Acme", OrganizationKind.CUSTOMER, await api.root(), billing_email="b@acme.test"
    )
    payload = (
        await api.gql(
            UPDATE,
            {"input": {"id": gid(org), "ownerEmail": "o@acme.test", "billingEmail": ""}},
        )
    )["updateOrganization"]
    assert payload["userErrors"] == []
    assert payload["organization"] == {
        "id": gid(org),
        "name": "Acme",
        "billingEmail": None,
        "ownerEmail": "o@acme.test",
        "supportEmail": None,
    }


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
async def test_only_admins_change_the_tree(api: Api, role: Role) -> None:
    root = await api.root()
    token = await api.token_for(root, role)
    payload = (await api.gql(CREATE, {"input": {"name": "X", "kind": "PARTNER"}}, token=token))[
        "createOrganization"
    ]
    assert [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"]
    assert (await api.gql(TREE))["organizations"]["totalCount"] == 1


async def test_page_size_over_the_cap_is_a_validation_error(api: Api) -> None:
    errors = await api.errors(TREE, {"first": 10_000})
    assert errors[0]["extensions"]["code"] == "VALIDATION"
    assert "first must be between 0 and" in errors[0]["message"]
    errors = await api.errors(TREE, {"after": "garbage!"})
    assert errors[0]["extensions"]["code"] == "VALIDATION"


# The two shapes an SPA asks for: the tree walked level by level, and the flat list.
NESTED_VIEWS = [
    "{ viewer { organization { name children { name children { name children { name } } } } } }",
    """{
      organizations(first: 500) {
        totalCount
        edges { node { name depth parent { name } ancestors { name } children { name } } }
      }
    }""",
]


async def _add_branch(api: Api, name: str) -> None:
    """A partner with a customer and its department: three organizations."""
    partner = await api.org(name, OrganizationKind.PARTNER, await api.root())
    customer = await api.org(f"{name} customer", OrganizationKind.CUSTOMER, partner)
    await api.org(f"{name} department", OrganizationKind.DEPARTMENT, customer)


async def _statements_per_view(api: Api, statements: StatementCounter) -> list[int]:
    counts = []
    for query in NESTED_VIEWS:
        statements.reset()
        await api.gql(query)
        counts.append(statements.count)
    return counts


@pytest.mark.slow
async def test_nested_views_run_as_many_statements_for_200_organizations_as_for_5(
    api: Api, statements: StatementCounter
) -> None:
    await api.org("lone partner", OrganizationKind.PARTNER, await api.root())
    await _add_branch(api, "first")
    # The token's first request in a minute also records its use: not counted here.
    await api.gql(NESTED_VIEWS[0])
    small = await _statements_per_view(api, statements)

    for n in range(65):
        await _add_branch(api, f"branch {n}")
    large = await _statements_per_view(api, statements)

    data = await api.gql(NESTED_VIEWS[1])
    assert data["organizations"]["totalCount"] == 200
    departments = [e for e in data["organizations"]["edges"] if e["node"]["depth"] == 3]
    assert len(departments) == 66
    assert all(len(e["node"]["ancestors"]) == 3 for e in departments)
    assert large == small
