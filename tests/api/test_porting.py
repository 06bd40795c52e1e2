"""Port orders through the API (contract, version 2, "porting"): ADMIN only, subtree
scoped, every input checked before anything moves, orders listed and paged."""

from datetime import timedelta
from typing import Any

from domain.clock import ManualClock
from models import Organization, OrganizationKind, Role
from tests.support.api import Api, gid
from tests.support.databases import StatementCounter
from tests.support.world import allow_intake

ORDER = """id direction status carrier reference focDate remark organization { name }
numbers(first: 2) { totalCount pageInfo { hasNextPage endCursor }
  edges { node { e164 state portedIn portOrder { id status } } } }"""
PAYLOAD = f"{{ portOrder {{ {ORDER} }} userErrors {{ code message field number }} }}"
ORDERS = f"""
query($filter: PortOrderFilter, $first: Int, $after: String) {{
  portOrders(filter: $filter, first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }} edges {{ cursor node {{ {ORDER} }} }}
  }}
}}"""
ADD = """mutation($input: AddNumbersInput!) {
  addNumbers(input: $input) { userErrors { code } }
}"""
COUNTS = "{ numberCounts { state count } }"
NUMBER = "query($e164: String!) { number(e164: $e164) { state portOrder { id status } } }"


async def mutate(api: Api, name: str, values: dict[str, Any], token: str | None = None) -> Any:
    kind = {"createPortIn": "CreatePortIn", "createPortOut": "CreatePortOut"}.get(name)
    kind = kind or ("ConfirmPortOrder" if name == "confirmPortOrder" else "PortOrderAction")
    query = f"mutation($input: {kind}Input!) {{ {name}(input: $input) {PAYLOAD} }}"
    return (await api.gql(query, {"input": values}, token))[name]


def port_in(numbers: list[str], **more: Any) -> dict[str, Any]:
    return {
        "numbers": numbers,
        "carrier": "Losing Co",
        "vendor": "V",
        "country": "SG",
        "sku": "DID",
        "reference": "LOA-1",
        **more,
    }


async def add(api: Api, numbers: list[str], token: str | None = None, **more: Any) -> None:
    values = {"numbers": numbers, "vendor": "V", "country": "SG", "sku": "DID", **more}
    assert (await api.gql(ADD, {"input": values}, token))["addNumbers"]["userErrors"] == []


async def test_a_port_in_goes_from_draft_to_completed(api: Api, clock: ManualClock) -> None:
    numbers = ["+6561000001", "+6561000002", "+6561000003"]
    created = await mutate(api, "createPortIn", port_in(numbers))
    assert created["userErrors"] == []
    order = created["portOrder"]
    assert (order["direction"], order["status"], order["carrier"]) == ("IN", "DRAFT", "Losing Co")
    page = order["numbers"]
    assert page["totalCount"] == 3
    assert page["pageInfo"]["hasNextPage"]
    assert [e["node"]["state"] for e in page["edges"]] == ["PORTING_IN", "PORTING_IN"]
    assert page["edges"][0]["node"]["portOrder"] == {"id": order["id"], "status": "DRAFT"}
    counts = {c["state"]: c["count"] for c in (await api.gql(COUNTS))["numberCounts"]}
    assert counts["PORTING_IN"] == 3

    submitted = await mutate(api, "submitPortOrder", {"id": order["id"]})
    assert submitted["portOrder"]["status"] == "SUBMITTED"
    foc = (clock.now() + timedelta(days=3)).isoformat()
    confirmed = await mutate(api, "confirmPortOrder", {"id": order["id"], "focDate": foc})
    assert confirmed["portOrder"]["status"] == "FOC_CONFIRMED"
    assert confirmed["portOrder"]["focDate"] is not None
    done = await mutate(api, "completePortOrder", {"id": order["id"], "remark": "moved"})
    assert (done["portOrder"]["status"], done["portOrder"]["remark"]) == ("COMPLETED", "moved")
    answer = await api.gql(NUMBER, {"e164": numbers[0]})
    assert answer["number"] == {"state": "AVAILABLE", "portOrder": None}
    counts = {c["state"]: c["count"] for c in (await api.gql(COUNTS))["numberCounts"]}
    assert (counts["PORTING_IN"], counts["AVAILABLE"]) == (0, 3)


