"""Blocks, registration, features, capacity, quick filters and allowedActions, through the
API on both databases (DESIGN.md, "Lifecycle, version 2" and "Quick filters")."""

from datetime import timedelta
from typing import Any
from uuid import uuid4

from domain.clock import ManualClock
from domain.notices import NoticeRules
from domain.sweep import sweep
from models import OrganizationKind, Role
from models.database import Database
from tests.support.api import Api, gid

PAYLOAD = "numbers { e164 state } userErrors { code field number message }"
NUMBER = """e164 state subscriptionUuid capacity
    block { reason blockedAt until remark }
    registration { status identityRef updatedAt remark }
    features { kind status updatedAt remark }
    billing { paidUntil renews }
    allowedActions"""
ADD = f"""mutation($numbers: [String!]!, $capacity: Int) {{
  addNumbers(input: {{numbers: $numbers, vendor: "V", country: "SG", sku: "s",
                      capacity: $capacity}}) {{ {PAYLOAD} }}
}}"""
ASSIGN = f"""mutation($numbers: [String!]!, $sub: UUID!, $billing: BillingTermInput) {{
  assignNumbers(input: {{numbers: $numbers, subscriptionUuid: $sub, billing: $billing}}) {{
    {PAYLOAD}
  }}
}}"""
BLOCK = f"""mutation($numbers: [String!]!, $reason: BlockReason!, $until: DateTime) {{
  blockNumbers(input: {{numbers: $numbers, reason: $reason, until: $until, remark: "unpaid"}}) {{
    {PAYLOAD}
  }}
}}"""
UNBLOCK = f"""mutation($numbers: [String!]!) {{
  unblockNumbers(input: {{numbers: $numbers}}) {{ {PAYLOAD} }}
}}"""
REGISTER = f"""mutation($numbers: [String!]!, $status: RegistrationStatus!, $ref: String) {{
  setRegistration(input: {{numbers: $numbers, status: $status, identityRef: $ref}}) {{
    {PAYLOAD}
  }}
}}"""
FEATURE = f"""mutation($numbers: [String!]!, $kind: FeatureKind!, $status: FeatureStatus!) {{
  setFeatureStatus(input: {{numbers: $numbers, kind: $kind, status: $status,
                            remark: "by the carrier"}}) {{ {PAYLOAD} }}
}}"""
EDIT = f"""mutation($numbers: [String!]!, $capacity: Int, $routing: String) {{
  editNumbers(input: {{numbers: $numbers, capacity: $capacity, routing: $routing}}) {{
    {PAYLOAD}
  }}
}}"""
ONE = f"query($e164: String!) {{ number(e164: $e164) {{ {NUMBER} }} }}"
HISTORY = """query($e164: String!) { number(e164: $e164) {
  history { edges { node { action fromState toState actor remark } } } } }"""
TABS = "query($filter: NumberFilter) { quickFilterCounts(filter: $filter) { quickFilter count } }"
LIST = "query($filter: NumberFilter) { numbers(filter: $filter, first: 100) { edges { node { e164 } } totalCount } }"  # noqa: E501

NUMBERS = [f"+656100{i:04d}" for i in range(1, 13)]
SUB = str(uuid4())


async def _add(api: Api, numbers: list[str], capacity: int | None = None) -> None:
    added = await api.gql(ADD, {"numbers": numbers, "capacity": capacity})
    assert added["addNumbers"]["userErrors"] == []


async def _assign(api: Api, numbers: list[str], billing: dict[str, Any] | None = None) -> None:
    done = await api.gql(ASSIGN, {"numbers": numbers, "sub": SUB, "billing": billing})
    assert done["assignNumbers"]["userErrors"] == []


