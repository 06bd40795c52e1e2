"""Numbers through the API, as a partner integration or an SPA sees them.

Adding numbers, every move of the lifecycle, subscription events from billing,
history, all-or-nothing batches, and scoping to the token's subtree.
"""

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from domain import ids
from domain.clock import ManualClock
from models import Organization, OrganizationKind, Role
from settings import Settings
from tests.support.api import Api, gid
from tests.support.mutations import NumberMutations, codes
from tests.support.world import allow_intake

NUMBER = """
fragment N on Number {
  id e164 state country sku vendor capabilities routing golden portedIn visibleToDomain
  tag notes subscriptionUuid ownerUuid deletionReason stateChangedAt
  organization { name }
  series { prefix }
  reservation {
    kind reason tag remark startsAt expiresAt didReservationUuid reservedFor { name }
  }
  lock { remark lockedAt expiresAt }
}
"""
MUTATIONS = NumberMutations(NUMBER)
call, ok, refused = MUTATIONS.call, MUTATIONS.ok, MUTATIONS.refused


GET = NUMBER + "query($e164: String!) { number(e164: $e164) { ...N } }"

NODE = "query($id: ID!) { node(id: $id) { id ... on Number { e164 } } }"

HISTORY = """
query($e164: String!, $first: Int, $after: String) {
  number(e164: $e164) {
    history(first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage endCursor }
      edges { cursor node { at action fromState toState actor remark } }
    }
  }
}"""

CREATE_SERIES = """
mutation($input: CreateSeriesInput!) {
  createSeries(input: $input) { series { prefix } userErrors { code field } }
}"""

ORG_CURSOR = "query { organizations(first: 1) { pageInfo { endCursor } } }"

# Fixed-line numbers of Singapore (6[1-9]xxxxxx).
N1, N2, N3, N4 = "+6561000001", "+6561000002", "+6561000003", "+6561000004"
MISSING = "+6569999999"


async def add(api: Api, *numbers: str, **fields: Any) -> list[dict[str, Any]]:
    """Add Singapore numbers (to the token's own pool unless organizationId says otherwise)."""
    token = fields.pop("token", None)
    base = {"numbers": list(numbers), "vendor": "Singtel", "country": "SG", "sku": "DID-SG"}
    return await ok(api, "addNumbers", base | fields, token)


async def get(api: Api, e164: str, token: str | None = None) -> dict[str, Any] | None:
    number: dict[str, Any] | None = (await api.gql(GET, {"e164": e164}, token=token))["number"]
    return number


async def state_of(api: Api, e164: str) -> str:
    number = await get(api, e164)
    assert number is not None
    state: str = number["state"]
    return state


async def history(api: Api, e164: str, **args: Any) -> dict[str, Any]:
    number = (await api.gql(HISTORY, {"e164": e164, **args}))["number"]
    assert number is not None
    connection: dict[str, Any] = number["history"]
    return connection


def when(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value)


def iso(moment: datetime) -> str:
    return moment.isoformat()


async def tree(api: Api) -> tuple[Organization, Organization, Organization]:
    """A partner and two sibling customers below it."""
    partner = await api.org("Partner", OrganizationKind.PARTNER, await api.root())
    first = await api.org("Customer 1", OrganizationKind.CUSTOMER, partner)
    second = await api.org("Customer 2", OrganizationKind.CUSTOMER, partner)
    return partner, first, second


# ---- addNumbers ----


async def test_add_accepts_any_notation_stores_e164_and_applies_defaults(api: Api) -> None:
    added = await add(api, "+65 6100 0001", "6561000002", "61000003")

    assert [n["e164"] for n in added] == [N1, N2, N3]
    for number in added:
        assert number["state"] == "AVAILABLE"
        assert number["country"] == "SG"
        assert (number["vendor"], number["sku"]) == ("Singtel", "DID-SG")
        assert number["capabilities"] == ["VOICE"]
        assert (number["golden"], number["portedIn"]) == (False, False)
        assert number["organization"] == {"name": "Provider"}
        assert number["reservation"] is None
        assert number["lock"] is None
        assert when(number["stateChangedAt"]) == api.clock.now()
    for notation in ("+65 6100 0003", "6561000003", N3):
        fetched = await get(api, notation)
        assert fetched is not None
        assert fetched["e164"] == N3