async def test_every_input_is_checked_before_anything_moves(api: Api) -> None:
    await add(api, ["+6561000001"])
    answer = await mutate(
        api,
        "createPortIn",
        port_in(["+6561000001", "nonsense", "+6561000002"], carrier=" ", country="SG"),
    )
    assert answer["portOrder"] is None
    found = {(e["code"], tuple(e["field"] or ()), e["number"]) for e in answer["userErrors"]}
    assert found == {
        ("VALIDATION", ("input", "carrier"), None),
        ("VALIDATION", ("input", "numbers", "1"), "nonsense"),
        ("ALREADY_EXISTS", ("input", "numbers", "0"), "+6561000001"),
    }
    assert (await api.gql(NUMBER, {"e164": "+6561000002"}))["number"] is None
    out = await mutate(
        api, "createPortOut", {"numbers": ["+6561000001", "+6561999999"], "carrier": "Gaining"}
    )
    assert [(e["code"], e["number"]) for e in out["userErrors"]] == [("NOT_FOUND", "+6561999999")]
    assert (await api.gql(NUMBER, {"e164": "+6561000001"}))["number"]["state"] == "AVAILABLE"


async def test_only_admins_act_on_orders(api: Api) -> None:
    root = await api.root()
    await add(api, ["+6561000001"])
    created = await mutate(api, "createPortOut", {"numbers": ["+6561000001"], "carrier": "G"})
    order = created["portOrder"]["id"]
    for role in (Role.VIEWER, Role.OPERATOR):
        token = await api.token_for(root, role)
        for name, values in (
            ("createPortOut", {"numbers": ["+6561000001"], "carrier": "G"}),
            ("createPortIn", port_in(["+6561000009"])),
            ("cancelPortOrder", {"id": order}),
        ):
            answer = await mutate(api, name, values, token)
            assert [e["code"] for e in answer["userErrors"]] == ["FORBIDDEN"], (role, name)
    assert (await api.gql(NUMBER, {"e164": "+6561000001"}))["number"]["state"] == "PORTING_OUT"


async def _siblings(api: Api) -> tuple[Organization, str, Organization, str]:
    root = await api.root()
    c1 = await api.org("C1", OrganizationKind.CUSTOMER, root)
    c2 = await api.org("C2", OrganizationKind.CUSTOMER, root)
    await allow_intake(api.db, c1, c2)
    return c1, await api.token_for(c1), c2, await api.token_for(c2)


async def test_another_subtree_s_order_is_not_found_as_a_made_up_one_is(api: Api) -> None:
    c1, t1, _c2, t2 = await _siblings(api)
    created = await mutate(api, "createPortIn", port_in(["+6561000001"]), t1)
    order = created["portOrder"]["id"]
    made_up = "UG9ydE9yZGVyOjAwMDAwMDAwLTAwMDAtNDAwMC04MDAwLTAwMDAwMDAwMDAwOQ"
    answers = [
        await mutate(api, "submitPortOrder", {"id": given}, t2) for given in (order, made_up)
    ]
    assert answers[0] == answers[1]
    assert [e["code"] for e in answers[0]["userErrors"]] == ["NOT_FOUND"]
    seen = await api.gql(ORDERS, {}, t2)
    assert seen["portOrders"]["totalCount"] == 0
    node = f'{{ node(id: "{order}") {{ id }} }}'
    assert (await api.gql(node, {}, t2))["node"] is None
    assert (await api.gql(node, {}, t1))["node"] == {"id": order}
    # The parent (the provider) sees it, and may filter by the pool.
    listed = await api.gql(ORDERS, {"filter": {"organizationId": gid(c1)}})
    assert [e["node"]["id"] for e in listed["portOrders"]["edges"]] == [order]


async def test_orders_are_listed_by_direction_and_status_and_paged(api: Api) -> None:
    await add(api, ["+6561000001", "+6561000002"])
    ids = []
    for index in range(3):
        created = await mutate(api, "createPortIn", port_in([f"+656100010{index}"]))
        ids.append(created["portOrder"]["id"])
    out = await mutate(api, "createPortOut", {"numbers": ["+6561000001"], "carrier": "G"})
    await mutate(api, "cancelPortOrder", {"id": ids[0]})
    listed = await api.gql(ORDERS, {"filter": {"direction": "IN"}, "first": 2})
    connection = listed["portOrders"]
    assert connection["totalCount"] == 3
    assert [e["node"]["id"] for e in connection["edges"]] == [ids[2], ids[1]]
    after = connection["pageInfo"]["endCursor"]
    rest = await api.gql(ORDERS, {"filter": {"direction": "IN"}, "first": 2, "after": after})
    assert [e["node"]["id"] for e in rest["portOrders"]["edges"]] == [ids[0]]
    assert not rest["portOrders"]["pageInfo"]["hasNextPage"]
    open_ones = await api.gql(ORDERS, {"filter": {"statuses": ["DRAFT"]}})
    assert {e["node"]["id"] for e in open_ones["portOrders"]["edges"]} == {
        ids[1],
        ids[2],
        out["portOrder"]["id"],
    }