async def _number(api: Api, e164: str, token: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = (await api.gql(ONE, {"e164": e164}, token))["number"]
    return found


async def _history(api: Api, e164: str) -> list[dict[str, Any]]:
    edges = (await api.gql(HISTORY, {"e164": e164}))["number"]["history"]["edges"]
    return [edge["node"] for edge in edges]


async def test_block_keeps_the_service_and_unblock_returns_it(api: Api) -> None:
    [a, b] = NUMBERS[:2]
    await _add(api, [a, b])
    await _assign(api, [a, b], {"periodMonths": 1})
    until = (api.clock.now() + timedelta(days=3)).isoformat()
    blocked = await api.gql(BLOCK, {"numbers": [a, b], "reason": "NON_PAYMENT", "until": until})
    assert blocked["blockNumbers"] == {
        "numbers": [{"e164": a, "state": "BLOCKED"}, {"e164": b, "state": "BLOCKED"}],
        "userErrors": [],
    }
    row = await _number(api, a)
    assert row["subscriptionUuid"] == SUB
    assert row["billing"]["renews"] is True
    assert row["block"]["reason"] == "NON_PAYMENT"
    assert row["block"]["remark"] == "unpaid"
    assert row["block"]["until"] is not None
    assert "UNBLOCK" in row["allowedActions"]
    assert "BLOCK" not in row["allowedActions"]
    assert (await _history(api, a))[0] == {
        "action": "BLOCKED",
        "fromState": "ASSIGNED",
        "toState": "BLOCKED",
        "actor": (await _history(api, a))[0]["actor"],
        "remark": "unpaid",
    }

    unblocked = await api.gql(UNBLOCK, {"numbers": [a]})
    assert unblocked["unblockNumbers"]["numbers"] == [{"e164": a, "state": "ASSIGNED"}]
    row = await _number(api, a)
    assert row["block"] is None
    assert row["subscriptionUuid"] == SUB
    assert row["billing"]
    assert (await _history(api, a))[0]["action"] == "UNBLOCKED"


async def test_every_problem_is_reported_and_nothing_is_blocked(api: Api) -> None:
    [assigned, available] = NUMBERS[:2]
    await _add(api, [assigned, available])
    await _assign(api, [assigned])
    past = (api.clock.now() - timedelta(days=1)).isoformat()
    answer = await api.gql(
        BLOCK,
        {"numbers": [assigned, available, "+6569999999", "nonsense"], "reason": "FRAUD",
         "until": past},
    )  # fmt: skip
    errors = answer["blockNumbers"]["userErrors"]
    assert answer["blockNumbers"]["numbers"] == []
    assert {(e["code"], tuple(e["field"]), e["number"]) for e in errors} == {
        ("VALIDATION", ("input", "until"), None),
        ("INVALID_TRANSITION", ("input", "numbers", "1"), available),
        ("NOT_FOUND", ("input", "numbers", "2"), "+6569999999"),
        ("VALIDATION", ("input", "numbers", "3"), "nonsense"),
    }
    assert (await _number(api, assigned))["state"] == "ASSIGNED"
    again = await api.gql(UNBLOCK, {"numbers": [assigned]})
    assert [e["code"] for e in again["unblockNumbers"]["userErrors"]] == ["INVALID_TRANSITION"]


async def test_only_an_admin_blocks(api: Api) -> None:
    [a] = NUMBERS[:1]
    await _add(api, [a])
    await _assign(api, [a])
    operator = await api.token_for(await api.root(), Role.OPERATOR)
    answer = await api.gql(BLOCK, {"numbers": [a], "reason": "OTHER"}, token=operator)
    assert [e["code"] for e in answer["blockNumbers"]["userErrors"]] == ["FORBIDDEN"]
    assert "BLOCK" not in (await _number(api, a, operator))["allowedActions"]


async def test_the_sweep_unblocks_at_the_end_of_the_block(api: Api, db: Database) -> None:
    [a, b] = NUMBERS[:2]
    await _add(api, [a, b])
    await _assign(api, [a, b])
    clock = api.clock
    assert isinstance(clock, ManualClock)
    until = (clock.now() + timedelta(hours=5)).isoformat()
    await api.gql(BLOCK, {"numbers": [a], "reason": "REGULATORY", "until": until})
    await api.gql(BLOCK, {"numbers": [b], "reason": "FRAUD"})
    clock.advance(timedelta(hours=4))
    await sweep(db, clock, NoticeRules())
    assert (await _number(api, a))["state"] == "BLOCKED"
    clock.advance(timedelta(hours=1))
    await sweep(db, clock, NoticeRules())
    await sweep(db, clock, NoticeRules())
    assert (await _number(api, a))["state"] == "ASSIGNED"
    assert (await _number(api, b))["state"] == "BLOCKED"  # no end: until someone unblocks
    events = await _history(api, a)
    assert [e["action"] for e in events].count("UNBLOCKED") == 1
    assert events[0] == {
        "action": "UNBLOCKED",
        "fromState": "BLOCKED",
        "toState": "ASSIGNED",
        "actor": "system",
        "remark": "the block ended",
    }


async def test_subscription_events_swaps_and_terms_accept_blocked_numbers(
    api: Api, db: Database
) -> None:
    [expiring, swapped, new, termed] = NUMBERS[:4]
    await _add(api, [expiring, swapped, new, termed])
    await _assign(api, [expiring])
    await api.gql(BLOCK, {"numbers": [expiring], "reason": "NON_PAYMENT"})
    expired = await api.gql(
        f"mutation($s: UUID!) {{ subscriptionExpired(input: {{subscriptionUuid: $s}}) "
        f"{{ {PAYLOAD} }} }}",
        {"s": SUB},
    )
    assert expired["subscriptionExpired"]["numbers"] == [{"e164": expiring, "state": "RESERVED"}]
    assert (await _number(api, expiring))["block"] is None

    other = str(uuid4())
    await api.gql(ASSIGN, {"numbers": [swapped], "sub": other})
    await api.gql(BLOCK, {"numbers": [swapped], "reason": "FRAUD"})
    swap = await api.gql(
        f"""mutation($s: UUID!, $old: String!, $new: String!) {{
          swapNumber(input: {{subscriptionUuid: $s, oldNumber: $old, newNumber: $new}}) {{
            {PAYLOAD} }} }}""",
        {"s": other, "old": swapped, "new": new},
    )
    assert swap["swapNumber"]["userErrors"] == []
    assert (await _number(api, swapped))["state"] == "RESERVED"
    assert (await _number(api, new))["state"] == "ASSIGNED"

    # A blocked term is cancelled, restored, renewed and given cycles; it ends blocked.
    third = str(uuid4())
    await api.gql(ASSIGN, {"numbers": [termed], "sub": third, "billing": {"periodMonths": 1}})
    await api.gql(BLOCK, {"numbers": [termed], "reason": "OTHER"})
    for mutation in (
        "cancelNumbers(input: {numbers: $n})",
        "restoreNumbers(input: {numbers: $n})",
        "renewNumbers(input: {numbers: $n, periods: 1})",
        "setBillingCycles(input: {numbers: $n, cycles: 0})",
    ):
        answer = await api.gql(f"mutation($n: [String!]!) {{ {mutation} {{ {PAYLOAD} }} }}",
                               {"n": [termed]})  # fmt: skip
        [payload] = answer.values()
        assert payload == {"numbers": [{"e164": termed, "state": "BLOCKED"}], "userErrors": []}
    row = await _number(api, termed)
    assert row["billing"]["renews"] is False
    clock = api.clock
    assert isinstance(clock, ManualClock)
    clock.advance(timedelta(days=70))
    await sweep(db, clock, NoticeRules())
    row = await _number(api, termed)
    assert row["state"] in ("RESERVED", "AVAILABLE", "LOCKED")
    assert row["block"] is None
    assert "SERVICE_ENDED" in [e["action"] for e in await _history(api, termed)]


async def test_registration_features_and_capacity(api: Api) -> None:
    [a, b] = NUMBERS[:2]
    await _add(api, [a, b], capacity=10)
    row = await _number(api, a)
    assert row["capacity"] == 10
    assert row["registration"] == {
        "status": "NOT_REQUIRED",
        "identityRef": None,
        "updatedAt": None,
        "remark": None,
    }
    assert row["features"] == []

    answer = await api.gql(REGISTER, {"numbers": [a], "status": "PENDING", "ref": "ID-42"})
    assert answer["setRegistration"]["userErrors"] == []
    await api.gql(FEATURE, {"numbers": [a, b], "kind": "CNAM", "status": "IN_PROCESS"})
    await api.gql(FEATURE, {"numbers": [a], "kind": "EMERGENCY", "status": "ACTIVE"})
    row = await _number(api, a)
    assert row["registration"]["status"] == "PENDING"
    assert row["registration"]["identityRef"] == "ID-42"
    assert row["registration"]["updatedAt"] is not None
    assert [(f["kind"], f["status"], f["remark"]) for f in row["features"]] == [
        ("EMERGENCY", "ACTIVE", "by the carrier"),
        ("CNAM", "IN_PROCESS", "by the carrier"),
    ]
    actions = [e["action"] for e in await _history(api, a)]
    assert actions[:3] == ["FEATURE_CHANGED", "FEATURE_CHANGED", "REGISTRATION_CHANGED"]

    found = await api.gql(LIST, {"filter": {"registrationStatuses": ["PENDING"]}})
    assert [e["node"]["e164"] for e in found["numbers"]["edges"]] == [a]

    edited = await api.gql(EDIT, {"numbers": [a], "capacity": 10_000})
    assert [(e["code"], e["field"]) for e in edited["editNumbers"]["userErrors"]] == [
        ("VALIDATION", ["input", "capacity"])
    ]
    await api.gql(EDIT, {"numbers": [a], "capacity": None})
    assert (await _number(api, a))["capacity"] is None
    assert (await _number(api, b))["capacity"] == 10


async def test_quick_filters_count_and_select_each_tab(api: Api) -> None:
    active, unrouted, awaiting, expiring, blocked, held, free, gone = NUMBERS[:8]
    await _add(api, NUMBERS[:8])
    await api.gql(EDIT, {"numbers": [active, awaiting, expiring, blocked], "routing": "sip:x"})
    await _assign(api, [active, unrouted, awaiting, blocked])
    await api.gql(
        ASSIGN, {"numbers": [expiring], "sub": str(uuid4()),
                 "billing": {"periodMonths": 1, "billingCycles": 0}},
    )  # fmt: skip
    await api.gql(REGISTER, {"numbers": [awaiting, blocked], "status": "REJECTED"})
    await api.gql(BLOCK, {"numbers": [blocked], "reason": "FRAUD"})
    expiry = f"mutation($s: UUID!) {{ subscriptionTerminated(input: {{subscriptionUuid: $s}}) {{ {PAYLOAD} }} }}"  # noqa: E501
    other = str(uuid4())
    await api.gql(ASSIGN, {"numbers": [held], "sub": other})
    await api.gql(expiry, {"s": other})
    await api.gql(
        f"""mutation($n: [String!]!) {{ deleteNumbers(input: {{numbers: $n, reason: FAULTY}})
        {{ {PAYLOAD} }} }}""",
        {"n": [gone]},
    )
    expected = {
        "ALL": 7,
        "ACTIVE": 2,  # active, expiring (awaiting is routed but REJECTED)
        "NOT_CONFIGURED": 1,  # unrouted
        "AWAITING_REGISTRATION": 2,  # awaiting, blocked
        "EXPIRING_SOON": 1,  # expiring (0 cycles)
        "TERMINATED": 1,  # held
        "PORTING": 0,
        "BLOCKED": 1,
    }
    members = {
        "ACTIVE": [active, expiring],
        "NOT_CONFIGURED": [unrouted],
        "AWAITING_REGISTRATION": [awaiting, blocked],
        "EXPIRING_SOON": [expiring],
        "TERMINATED": [held],
        "BLOCKED": [blocked],
        "ALL": sorted({*NUMBERS[:8]} - {gone}),
    }
    root = await api.root()
    for pools in ({}, {"organizationId": gid(root), "includeDescendants": True}):
        kept = (await api.gql(TABS, {"filter": pools}))["quickFilterCounts"]
        assert {row["quickFilter"]: row["count"] for row in kept} == expected
        # Any other filter counts over the numbers: the same answer.
        scanned = await api.gql(TABS, {"filter": pools | {"country": "SG"}})
        assert scanned["quickFilterCounts"] == kept
        # Its own quickFilter is ignored.
        ignored = await api.gql(TABS, {"filter": pools | {"quickFilter": "BLOCKED"}})
        assert ignored["quickFilterCounts"] == kept
    for tab, numbers in members.items():
        found = await api.gql(LIST, {"filter": {"quickFilter": tab}})
        assert [e["node"]["e164"] for e in found["numbers"]["edges"]] == numbers, tab
        assert found["numbers"]["totalCount"] == expected[tab]
    assert free not in members["ACTIVE"]

    renewing = await api.gql(LIST, {"filter": {"renews": False}})
    assert [e["node"]["e164"] for e in renewing["numbers"]["edges"]] == [expiring]

    # A customer sees only its own subtree's tabs.
    customer = await api.org("Cust", OrganizationKind.CUSTOMER, root)
    token = await api.token_for(customer, Role.VIEWER)
    theirs = (await api.gql(TABS, {}, token=token))["quickFilterCounts"]
    assert all(row["count"] == 0 for row in theirs)


async def test_allowed_actions_follow_the_state_and_the_role(api: Api) -> None:
    [a, b] = NUMBERS[:2]
    await _add(api, [a, b])
    await _assign(api, [b], {"periodMonths": 1})
    admin_available = set((await _number(api, a))["allowedActions"])
    assert admin_available == {
        "RESERVE", "ASSIGN", "LOCK", "DELETE", "EDIT", "ALLOCATE", "WITHDRAW",
    }  # fmt: skip
    assert set((await _number(api, b))["allowedActions"]) == {
        "EDIT", "CANCEL", "RENEW", "SET_BILLING_CYCLES", "BLOCK",
    }  # fmt: skip
    root = await api.root()
    operator = await api.token_for(root, Role.OPERATOR)
    assert set((await _number(api, a, operator))["allowedActions"]) == {
        "RESERVE", "ASSIGN", "EDIT",
    }  # fmt: skip
    viewer = await api.token_for(root, Role.VIEWER)
    assert (await _number(api, b, viewer))["allowedActions"] == []