async def test_add_puts_numbers_into_the_viewer_s_pool_or_a_child_s(api: Api) -> None:
    partner, customer, _ = await tree(api)

    into_child = await add(api, N1, organizationId=gid(customer))
    assert into_child[0]["organization"] == {"name": "Customer 1"}

    partner_admin = await api.token_for(partner, Role.ADMIN)
    await allow_intake(api.db, partner)
    by_default = await add(api, N2, token=partner_admin)
    assert by_default[0]["organization"] == {"name": "Partner"}


async def test_a_number_joins_the_series_of_its_longest_matching_prefix(api: Api) -> None:
    for name, prefix in (("Singapore", "+65"), ("Singapore 61", "+6561")):
        created = await api.gql(
            CREATE_SERIES, {"input": {"name": name, "prefix": prefix, "country": "SG"}}
        )
        assert created["createSeries"]["userErrors"] == []

    added = await add(api, N1, "+6562000001")

    series = {n["e164"]: n["series"] for n in added}
    assert series == {N1: {"prefix": "+6561"}, "+6562000001": {"prefix": "+65"}}


async def test_add_takes_at_most_50_numbers_a_call(api: Api) -> None:
    numbers = [f"+65610000{i:02d}" for i in range(51)]
    payload = await call(
        api,
        "addNumbers",
        {"numbers": numbers, "vendor": "Singtel", "country": "SG", "sku": "DID-SG"},
    )

    assert payload["numbers"] == []
    assert codes(payload["userErrors"]) == {("LIMIT_EXCEEDED", ("input", "numbers"), None)}
    assert await get(api, numbers[0]) is None
    assert await get(api, numbers[50]) is None


async def test_add_reports_every_bad_number_at_once_and_adds_none(api: Api) -> None:
    await add(api, "+6561000009")
    errors = await refused(
        api,
        "addNumbers",
        {
            "numbers": [N1, "12345", "+442079460000", N2, "6561000002", "+6561000009"],
            "vendor": "Singtel",
            "country": "SG",
            "sku": "DID-SG",
        },
    )

    assert codes(errors) == {
        ("VALIDATION", ("input", "numbers", "1"), "12345"),
        ("VALIDATION", ("input", "numbers", "2"), "+442079460000"),
        ("VALIDATION", ("input", "numbers", "4"), N2),
        ("ALREADY_EXISTS", ("input", "numbers", "5"), "+6561000009"),
    }
    assert len(errors) == 4
    assert await get(api, N1) is None
    assert await get(api, N2) is None


async def test_add_refuses_an_unknown_country(api: Api) -> None:
    errors = await refused(
        api,
        "addNumbers",
        {"numbers": [N1], "vendor": "Singtel", "country": "ZZ", "sku": "DID-SG"},
    )

    assert ("VALIDATION", ("input", "country"), None) in codes(errors)
    assert await get(api, N1) is None


async def test_operators_cannot_add_numbers(api: Api) -> None:
    operator = await api.token_for(await api.root(), Role.OPERATOR)
    errors = await refused(
        api,
        "addNumbers",
        {"numbers": [N1], "vendor": "Singtel", "country": "SG", "sku": "DID-SG"},
        operator,
    )

    assert [e["code"] for e in errors] == ["FORBIDDEN"]
    assert await get(api, N1) is None


# ---- the lifecycle, one move at a time ----


async def test_reserve_holds_numbers_for_an_org_with_a_tag_until_the_given_end(
    api: Api,
) -> None:
    partner, customer, _ = await tree(api)
    await add(api, N1, N2, organizationId=gid(partner))
    now = api.clock.now()
    ends = now + timedelta(days=10)

    reserved = await ok(
        api,
        "reserveNumbers",
        {
            "numbers": [N1, N2],
            "reservedForId": gid(customer),
            "tag": "Alice, sales",
            "remark": "trial",
            "expiresAt": iso(ends),
        },
    )

    assert [n["e164"] for n in reserved] == [N1, N2]
    for number in reserved:
        assert number["state"] == "RESERVED"
        assert when(number["stateChangedAt"]) == now
        reservation = number["reservation"]
        assert (reservation["kind"], reservation["reason"]) == ("FREE", "MANUAL")
        assert (reservation["tag"], reservation["remark"]) == ("Alice, sales", "trial")
        assert reservation["reservedFor"] == {"name": "Customer 1"}
        assert when(reservation["startsAt"]) == now
        assert when(reservation["expiresAt"]) == ends
        assert reservation["didReservationUuid"] is None
    assert await get(api, N2) == reserved[1]


