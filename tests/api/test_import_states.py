"""Import in every state: an inventory moved from another system, state by state.

A row names its state and fills that state's columns (the export's), and is checked
as the move into that state would be; export → import onto the same organizations
reproduces every number, every state's columns included.
"""

import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from domain.clock import ManualClock
from models import Number, NumberEvent, OrganizationKind
from tests.api.test_csv import add, export, imported, mutate
from tests.support.api import Api, gid

F = [f"+656100000{i}" for i in range(10)]
HEADER = "number,vendor,country,sku,state"


async def forget_numbers(api: Api) -> None:
    """Empty the inventory, keeping the organizations, as a fresh system would be."""
    async with api.db.write() as session:
        await session.execute(sa.delete(NumberEvent))
        await session.execute(sa.delete(Number))


async def test_export_then_import_reproduces_numbers_in_every_state(
    api: Api, clock: ManualClock
) -> None:
    root = await api.root()
    customer = await api.org("Customer", OrganizationKind.CUSTOMER, root)
    await add(api, *F)
    now = api.clock.now()
    held, assigned, did = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    reserve = {"reservedForId": gid(customer), "tag": "alice", "remark": "pilot"}
    await mutate(api, "reserveNumbers", {"numbers": F[1:3], **reserve})
    extend = {"didReservationUuid": str(did), "expiresAt": (now + timedelta(days=90)).isoformat()}
    await mutate(api, "extendReservation", {"numbers": [F[2]], **extend})
    await mutate(api, "lockNumbers", {"numbers": [F[3]], "remark": "fraud check"})
    forever = {"numbers": [F[4]], "expiresAt": None}
    await mutate(api, "lockNumbers", forever)
    owned = {"subscriptionUuid": str(assigned), "ownerUuid": str(customer.uuid)}
    await mutate(api, "assignNumbers", {"numbers": [F[5]], **owned})
    await mutate(api, "assignNumbers", {"numbers": [F[6]], "subscriptionUuid": str(held)})
    expired = "mutation($input: SubscriptionEventInput!) { subscriptionExpired(input: $input) "
    expired += "{ userErrors { message } } }"
    answer = await api.gql(expired, {"input": {"subscriptionUuid": str(held)}})
    assert answer["subscriptionExpired"]["userErrors"] == []
    await mutate(api, "deleteNumbers", {"numbers": [F[7]], "reason": "RETURNED_TO_VENDOR"})
    # A block, and the facts of any state: registration, features, capacity.
    await mutate(api, "assignNumbers", {"numbers": [F[8]], **owned})
    until = (now + timedelta(days=5)).isoformat()
    block = {"numbers": [F[8]], "reason": "FRAUD", "until": until, "remark": "chargeback"}
    await mutate(api, "blockNumbers", block)
    registered = {"numbers": [F[0], F[8]], "status": "APPROVED", "identityRef": "ID-7"}
    await mutate(api, "setRegistration", registered)
    await mutate(api, "setFeatureStatus", {"numbers": [F[8]], "kind": "CNAM", "status": "NEW"})
    await mutate(
        api, "setFeatureStatus", {"numbers": [F[8]], "kind": "EMERGENCY", "status": "ACTIVE"}
    )
    await mutate(api, "editNumbers", {"numbers": [F[9]], "capacity": 30})

    before = await export(api)
    states = {row["number"]: row["state"] for row in before}
    assert set(states.values()) == {
        "AVAILABLE", "RESERVED", "LOCKED", "ASSIGNED", "DELETED", "BLOCKED",
    }  # fmt: skip
    blocked = next(row for row in before if row["number"] == F[8])
    assert (blocked["block_reason"], blocked["block_remark"]) == ("FRAUD", "chargeback")
    assert blocked["features"] == "EMERGENCY:ACTIVE|CNAM:NEW"
    assert blocked["registration_identity_ref"] == "ID-7"
    text = _csv(before)

    await forget_numbers(api)
    clock.advance(timedelta(hours=1))
    report = await imported(api, text)
    assert (report["added"], report["bad_rows"]) == (len(F), [])

    after = await export(api)
    # Everything but when the number last changed state: it came in now.
    keep = [name for name in before[0] if name != "state_changed_at"]
    assert [_only(row, keep) for row in after] == [_only(row, keep) for row in before]
    assert {row["held_for_subscription_uuid"] for row in after} == {"", str(held)}