async def test_a_cancelled_port_out_puts_a_reserved_number_back(api: Api) -> None:
    await add(api, ["+6561000001"])
    holder = gid(await api.root())
    reserve = """mutation($holder: ID!) { reserveNumbers(input: {numbers: ["+6561000001"],
      tag: "vip", reservedForId: $holder}) {
      numbers { reservation { tag expiresAt } } userErrors { code } } }"""
    answer = await api.gql(reserve, {"holder": holder})
    reserved = answer["reserveNumbers"]["numbers"][0]["reservation"]
    out = await mutate(api, "createPortOut", {"numbers": ["+6561000001"], "carrier": "G"})
    assert out["portOrder"]["numbers"]["edges"][0]["node"]["state"] == "PORTING_OUT"
    order = out["portOrder"]["id"]
    refused = await mutate(api, "rejectPortOrder", {"id": order})
    assert [e["code"] for e in refused["userErrors"]] == ["INVALID_TRANSITION"]
    await mutate(api, "cancelPortOrder", {"id": order})
    query = '{ number(e164: "+6561000001") { state reservation { tag expiresAt } } }'
    assert (await api.gql(query))["number"] == {"state": "RESERVED", "reservation": reserved}


async def test_port_orders_of_a_page_of_numbers_load_in_one_statement(
    api: Api, statements: StatementCounter
) -> None:
    await mutate(api, "createPortIn", port_in([f"+65610001{i:02d}" for i in range(20)]))
    query = "query($n: Int) { numbers(first: $n) { edges { node { portOrder { id } } } } }"
    await api.gql(query, {"n": 1})
    counted = []
    for size in (2, 20):
        statements.reset()
        answer = await api.gql(query, {"n": size})
        assert len(answer["numbers"]["edges"]) == size
        counted.append(statements.count)
    assert counted[0] == counted[1]


async def test_an_import_cannot_put_numbers_in_a_porting_state(api: Api) -> None:
    text = "number,vendor,country,sku,state\n+6561000001,V,SG,DID,PORTING_IN\n"
    text += "+6561000002,V,SG,DID,porting_out\n"
    response = await api.upload_csv(text)
    assert response.status_code == 422, response.text
    reasons = [bad["reason"] for bad in response.json()["bad_rows"]]
    assert len(reasons) == 2
    assert all("state must be one of" in reason for reason in reasons)
    assert (await api.gql(NUMBER, {"e164": "+6561000001"}))["number"] is None


TABS = "query($filter: NumberFilter) { quickFilterCounts(filter: $filter) { quickFilter count } }"
PORTING_TAB = """query {
  numbers(filter: {quickFilter: PORTING}) { totalCount edges { node { e164 state } } }
}"""


async def test_the_porting_tab_counts_and_lists_numbers_in_open_orders(api: Api) -> None:
    await add(api, ["+6561000201", "+6561000202"])
    created = await mutate(api, "createPortIn", port_in(["+6561000101", "+6561000102"]))
    assert created["userErrors"] == []
    leaving = await mutate(api, "createPortOut", {"numbers": ["+6561000201"], "carrier": "Gain"})
    assert leaving["userErrors"] == []

    async def tab(filter_: dict[str, Any]) -> int:
        rows = (await api.gql(TABS, {"filter": filter_}))["quickFilterCounts"]
        count: int = next(row["count"] for row in rows if row["quickFilter"] == "PORTING")
        return count

    # The per-pool counters and a count over the numbers agree.
    assert await tab({}) == await tab({"country": "SG"}) == 3
    listed = (await api.gql(PORTING_TAB))["numbers"]
    assert listed["totalCount"] == 3
    assert {(e["node"]["e164"], e["node"]["state"]) for e in listed["edges"]} == {
        ("+6561000101", "PORTING_IN"),
        ("+6561000102", "PORTING_IN"),
        ("+6561000201", "PORTING_OUT"),
    }

    cancelled = await mutate(api, "cancelPortOrder", {"id": leaving["portOrder"]["id"]})
    assert cancelled["userErrors"] == []
    assert await tab({}) == await tab({"country": "SG"}) == 2