async def test_a_reservation_ends_after_the_full_free_period_by_default(api: Api) -> None:
    await add(api, N1)
    root = await api.root()

    [number] = await ok(api, "reserveNumbers", {"numbers": [N1], "reservedForId": gid(root)})

    assert when(number["reservation"]["expiresAt"]) == api.clock.now() + timedelta(days=28)
    assert number["reservation"]["tag"] is None


async def test_extend_charges_the_reservation_to_a_later_end(api: Api, clock: ManualClock) -> None:
    root = await api.root()
    await add(api, N1)
    await ok(api, "reserveNumbers", {"numbers": [N1], "reservedForId": gid(root)})
    clock.advance(timedelta(days=3))
    did = str(uuid.uuid4())
    ends = clock.now() + timedelta(days=60)

    [number] = await ok(
        api,
        "extendReservation",
        {"numbers": [N1], "didReservationUuid": did, "expiresAt": iso(ends)},
    )

    assert number["state"] == "RESERVED"
    assert number["reservation"]["kind"] == "CHARGED"
    assert number["reservation"]["didReservationUuid"] == did
    assert when(number["reservation"]["expiresAt"]) == ends
    assert number["reservation"]["reservedFor"] == {"name": "Provider"}

    errors = await refused(
        api,
        "extendReservation",
        {"numbers": [N1], "didReservationUuid": did, "expiresAt": iso(ends)},
    )
    assert codes(errors) == {("INVALID_TRANSITION", ("input", "numbers", "0"), N1)}


async def test_release_makes_a_reserved_number_available(api: Api) -> None:
    await add(api, N1)
    await ok(api, "reserveNumbers", {"numbers": [N1], "reservedForId": gid(await api.root())})

    [number] = await ok(api, "releaseNumbers", {"numbers": [N1], "remark": "not needed"})

    assert number["state"] == "AVAILABLE"
    assert number["reservation"] is None


async def test_assign_defaults_the_owner_to_the_pool_s_org_or_takes_a_child(api: Api) -> None:
    partner, customer, _ = await tree(api)
    await add(api, N1, N2, organizationId=gid(partner))
    subscription = str(uuid.uuid4())

    [by_default] = await ok(
        api, "assignNumbers", {"numbers": [N1], "subscriptionUuid": subscription}
    )
    [to_child] = await ok(
        api,
        "assignNumbers",
        {"numbers": [N2], "subscriptionUuid": subscription, "ownerUuid": str(customer.uuid)},
    )

    assert by_default["state"] == to_child["state"] == "ASSIGNED"
    assert by_default["subscriptionUuid"] == to_child["subscriptionUuid"] == subscription
    assert by_default["ownerUuid"] == str(partner.uuid)
    assert to_child["ownerUuid"] == str(customer.uuid)
    assert by_default["organization"] == to_child["organization"] == {"name": "Partner"}


async def test_a_reserved_number_is_assigned_only_to_its_holder_or_below(api: Api) -> None:
    partner, holder, sibling = await tree(api)
    department = await api.org("Department", OrganizationKind.DEPARTMENT, holder)
    await add(api, N1, organizationId=gid(partner))
    await ok(api, "reserveNumbers", {"numbers": [N1], "reservedForId": gid(holder)})
    subscription = str(uuid.uuid4())

    for owner in (sibling, partner):
        errors = await refused(
            api,
            "assignNumbers",
            {"numbers": [N1], "subscriptionUuid": subscription, "ownerUuid": str(owner.uuid)},
        )
        assert codes(errors) == {("INVALID_TRANSITION", ("input", "numbers", "0"), N1)}
    # Without an owner, the pool's org (above the holder) would take it.
    errors = await refused(
        api, "assignNumbers", {"numbers": [N1], "subscriptionUuid": subscription}
    )
    assert codes(errors) == {("INVALID_TRANSITION", ("input", "numbers", "0"), N1)}
    assert await state_of(api, N1) == "RESERVED"

    [number] = await ok(
        api,
        "assignNumbers",
        {"numbers": [N1], "subscriptionUuid": subscription, "ownerUuid": str(department.uuid)},
    )
    assert number["state"] == "ASSIGNED"
    assert number["ownerUuid"] == str(department.uuid)
    assert number["reservation"] is None