async def test_a_row_is_checked_as_the_move_into_its_state_and_bad_rows_write_nothing(
    api: Api,
) -> None:
    root = await api.root()
    partner = await api.org("Partner", OrganizationKind.PARTNER, root)
    elsewhere = await api.org("Other", OrganizationKind.PARTNER, root)
    now = api.clock.now()
    soon, later = now + timedelta(days=3), now + timedelta(days=60)
    past = now - timedelta(minutes=1)
    sub = uuid.uuid4()
    cells = "number,vendor,country,sku,state,expires_at,reservation_kind,reservation_reason,"
    cells += "reserved_for,did_reservation_uuid,held_for_subscription_uuid,subscription_uuid,"
    cells += "owner_uuid,deletion_reason,locked_at\n"

    def row(n: int, state: str, **given: Any) -> str:
        names = cells.strip().split(",")[5:]
        values = [str(given.get(name, "")) for name in names]
        return ",".join([F[n], "V", "SG", "D", state, *values]) + "\n"

    text = cells + "".join(
        [
            row(0, "RESERVED", expires_at=soon.isoformat(), reserved_for=partner.uuid),
            row(1, "RESERVED"),
            row(2, "RESERVED", expires_at=past.isoformat()),
            row(3, "RESERVED", expires_at=later.isoformat()),
            row(4, "RESERVED", expires_at=later.isoformat(), reservation_kind="CHARGED"),
            row(5, "RESERVED", expires_at=soon.isoformat(), reserved_for=elsewhere.uuid),
            row(6, "RESERVED", expires_at=soon.isoformat(), reservation_reason="SWAPPED_OUT"),
            row(7, "ASSIGNED", owner_uuid=partner.uuid),
            row(8, "DELETED"),
            row(9, "AVAILABLE", subscription_uuid=sub),
        ]
    )
    report = await imported(api, text, 422, organization_id=gid(partner))
    reasons = {bad["line"]: bad["reason"] for bad in report["bad_rows"]}
    assert sorted(reasons) == list(range(3, 12))
    assert "expires_at is needed" in reasons[3]
    assert "would have lapsed" in reasons[4]
    assert "more than 28 days away" in reasons[5]
    assert "CHARGED reservation needs its did_reservation_uuid" in reasons[6]
    assert "reserved_for" in reasons[7]
    assert "pool's subtree" in reasons[7]
    assert "needs its held_for_subscription_uuid" in reasons[8]
    assert "subscription_uuid is needed" in reasons[9]
    assert "deletion_reason is needed" in reasons[10]
    assert "subscription_uuid is for ASSIGNED or BLOCKED numbers, not AVAILABLE" in reasons[11]
    assert report["added"] == 0
    assert await export(api) == []

    good = await imported(api, cells + row(0, "RESERVED", expires_at=soon.isoformat()))
    assert good["added"] == 1
    [reserved] = await export(api)
    assert (reserved["state"], reserved["reserved_for"]) == ("RESERVED", str(root.uuid))


def _only(row: dict[str, str], names: list[str]) -> dict[str, str]:
    return {name: row[name] for name in names}


def _csv(rows: list[dict[str, str]]) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


async def test_a_billing_term_is_imported_as_assign_numbers_checks_it(api: Api) -> None:
    now = api.clock.now()
    later, past = (now + timedelta(days=40)).isoformat(), (now - timedelta(days=1)).isoformat()
    sub = uuid.uuid4()
    cells = "number,vendor,country,sku,state,subscription_uuid,billing_period_months,"
    cells += "paid_until,billing_cycles,cancelled_at,reservation_reason,expires_at\n"

    def row(n: int, state: str, *term: object, reason: str = "", ends: str = "") -> str:
        values = [str(value) for value in term] + [""] * (4 - len(term))
        subscription = str(sub) if state == "ASSIGNED" else ""
        return ",".join([F[n], "V", "SG", "D", state, subscription, *values, reason, ends]) + "\n"

    bad = [
        row(0, "ASSIGNED", 2, later),
        row(1, "ASSIGNED", 1),
        row(2, "ASSIGNED", 1, past),
        row(3, "ASSIGNED", 1, later, 1000),
        row(4, "ASSIGNED", "", "", 3),
        row(5, "ASSIGNED", 1, later, "", (now + timedelta(hours=1)).isoformat()),
        row(6, "RESERVED", 3, reason="MANUAL", ends=later),
    ]
    report = await imported(api, cells + "".join(bad), 422)
    reasons = {bad["line"]: bad["reason"] for bad in report["bad_rows"]}
    assert sorted(reasons) == list(range(2, 9))
    assert "billing_period_months must be 1, 3, 6 or 12" in reasons[2]
    assert "needs both billing_period_months and paid_until" in reasons[3]
    assert "paid_until has passed" in reasons[4]
    assert "billing_cycles must be 0 to 999" in reasons[5]
    assert "need a billing term" in reasons[6]
    assert "cancelled_at is in the future" in reasons[7]
    assert "billing_period_months is for numbers held for" in reasons[8]
    assert await export(api) == []

    cancelled = (now - timedelta(hours=1)).isoformat()
    good = await imported(api, cells + row(0, "ASSIGNED", 3, later, 2, cancelled))
    assert good["added"] == 1
    [assigned] = await export(api)
    assert _only(assigned, ["billing_period_months", "billing_cycles"]) == {
        "billing_period_months": "3",
        "billing_cycles": "2",
    }
    assert datetime.fromisoformat(assigned["paid_until"]) == datetime.fromisoformat(later)
    assert datetime.fromisoformat(assigned["cancelled_at"]) == datetime.fromisoformat(cancelled)