async def test_lock_ends_after_the_lock_period_or_at_the_given_time_and_unlock_ends_it(
    api: Api,
) -> None:
    await add(api, N1, N2)
    now = api.clock.now()

    [by_default] = await ok(api, "lockNumbers", {"numbers": [N1], "remark": "who took it?"})
    ends = now + timedelta(days=5)
    [given] = await ok(api, "lockNumbers", {"numbers": [N2], "expiresAt": iso(ends)})

    assert by_default["state"] == "LOCKED"
    assert by_default["lock"]["remark"] == "who took it?"
    assert when(by_default["lock"]["lockedAt"]) == now
    assert when(by_default["lock"]["expiresAt"]) == now + timedelta(days=90)
    assert when(given["lock"]["expiresAt"]) == ends

    unlocked = await ok(api, "unlockNumbers", {"numbers": [N1, N2]})
    assert [(n["state"], n["lock"]) for n in unlocked] == [("AVAILABLE", None)] * 2


async def test_delete_with_a_reason_and_recover(api: Api) -> None:
    await add(api, N1)

    [deleted] = await ok(api, "deleteNumbers", {"numbers": [N1], "reason": "FAULTY"})
    assert (deleted["state"], deleted["deletionReason"]) == ("DELETED", "FAULTY")
    assert await get(api, N1) == deleted

    [recovered] = await ok(api, "recoverNumbers", {"numbers": [N1]})
    assert (recovered["state"], recovered["deletionReason"]) == ("AVAILABLE", None)


async def test_edit_sets_only_the_given_fields_and_an_empty_text_clears(api: Api) -> None:
    await add(api, N1, N2, routing="sip:pbx.example", notes="rack 4", tag="lobby")
    await ok(api, "reserveNumbers", {"numbers": [N2], "reservedForId": gid(await api.root())})

    edited = await ok(api, "editNumbers", {"numbers": [N1, N2], "routing": "", "golden": True})

    for number in edited:
        assert number["routing"] is None
        assert number["golden"] is True
        assert (number["notes"], number["tag"], number["sku"]) == ("rack 4", "lobby", "DID-SG")
        assert number["capabilities"] == ["VOICE"]
    assert [n["state"] for n in edited] == ["AVAILABLE", "RESERVED"]

    edited = await ok(
        api, "editNumbers", {"numbers": [N1, N2], "sku": "DID-SG-2", "capabilities": ["SMS"]}
    )
    for number in edited:
        assert (number["sku"], number["capabilities"]) == ("DID-SG-2", ["SMS"])
        assert (number["routing"], number["golden"], number["notes"]) == (None, True, "rack 4")


# ---- all or nothing ----


async def test_a_batch_with_bad_numbers_reports_each_and_changes_nothing(api: Api) -> None:
    await add(api, N1, N2)
    await ok(api, "lockNumbers", {"numbers": [N2]})

    errors = await refused(
        api,
        "reserveNumbers",
        {"numbers": [N1, N2, MISSING], "reservedForId": gid(await api.root())},
    )

    assert codes(errors) == {
        ("INVALID_TRANSITION", ("input", "numbers", "1"), N2),
        ("NOT_FOUND", ("input", "numbers", "2"), MISSING),
    }
    assert len(errors) == 2
    assert await state_of(api, N1) == "AVAILABLE"
    assert await state_of(api, N2) == "LOCKED"
    assert (await history(api, N1))["totalCount"] == 1
    assert (await history(api, N2))["totalCount"] == 2


async def test_reserve_ends_after_now_and_within_the_free_period(api: Api) -> None:
    await add(api, N1)
    root = gid(await api.root())
    now = api.clock.now()

    # Too late is judged per number: the free period is its pool's.
    for ends, named in (
        (now - timedelta(minutes=1), None),
        (now, None),
        (now + timedelta(days=28, seconds=1), N1),
    ):
        errors = await refused(
            api, "reserveNumbers", {"numbers": [N1], "reservedForId": root, "expiresAt": iso(ends)}
        )
        assert codes(errors) == {("VALIDATION", ("input", "expiresAt"), named)}
        assert await state_of(api, N1) == "AVAILABLE"

    last = now + timedelta(days=28)
    [number] = await ok(
        api, "reserveNumbers", {"numbers": [N1], "reservedForId": root, "expiresAt": iso(last)}
    )
    assert when(number["reservation"]["expiresAt"]) == last


async def test_an_end_without_an_offset_is_bad_input_not_an_internal_error(api: Api) -> None:
    await add(api, N1)
    ends = (api.clock.now() + timedelta(days=1)).replace(tzinfo=None).isoformat()
    response = await api.post(
        "mutation($input: ReserveNumbersInput!) { reserveNumbers(input: $input) "
        + "{ numbers { e164 } userErrors { code field } } }",
        {"input": {"numbers": [N1], "reservedForId": gid(await api.root()), "expiresAt": ends}},
    )
    body = response.json()

    assert response.status_code < 500
    if body.get("errors"):
        assert all(e.get("extensions", {}).get("code") != "INTERNAL" for e in body["errors"])
    else:
        assert [e["code"] for e in body["data"]["reserveNumbers"]["userErrors"]] == ["VALIDATION"]
    assert await state_of(api, N1) == "AVAILABLE"


async def test_a_number_is_reserved_only_for_an_org_in_its_pool_s_subtree(api: Api) -> None:
    _, pool, sibling = await tree(api)
    await add(api, N1, organizationId=gid(pool))

    errors = await refused(api, "reserveNumbers", {"numbers": [N1], "reservedForId": gid(sibling)})

    assert codes(errors) == {("INVALID_TRANSITION", ("input", "numbers", "0"), N1)}
    assert await state_of(api, N1) == "AVAILABLE"


async def test_a_holder_outside_the_subtree_looks_exactly_like_a_made_up_id(api: Api) -> None:
    partner, _, _ = await tree(api)
    other = await api.org("Other partner", OrganizationKind.PARTNER, await api.root())
    stranger = await api.org("Stranger", OrganizationKind.CUSTOMER, other)
    await add(api, N1, organizationId=gid(partner))
    operator = await api.token_for(partner, Role.OPERATOR)

    answers = []
    for holder in (gid(stranger), ids.encode("Organization", uuid.uuid4())):
        answers.append(
            await refused(
                api, "reserveNumbers", {"numbers": [N1], "reservedForId": holder}, operator
            )
        )

    assert answers[0] == answers[1]
    assert codes(answers[0]) == {("NOT_FOUND", ("input", "reservedForId"), None)}
    assert await state_of(api, N1) == "AVAILABLE"


# ---- subscription events ----


async def assigned(api: Api, owner: Organization, *numbers: str) -> str:
    """Numbers of the root's pool assigned to a new subscription owned by `owner`."""
    subscription = str(uuid.uuid4())
    await ok(
        api,
        "assignNumbers",
        {"numbers": list(numbers), "subscriptionUuid": subscription, "ownerUuid": str(owner.uuid)},
    )
    return subscription


async def test_an_expired_subscription_holds_its_numbers_for_the_owner_until_reactivated(
    api: Api, clock: ManualClock
) -> None:
    _, customer, _ = await tree(api)
    await add(api, N1, N2, N3)
    subscription = await assigned(api, customer, N1, N2)
    now = clock.now()

    held = await ok(api, "subscriptionExpired", {"subscriptionUuid": subscription})

    assert [n["e164"] for n in held] == [N1, N2]
    for number in held:
        assert number["state"] == "RESERVED"
        assert number["subscriptionUuid"] is None
        reservation = number["reservation"]
        assert (reservation["kind"], reservation["reason"]) == ("FREE", "SUBSCRIPTION_EXPIRED")
        assert reservation["reservedFor"] == {"name": "Customer 1"}
        assert when(reservation["expiresAt"]) == now + timedelta(days=56)
    assert await state_of(api, N3) == "AVAILABLE"

    clock.advance(timedelta(days=55))
    back = await ok(api, "subscriptionReactivated", {"subscriptionUuid": subscription})

    assert [n["e164"] for n in back] == [N1, N2]
    for number in back:
        assert number["state"] == "ASSIGNED"
        assert number["subscriptionUuid"] == subscription
        assert number["ownerUuid"] == str(customer.uuid)
        assert number["reservation"] is None


async def test_a_terminated_subscription_holds_28_days_then_cannot_be_reactivated(
    api: Api, clock: ManualClock
) -> None:
    _, customer, _ = await tree(api)
    await add(api, N1)
    subscription = await assigned(api, customer, N1)

    [held] = await ok(api, "subscriptionTerminated", {"subscriptionUuid": subscription})
    assert held["reservation"]["reason"] == "SUBSCRIPTION_TERMINATED"
    assert when(held["reservation"]["expiresAt"]) == clock.now() + timedelta(days=28)

    clock.advance(timedelta(days=29))
    errors = await refused(api, "subscriptionReactivated", {"subscriptionUuid": subscription})

    assert codes(errors) == {("NOT_FOUND", ("input", "subscriptionUuid"), None)}
    assert await state_of(api, N1) == "RESERVED"


@pytest.mark.parametrize(
    "event", ["subscriptionExpired", "subscriptionTerminated", "subscriptionReactivated"]
)
async def test_an_event_for_an_unknown_subscription_is_not_found(api: Api, event: str) -> None:
    _, customer, _ = await tree(api)
    await add(api, N1)
    await assigned(api, customer, N1)

    errors = await refused(api, event, {"subscriptionUuid": str(uuid.uuid4())})

    assert codes(errors) == {("NOT_FOUND", ("input", "subscriptionUuid"), None)}
    assert await state_of(api, N1) == "ASSIGNED"


async def test_swap_holds_the_old_number_a_day_and_assigns_the_new_one(api: Api) -> None:
    _, customer, _ = await tree(api)
    await add(api, N1, N2)
    subscription = await assigned(api, customer, N1)
    now = api.clock.now()

    swapped = await ok(
        api,
        "swapNumber",
        {"subscriptionUuid": subscription, "oldNumber": N1, "newNumber": N2},
    )

    by_e164 = {n["e164"]: n for n in swapped}
    assert set(by_e164) == {N1, N2}
    old, new = by_e164[N1], by_e164[N2]
    assert old["state"] == "RESERVED"
    assert old["subscriptionUuid"] is None
    assert old["reservation"]["reason"] == "SWAPPED_OUT"
    assert old["reservation"]["reservedFor"] == {"name": "Customer 1"}
    assert when(old["reservation"]["expiresAt"]) == now + timedelta(days=1)
    assert new["state"] == "ASSIGNED"
    assert new["subscriptionUuid"] == subscription
    assert new["ownerUuid"] == str(customer.uuid)


async def test_swap_of_a_number_not_on_the_subscription_changes_nothing(api: Api) -> None:
    _, customer, _ = await tree(api)
    await add(api, N1, N2, N3)
    subscription = await assigned(api, customer, N1)
    other = await assigned(api, customer, N3)

    errors = await refused(
        api,
        "swapNumber",
        {"subscriptionUuid": subscription, "oldNumber": N3, "newNumber": N2},
    )

    assert codes(errors) == {("INVALID_TRANSITION", ("input", "oldNumber"), N3)}
    found = {}
    for e164 in (N1, N2, N3):
        number = await get(api, e164)
        assert number is not None
        found[e164] = (number["state"], number["subscriptionUuid"])
    assert found == {
        N1: ("ASSIGNED", subscription),
        N2: ("AVAILABLE", None),
        N3: ("ASSIGNED", other),
    }


# ---- history ----


async def test_history_is_newest_first_and_pages_by_cursor(api: Api, clock: ManualClock) -> None:
    root = await api.root()
    operator = await api.token_for(root, Role.OPERATOR, name="sales desk")
    added_at = clock.now()
    await add(api, N1)
    clock.advance(timedelta(hours=1))
    await ok(api, "reserveNumbers", {"numbers": [N1], "reservedForId": gid(root), "remark": "hold"})
    clock.advance(timedelta(hours=1))
    extend = {
        "numbers": [N1],
        "didReservationUuid": str(uuid.uuid4()),
        "expiresAt": iso(clock.now() + timedelta(days=90)),
        "remark": "paid",
    }
    await ok(api, "extendReservation", extend, operator)
    clock.advance(timedelta(hours=1))
    await ok(api, "releaseNumbers", {"numbers": [N1], "remark": "done"}, operator)

    events = [e["node"] for e in (await history(api, N1))["edges"]]
    assert [
        (e["action"], e["fromState"], e["toState"], e["actor"], e["remark"]) for e in events
    ] == [
        ("RELEASED", "RESERVED", "AVAILABLE", "sales desk", "done"),
        ("EXTENDED", "RESERVED", "RESERVED", "sales desk", "paid"),
        ("RESERVED", "AVAILABLE", "RESERVED", "root admin", "hold"),
        ("ADDED", None, "AVAILABLE", "root admin", None),
    ]
    assert [when(e["at"]) for e in events] == [added_at + timedelta(hours=h) for h in (3, 2, 1, 0)]

    seen, after, pages = [], None, 0
    while True:
        page = await history(api, N1, first=2, after=after)
        pages += 1
        assert page["totalCount"] == 4
        assert page["pageInfo"]["hasPreviousPage"] == (after is not None)
        seen += [e["node"]["action"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ["RELEASED", "EXTENDED", "RESERVED", "ADDED"]
    assert pages == 2


async def test_a_cursor_that_is_not_of_the_history_is_a_validation_error(api: Api) -> None:
    await add(api, N1)
    foreign = (await api.gql(ORG_CURSOR))["organizations"]["pageInfo"]["endCursor"]

    for cursor in ("garbage!", foreign):
        errors = await api.errors(HISTORY, {"e164": N1, "first": 2, "after": cursor})
        assert errors[0]["extensions"]["code"] == "VALIDATION", errors


# ---- scoping and roles ----


async def test_another_customer_s_number_looks_exactly_like_one_that_does_not_exist(
    api: Api,
) -> None:
    _, owner, sibling = await tree(api)
    [number] = await add(api, N1, organizationId=gid(owner))
    token = await api.token_for(sibling, Role.ADMIN)

    assert await get(api, N1, token) is None
    assert (await api.gql(NODE, {"id": number["id"]}, token=token))["node"] is None
    assert (await api.gql(NODE, {"id": number["id"]}))["node"] == {"id": number["id"], "e164": N1}

    inputs: list[tuple[str, dict[str, Any]]] = [
        ("reserveNumbers", {"reservedForId": gid(sibling)}),
        ("releaseNumbers", {}),
        ("assignNumbers", {"subscriptionUuid": str(uuid.uuid4())}),
        ("lockNumbers", {}),
        ("deleteNumbers", {"reason": "FAULTY"}),
        ("editNumbers", {"notes": "mine now"}),
    ]
    for mutation, extra in inputs:
        answers = []
        for e164 in (N1, MISSING):
            errors = await refused(api, mutation, {"numbers": [e164], **extra}, token)
            answers.append(
                [
                    {**e, "message": e["message"].replace(e164, "<n>"), "number": None}
                    for e in errors
                ]
            )
            assert [e["number"] for e in errors] == [e164]
        assert answers[0] == answers[1], mutation
        assert [e["code"] for e in answers[0]] == ["NOT_FOUND"]
    assert await get(api, N1) == number


async def test_a_viewer_cannot_reserve(api: Api) -> None:
    root = await api.root()
    await add(api, N1)
    viewer = await api.token_for(root, Role.VIEWER)

    errors = await refused(
        api, "reserveNumbers", {"numbers": [N1], "reservedForId": gid(root)}, viewer
    )

    assert [e["code"] for e in errors] == ["FORBIDDEN"]
    assert await state_of(api, N1) == "AVAILABLE"


# ---- batch limit ----


async def test_a_request_naming_more_numbers_than_the_batch_limit_is_refused(api: Api) -> None:
    await add(api, N1)
    numbers = [f"+65{61000000 + i}" for i in range(1001)]

    errors = await refused(
        api, "reserveNumbers", {"numbers": numbers, "reservedForId": gid(await api.root())}
    )

    assert codes(errors) == {("LIMIT_EXCEEDED", ("input", "numbers"), None)}
    assert await state_of(api, N1) == "AVAILABLE"


async def test_the_batch_limit_is_a_setting(api: Api, settings: Settings) -> None:
    settings.max_batch_size = 3
    await add(api, N1, N2, N3, N4)

    errors = await refused(api, "lockNumbers", {"numbers": [N1, N2, N3, N4]})
    assert codes(errors) == {("LIMIT_EXCEEDED", ("input", "numbers"), None)}
    assert await state_of(api, N1) == "AVAILABLE"

    locked = await ok(api, "lockNumbers", {"numbers": [N1, N2, N3]})
    assert [n["state"] for n in locked] == ["LOCKED"] * 3
