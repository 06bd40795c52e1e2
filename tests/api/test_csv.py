"""CSV export and import: GET /export/numbers.csv, POST /import/numbers, `numbra export|import`.

Export: every contract field a column, exactly the numbers the same filter finds
through GraphQL, only the token's subtree, paged. Import: every kind of bad row
reported on its line; atomic, partial and dry runs; who may import; export →
import onto a fresh database reproduces the inventory (a property); a 100,000-row
import through the CLI stays within bounded memory.
"""

import asyncio
import csv
import io
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession

from domain import access, numbers, organizations, phone, subscriptions, tokens
from domain.access import Caller
from domain.clock import ManualClock
from domain.csv import exports
from domain.csv.ranges import MAX_RANGE
from domain.details import NumberDetails
from domain.phone import RegionRule
from domain.policy import Policy
from domain.terms import TermInput
from models import (
    Capability,
    DeletionReason,
    Number,
    Organization,
    OrganizationKind,
    Role,
    Series,
)
from models.database import Database
from settings import Settings
from tests.support.api import Api, gid
from tests.support.processes import NUMBRA, environment
from tests.support.world import allow_intake
from tests.support.xlsx import workbook

F1, F2, F3, F4, F5, F6 = (f"+656100000{i}" for i in range(1, 7))
GB = "+442079460001"
PRESENT = "+6561999999"
# In the range of line 19 below.
PRESENT_IN_RANGE = "+6561999985"

ADD = """mutation($input: AddNumbersInput!) {
  addNumbers(input: $input) { numbers { e164 } userErrors { code message field number } }
}"""
SEARCH = """query($filter: NumberFilter) {
  numbers(filter: $filter, first: 500) { edges { node { e164 } } }
}"""
NUMBER = """query($e164: String!) { number(e164: $e164) {
  state lock { lockedAt expiresAt }
  history { edges { node { action actor remark fromState toState } } }
} }"""
CREATE_SERIES = """mutation($input: CreateSeriesInput!) {
  createSeries(input: $input) { series { id } userErrors { message } }
}"""


# ---- helpers ----


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def mutate(api: Api, name: str, input: dict[str, Any], token: str | None = None) -> None:
    """A number mutation (addNumbers, reserveNumbers, ...) that must succeed."""
    type_name = name[0].upper() + name[1:] + "Input"
    query = (
        f"mutation($input: {type_name}!) {{ {name}(input: $input) "
        "{ userErrors { code message field number } } }"
    )
    payload = (await api.gql(query, {"input": input}, token=token))[name]
    assert payload["userErrors"] == [], payload["userErrors"]


async def add(api: Api, *e164s: str, **fields: Any) -> None:
    base = {"numbers": list(e164s), "vendor": "Singtel", "country": "SG", "sku": "DID-SG"}
    await mutate(api, "addNumbers", base | fields)


async def export(
    api: Api, params: dict[str, str] | None = None, token: str | None = None
) -> list[dict[str, str]]:
    response = await api.client.get(
        "/export/numbers.csv", params=params, headers=auth(token or api.token)
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    reader = csv.DictReader(io.StringIO(response.text))
    assert tuple(reader.fieldnames or ()) == exports.COLUMNS
    rows = list(reader)
    e164s = [row["number"] for row in rows]
    assert e164s == sorted(set(e164s)), "not in e164 order, or repeated"
    return rows


async def exported(
    api: Api, params: dict[str, str] | None = None, token: str | None = None
) -> set[str]:
    return {row["number"] for row in await export(api, params, token)}


async def imported(api: Api, text: str, status: int = 200, **params: Any) -> dict[str, Any]:
    response = await api.upload_csv(text, **params)
    assert response.status_code == status, response.text
    report: dict[str, Any] = response.json()
    return report


def bad_lines(report: dict[str, Any]) -> dict[int, tuple[str | None, str]]:
    return {bad["line"]: (bad["number"], bad["reason"]) for bad in report["bad_rows"]}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# ---- export ----


async def test_export_writes_every_contract_field_for_numbers_in_every_state(api: Api) -> None:
    root = await api.root()
    customer = await api.org("Customer", OrganizationKind.CUSTOMER, root)
    series = {"input": {"name": "Singapore 61", "prefix": "+6561", "country": "SG"}}
    assert (await api.gql(CREATE_SERIES, series))["createSeries"]["userErrors"] == []
    notes = 'two lines,\nand "quotes"'
    await add(
        api,
        F1,
        F2,
        F3,
        F4,
        F5,
        capabilities=["VOICE", "SMS"],
        golden=True,
        routing="sip:trunk-1",
        visibleToDomain="example.com",
        tag="=SUM(A1)",
        notes=notes,
    )
    await add(api, GB, country="GB", vendor="BT", sku="DID-GB")
    now = api.clock.now()
    ends = now + timedelta(days=10)
    subscription = uuid.uuid4()
    await mutate(
        api,
        "reserveNumbers",
        {
            "numbers": [F2],
            "reservedForId": gid(customer),
            "tag": "alice",
            "remark": "for the pilot",
            "expiresAt": ends.isoformat(),
        },
    )
    await mutate(api, "lockNumbers", {"numbers": [F3], "remark": "fraud check"})
    await mutate(
        api,
        "assignNumbers",
        {"numbers": [F4], "subscriptionUuid": str(subscription), "ownerUuid": str(customer.uuid)},
    )
    await mutate(api, "deleteNumbers", {"numbers": [F5], "reason": "FAULTY"})

    rows = {row["number"]: row for row in await export(api)}

    assert list(rows) == [GB, F1, F2, F3, F4, F5]
    empty = {column: "" for column in exports.COLUMNS}
    assert rows[F1] == empty | {
        "number": F1,
        "state": "AVAILABLE",
        "country": "SG",
        "sku": "DID-SG",
        "vendor": "Singtel",
        "capabilities": "VOICE|SMS",
        "routing": "sip:trunk-1",
        "golden": "true",
        "ported_in": "false",
        "visible_to_domain": "example.com",
        # A spreadsheet would run "=SUM(A1)": the cell is written behind a quote.
        "tag": "'=SUM(A1)",
        "notes": notes,
        "organization": str(root.uuid),
        "series": "+6561",
        "state_changed_at": now.isoformat(),
        "registration_status": "NOT_REQUIRED",
    }
    reserved = rows[F2]
    assert (reserved["state"], reserved["reservation_kind"], reserved["reservation_reason"]) == (
        "RESERVED",
        "FREE",
        "MANUAL",
    )
    assert reserved["reserved_for"] == str(customer.uuid)
    assert (reserved["reservation_tag"], reserved["reservation_remark"]) == (
        "alice",
        "for the pilot",
    )
    assert at(reserved["reservation_starts_at"]) == now
    assert at(reserved["expires_at"]) == ends
    locked = rows[F3]
    assert (locked["state"], locked["lock_remark"]) == ("LOCKED", "fraud check")
    assert at(locked["locked_at"]) == now
    assert at(locked["expires_at"]) == now + Policy().lock
    assigned = rows[F4]
    assert assigned["state"] == "ASSIGNED"
    assert assigned["subscription_uuid"] == str(subscription)
    assert assigned["owner_uuid"] == str(customer.uuid)
    assert (rows[F5]["state"], rows[F5]["deletion_reason"]) == ("DELETED", "FAULTY")
    assert (rows[GB]["series"], rows[GB]["capabilities"], rows[GB]["golden"]) == (
        "",
        "VOICE",
        "false",
    )


# What a spreadsheet evaluates, or may once it trims or folds the start: OWASP's list
# (= + - @ tab, carriage return), a line feed, spaces before a sign, and the full-width
# and small forms of the signs, which some spreadsheets fold to ASCII.
EVALUATED = [
    "=1+1",
    "+1",
    "-1",
    "@SUM(A1)",
    "\t=1",
    "\r=1",
    "\n=1",
    " =1+1",
    "\u3000=1",
    "\u00a0=1",
    "\uff1d1+1",
    "\uff0b1",
    "\uff0d1",
    "\uff20SUM(A1)",
    "\ufe661",
    "\u22121",
    "'quoted",
]
SINGLE_LINE = [text for text in EVALUATED if text[0] not in "\t\r\n"]


async def test_every_cell_a_spreadsheet_would_evaluate_is_written_behind_a_quote(
    api: Api,
) -> None:
    e164s = [f"+65610001{i:02d}" for i in range(len(EVALUATED))]
    for e164, text in zip(e164s, EVALUATED, strict=True):
        tag = text if text in SINGLE_LINE else None
        await add(api, e164, notes=text, tag=tag)

    rows = {row["number"]: row for row in await export(api)}

    for e164, text in zip(e164s, EVALUATED, strict=True):
        for column in ("notes", "tag") if text in SINGLE_LINE else ("notes",):
            cell = rows[e164][column]
            assert cell == "'" + text, (column, text, cell)
            assert exports.unguard_text(cell) == text


async def filter_inventory(api: Api) -> dict[str, Any]:
    """Numbers in several pools, states and fields; what the filters below refer to."""
    root = await api.root()
    partner = await api.org("Partner", OrganizationKind.PARTNER, root)
    customer = await api.org("Customer", OrganizationKind.CUSTOMER, partner)
    series = {"input": {"name": "Singapore 61", "prefix": "+6561", "country": "SG"}}
    series_id = (await api.gql(CREATE_SERIES, series))["createSeries"]["series"]["id"]
    await add(api, F1, F2, capabilities=["VOICE", "SMS"], golden=True, tag="blue")
    await add(api, F3, F4, F5, sku="DID-SG-2", routing="sip:b", portedIn=True)
    await add(api, "+6591230045", visibleToDomain="example.com")
    await add(api, GB, country="GB", vendor="BT", sku="DID-GB", capabilities=["FAX"])
    await mutate(api, "allocateNumbers", {"organizationId": gid(partner), "numbers": [F2, F3, F4]})
    await mutate(api, "allocateNumbers", {"organizationId": gid(customer), "numbers": [F4]})
    subscription = str(uuid.uuid4())
    await mutate(api, "lockNumbers", {"numbers": [F5]})
    await mutate(
        api,
        "reserveNumbers",
        {"numbers": [F3], "reservedForId": gid(partner), "tag": "red"},
    )
    await mutate(
        api,
        "assignNumbers",
        {"numbers": [F2], "subscriptionUuid": subscription, "ownerUuid": str(customer.uuid)},
    )
    return {
        "partner": partner,
        "customer": customer,
        "series_id": series_id,
        "subscription": subscription,
    }


async def test_export_selects_exactly_what_the_same_filter_finds(api: Api) -> None:
    made = await filter_inventory(api)
    partner, customer = made["partner"], made["customer"]
    soon = (api.clock.now() + timedelta(days=60)).isoformat()
    # (query parameters, the same NumberFilter for GraphQL)
    cases: list[tuple[dict[str, str], dict[str, Any]]] = [
        ({}, {}),
        ({"states": "AVAILABLE,LOCKED"}, {"states": ["AVAILABLE", "LOCKED"]}),
        ({"states": "RESERVED", "tag": "red"}, {"states": ["RESERVED"], "tag": "red"}),
        ({"pattern": "+6561*"}, {"pattern": "+6561*"}),
        ({"pattern": "0004"}, {"pattern": "0004"}),
        ({"numbers": f"{F1}, 65 6100 0003,{GB}"}, {"numbers": [F1, "65 6100 0003", GB]}),
        ({"capabilities": "voice,SMS"}, {"capabilities": ["VOICE", "SMS"]}),
        ({"capabilities": "FAX"}, {"capabilities": ["FAX"]}),
        ({"sku": "DID-SG-2", "routing": "sip:b"}, {"sku": "DID-SG-2", "routing": "sip:b"}),
        ({"vendor": "BT", "country": "gb"}, {"vendor": "BT", "country": "gb"}),
        ({"golden": "true"}, {"golden": True}),
        ({"ported_in": "yes"}, {"portedIn": True}),
        ({"visible_to_domain": "example.com"}, {"visibleToDomain": "example.com"}),
        ({"subscription_uuid": made["subscription"]}, {"subscriptionUuid": made["subscription"]}),
        ({"owner_uuid": str(customer.uuid)}, {"ownerUuid": str(customer.uuid)}),
        ({"tag": "blue"}, {"tag": "blue"}),
        ({"series_id": made["series_id"]}, {"seriesId": made["series_id"]}),
        ({"organization_id": gid(partner)}, {"organizationId": gid(partner)}),
        (
            {"organization_id": str(partner.uuid), "include_descendants": "true"},
            {"organizationId": gid(partner), "includeDescendants": True},
        ),
        ({"expires_before": soon}, {"expiresBefore": soon}),
    ]
    for params, spec in cases:
        edges = (await api.gql(SEARCH, {"filter": spec}))["numbers"]["edges"]
        expected = {edge["node"]["e164"] for edge in edges}
        assert await exported(api, params) == expected, params
    assert await exported(api, {"states": "ASSIGNED", "golden": "false"}) == set()


async def test_export_holds_only_the_tokens_subtree(api: Api) -> None:
    root = await api.root()
    partner = await api.org("Partner", OrganizationKind.PARTNER, root)
    first = await api.org("Customer 1", OrganizationKind.CUSTOMER, partner)
    second = await api.org("Customer 2", OrganizationKind.CUSTOMER, partner)
    department = await api.org("Department", OrganizationKind.DEPARTMENT, first)
    await add(api, F1, F2, F3, F4, F5)
    await mutate(
        api, "allocateNumbers", {"organizationId": gid(partner), "numbers": [F1, F2, F3, F4]}
    )
    await mutate(api, "allocateNumbers", {"organizationId": gid(first), "numbers": [F1, F2]})
    await mutate(api, "allocateNumbers", {"organizationId": gid(second), "numbers": [F3]})
    await mutate(api, "allocateNumbers", {"organizationId": gid(department), "numbers": [F2]})
    first_viewer = await api.token_for(first, Role.VIEWER)
    second_admin = await api.token_for(second, Role.ADMIN)

    assert await exported(api) == {F1, F2, F3, F4, F5}
    assert await exported(api, token=await api.token_for(partner, Role.VIEWER)) == {F1, F2, F3, F4}
    assert await exported(api, token=first_viewer) == {F1, F2}
    assert await exported(api, token=second_admin) == {F3}
    # A sibling's pool, named outright, selects nothing: as if it did not exist.
    assert await exported(api, {"organization_id": gid(second)}, token=first_viewer) == set()
    assert await exported(api, {"numbers": F3}, token=first_viewer) == set()


async def test_export_reads_page_after_page(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports, "PAGE_SIZE", 2)
    await add(api, F6, F5, F4, F3, F2, F1)
    assert [row["number"] for row in await export(api)] == [F1, F2, F3, F4, F5, F6]
    assert await exported(api, {"pattern": "*5"}) == {F5}
    assert await exported(api, {"states": "LOCKED"}) == set()


async def test_a_bad_filter_is_a_400_naming_every_problem(api: Api) -> None:
    response = await api.client.get(
        "/export/numbers.csv",
        params={
            "states": "AVAILABLE,SOLD",
            "golden": "maybe",
            "pattern": "+65a",
            "owner_uuid": "nobody",
            "expires_before": "2026-03-01T00:00:00",
            "colour": "blue",
        },
        headers=auth(api.token),
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {tuple(error["field"]) for error in errors} == {
        ("filter", "states"),
        ("filter", "golden"),
        ("filter", "pattern"),
        ("filter", "owner_uuid"),
        ("filter", "expires_before"),
        ("filter", "colour"),
    }
    assert {error["code"] for error in errors} == {"VALIDATION"}
    assert any("'SOLD'" in error["message"] for error in errors)


async def test_without_a_valid_token_both_endpoints_answer_401(api: Api) -> None:
    for headers in ({}, auth("nbr_not-a-token"), {"Authorization": "Basic eDp5"}):
        response = await api.client.get("/export/numbers.csv", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer")
        files = {"file": ("n.csv", b"number,vendor,country,sku\n", "text/csv")}
        response = await api.client.post("/import/numbers", files=files, headers=headers)
        assert response.status_code == 401, headers


# ---- import ----

HEADER = "number,vendor,country,sku,capabilities,golden,state,notes"
# Line numbers are the file's: the notes of line 2 run on to line 3.
EVERY_KIND_OF_BAD_ROW = f"""{HEADER}
+6561000001,Singtel,SG,DID,VOICE|SMS,true,AVAILABLE,"two
lines"
6561 0000 02,Singtel,SG,DID,,,locked,
12345,Singtel,SG,DID,,,,
+442079460001,BT,SG,DID,,,,
+6561000001,Singtel,SG,DID,,,,
{PRESENT},Singtel,SG,DID,,,,
+6561000010-+6561000005,Singtel,SG,DID,,,,
+6561000010-+65610000200,Singtel,SG,DID,,,,
+6561000000-+6561200000,Singtel,SG,DID,,,,
+6561000003,Singtel,SG,DID,VOICE|MMS,,,
+6561000004,Singtel,SG,DID,,,SOLD,
+6561000005,Singtel,SG,DID,,maybe,,
+6561000006,,SG,DID,,,,
+6561000007,Singtel,XX,DID,,,,
+6561000008,Singtel,SG
+6561000020-+6561000029,Singtel,SG,DID,SMS,,,
+6561999980 - +6561999989,Singtel,SG,DID,,,,
+6561000025,Singtel,SG,DID,,,,
,Singtel,SG,DID,,,,
+6561000009,Singtel,SG,{"x" * 101},,,,
+6569999998-+6570000001,Singtel,SG,DID,,,,
+442079460000-+442079460009,Singtel,SG,DID,,,,
"""
GOOD_IN_EVERY_KIND = {F1, "+6561000002"} | {f"+65610000{n}" for n in range(20, 30)}


def check_every_kind_of_bad_row(report: dict[str, Any]) -> None:
    lines = bad_lines(report)
    expected = {
        5: ("12345", "'12345' is not a valid number of SG"),
        6: (GB, f"{GB} is a number of GB, not of SG"),
        7: (F1, f"{F1} is named twice"),
        8: (PRESENT, f"{PRESENT} is already in the inventory"),
        9: ("+6561000010-+6561000005", "range runs backwards"),
        10: ("+6561000010-+65610000200", "differ in length"),
        11: ("+6561000000-+6561200000", f"range of 200001 numbers; at most {MAX_RANGE}"),
        12: ("+6561000003", "'MMS' is not a capability"),
        13: (
            "+6561000004",
            "state must be one of AVAILABLE, RESERVED, LOCKED, ASSIGNED, DELETED, BLOCKED, "
            "not 'SOLD'",
        ),
        14: ("+6561000005", "golden must be true or false, not 'maybe'"),
        15: ("+6561000006", "vendor must be 1 to 100 characters"),
        16: ("+6561000007", "'XX' is not an ISO 3166-1 country"),
        17: ("+6561000008", "3 cells, but the first line names 8 columns"),
        19: (PRESENT_IN_RANGE, f"{PRESENT_IN_RANGE} is already in the inventory"),
        20: ("+6561000025", "+6561000025 is named twice"),
        21: (None, "number is empty"),
        22: ("+6561000009", "sku must be 1 to 100 characters"),
        23: (
            "+6569999998-+6570000001",
            "+6570000000 and 1 more numbers of the range are not valid for SG",
        ),
        24: (
            "+442079460000-+442079460009",
            "+442079460000 and 9 more numbers of the range are not valid for SG",
        ),
    }
    assert sorted(lines) == sorted(expected), lines
    for line, (number, reason) in expected.items():
        assert lines[line][0] == number, (line, lines[line])
        assert reason in lines[line][1], (line, lines[line])
    assert [bad["line"] for bad in report["bad_rows"]] == sorted(expected)
    assert report["bad_row_count"] == len(expected)
    assert report["rows"] == 22
    assert report["valid"] == len(GOOD_IN_EVERY_KIND)


async def test_every_kind_of_bad_row_is_reported_on_its_line_and_atomic_writes_nothing(
    api: Api,
) -> None:
    await add(api, PRESENT, PRESENT_IN_RANGE)
    # Unprocessable: the report says why nothing was written.
    report = await imported(api, EVERY_KIND_OF_BAD_ROW, status=422)
    check_every_kind_of_bad_row(report)
    assert (report["added"], report["dry_run"], report["partial"]) == (0, False, False)
    assert await exported(api) == {PRESENT, PRESENT_IN_RANGE}


async def test_partial_writes_the_good_rows(api: Api) -> None:
    await add(api, PRESENT, PRESENT_IN_RANGE)
    report = await imported(api, EVERY_KIND_OF_BAD_ROW, partial=True)
    check_every_kind_of_bad_row(report)
    assert report["added"] == len(GOOD_IN_EVERY_KIND)
    rows = {row["number"]: row for row in await export(api)}
    assert set(rows) == GOOD_IN_EVERY_KIND | {PRESENT, PRESENT_IN_RANGE}
    assert (rows[F1]["notes"], rows[F1]["capabilities"], rows[F1]["golden"]) == (
        "two\nlines",
        "VOICE|SMS",
        "true",
    )
    assert rows["+6561000002"]["state"] == "LOCKED"
    assert rows["+6561000025"]["capabilities"] == "SMS"


async def test_dry_run_checks_everything_and_writes_nothing(api: Api) -> None:
    await add(api, PRESENT, PRESENT_IN_RANGE)
    for partial in (False, True):
        report = await imported(api, EVERY_KIND_OF_BAD_ROW, dry_run=True, partial=partial)
        check_every_kind_of_bad_row(report)
        assert (report["added"], report["dry_run"]) == (0, True)
    assert await exported(api) == {PRESENT, PRESENT_IN_RANGE}


@pytest.mark.parametrize(
    ("first_line", "reason"),
    [
        ("number,vendor,country", "missing column sku"),
        ("", "missing column number, vendor, country, sku"),
        ("number,vendor,country,sku,capabilites", "unknown column 'capabilites'"),
        ("number,vendor,country,sku,Sku", "column sku given twice"),
    ],
)
async def test_a_bad_first_line_is_reported_as_line_1_and_nothing_is_read(
    api: Api, first_line: str, reason: str
) -> None:
    report = await imported(api, f"{first_line}\n{F1},Singtel,SG,DID\n", status=422)
    assert len(report["bad_rows"]) == 1
    assert report["bad_rows"][0]["line"] == 1
    assert reason in report["bad_rows"][0]["reason"]
    assert (report["rows"], report["added"]) == (0, 0)
    assert await exported(api) == set()


async def test_a_clean_file_goes_in_whole_with_ranges_locks_and_history(api: Api) -> None:
    text = (
        "\ufeffNumber, Vendor ,country,sku,state\n"
        "+6561000100-+6561000149,Singtel,sg,DID,\n"
        "+6561000200,Singtel,SG,DID,LOCKED\n"
        "\n"
        "+65 6100 0300,Singtel,SG,DID,available\n"
    )
    report = await imported(api, text)
    assert (report["added"], report["valid"], report["rows"], report["bad_rows"]) == (52, 52, 3, [])
    rows = {row["number"]: row for row in await export(api)}
    assert len(rows) == 52
    assert "+6561000300" in rows
    assert "+6561000149" in rows

    locked = (await api.gql(NUMBER, {"e164": "+6561000200"}))["number"]
    assert locked["state"] == "LOCKED"
    # Locks made before lock periods existed have no end.
    assert locked["lock"]["expiresAt"] is None
    assert at(locked["lock"]["lockedAt"]) == api.clock.now()
    [event] = [edge["node"] for edge in locked["history"]["edges"]]
    assert event == {
        "action": "ADDED",
        "actor": "root admin",
        "remark": "imported from CSV",
        "fromState": None,
        "toState": "LOCKED",
    }


async def test_only_admins_import_and_only_into_pools_they_see(api: Api) -> None:
    root = await api.root()
    customer = await api.org("Customer", OrganizationKind.CUSTOMER, root)
    sibling = await api.org("Sibling", OrganizationKind.CUSTOMER, root)
    text = f"number,vendor,country,sku\n{F1},Singtel,SG,DID\n"
    for role in (Role.OPERATOR, Role.VIEWER):
        response = await api.upload_csv(text, token=await api.token_for(customer, role))
        assert response.status_code == 403, role
        assert response.json()["errors"][0]["code"] == "FORBIDDEN"
    customer_admin = await api.token_for(customer, Role.ADMIN)
    response = await api.upload_csv(text, token=customer_admin)
    assert response.status_code == 403, "intake is the provider's until it allows others"
    await allow_intake(api.db, customer)
    response = await api.upload_csv(text, token=customer_admin, organization_id=gid(sibling))
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NOT_FOUND"

    response = await api.upload_csv(text, token=customer_admin)
    assert (response.status_code, response.json()["added"]) == (200, 1)
    text = f"number,vendor,country,sku\n{F2},Singtel,SG,DID\n"
    assert (await imported(api, text, organization_id=str(sibling.uuid)))["added"] == 1
    assert await exported(api, {"organization_id": gid(customer)}) == {F1}
    assert await exported(api, {"organization_id": gid(sibling)}) == {F2}
    assert await exported(api, token=customer_admin) == {F1}


CLEAN_ROW = f"number,vendor,country,sku\n{F1},Singtel,SG,DID\n"


async def test_an_import_without_a_file_or_with_bad_flags_is_a_400(api: Api) -> None:
    response = await api.client.post(
        "/import/numbers", data={"other": "x"}, headers=auth(api.token)
    )
    assert response.status_code == 400
    assert "'file'" in response.json()["errors"][0]["message"]
    response = await api.upload_csv("number,vendor,country,sku\n", dry_run="perhaps")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == ["dry_run"]
    response = await api.upload_csv(b"number,vendor,country,sku\xff\n")
    assert response.status_code == 422
    assert "UTF-8" in response.json()["bad_rows"][0]["reason"]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"dryrun": "true"}, ["dryrun"]),
        ({"dry_run": "true", "organisation_id": "x", "force": "1"}, ["organisation_id", "force"]),
    ],
)
async def test_an_import_with_a_parameter_it_does_not_take_is_a_400_naming_it(
    api: Api, params: dict[str, str], named: list[str]
) -> None:
    response = await api.upload_csv(CLEAN_ROW, **params)

    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert [error["field"] for error in errors] == [[name] for name in named]
    for error, name in zip(errors, named, strict=True):
        assert repr(name) in error["message"]
        for taken in ("dry_run", "partial", "organization_id"):
            assert taken in error["message"]
    assert await exported(api) == set()


async def test_an_import_form_with_a_field_it_does_not_take_or_a_flag_twice_is_a_400(
    api: Api,
) -> None:
    response = await api.client.post(
        "/import/numbers",
        data={"partial": "true"},
        files={"file": ("numbers.csv", CLEAN_ROW.encode(), "text/csv")},
        headers=auth(api.token),
    )
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["field"] == ["partial"]
    assert "'partial'" in error["message"]
    assert "query" in error["message"]

    response = await api.client.post(
        "/import/numbers?dry_run=true&dry_run=false",
        files={"file": ("numbers.csv", CLEAN_ROW.encode(), "text/csv")},
        headers=auth(api.token),
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == ["dry_run"]
    assert await exported(api) == set()


async def test_an_import_that_writes_nothing_for_its_bad_rows_is_a_422_with_the_report(
    api: Api,
) -> None:
    text = CLEAN_ROW + "12345,Singtel,SG,DID\n"
    atomic = await imported(api, text, status=422)
    dry_run = await imported(api, text, dry_run=True)
    only_bad = await imported(api, "number,vendor,country,sku\n12345,V,SG,D\n", 422, partial=True)
    partial = await imported(api, text, partial=True)

    for report in (atomic, dry_run, partial):
        assert [bad["line"] for bad in report["bad_rows"]] == [3], report
    assert [bad["line"] for bad in only_bad["bad_rows"]] == [2], only_bad
    assert (atomic["added"], dry_run["added"], only_bad["added"], partial["added"]) == (0, 0, 0, 1)
    assert await exported(api) == {F1}


# ---- export → import: a property ----

SG_NUMBERS = [f"+6561{n:06d}" for n in range(0, 1_000_000, 7919)]
GB_NUMBERS = [f"+44207946{n:04d}" for n in range(0, 10_000, 613)]
# Free text (notes) runs over lines; the other text fields are lines.
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\n\t,\"'=+-@ "),
    min_size=1,
    max_size=12,
)
LINE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"))
    | st.sampled_from(",\"'=+-@ "),
    min_size=1,
    max_size=12,
)
WORD = LINE.filter(lambda text: bool(text.strip()))


# The states a number is put in before the export; HELD is RESERVED for its subscription
# after the subscription expired, TERM is ASSIGNED with a billing term.
STATES = ["AVAILABLE", "RESERVED", "LOCKED", "ASSIGNED", "TERM", "HELD", "DELETED"]


@dataclass(frozen=True)
class Made:
    e164: str
    country: str
    state: str
    details: NumberDetails


def inventories() -> st.SearchStrategy[list[Made]]:
    def number(e164: str) -> st.SearchStrategy[Made]:
        details = st.builds(
            NumberDetails,
            sku=WORD,
            capabilities=st.lists(st.sampled_from(list(Capability)), min_size=1, unique=True),
            routing=st.none() | LINE,
            golden=st.booleans(),
            ported_in=st.booleans(),
            visible_to_domain=st.none() | LINE,
            tag=st.none() | LINE,
            notes=st.none() | TEXT,
        )
        country = "SG" if e164.startswith("+65") else "GB"
        return st.builds(Made, st.just(e164), st.just(country), st.sampled_from(STATES), details)

    e164s = st.lists(st.sampled_from(SG_NUMBERS + GB_NUMBERS), min_size=1, max_size=8, unique=True)
    return e164s.flatmap(lambda chosen: st.tuples(*map(number, chosen)).map(list))


class Backend:
    """Fresh, migrated databases of one kind, one after another."""

    def __init__(self, url: str | None, template: Path | None, workdir: Path) -> None:
        self.url, self.template, self.workdir = url, template, workdir
        self.made = count()

    async def fresh(self) -> Database:
        if self.template is not None:
            path = self.workdir / f"fresh-{next(self.made)}.db"
            shutil.copy(self.template, path)
            return Database(f"sqlite+aiosqlite:///{path}")
        assert self.url is not None
        db = Database(self.url)
        await truncate(db)
        return db


async def truncate(db: Database) -> None:
    from models import Base

    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with db.engine.begin() as conn:
        await conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


async def provider(db: Database, clock: ManualClock) -> tuple[Organization, str]:
    """The root, an admin token, and the catalogue's series, in a fresh database."""
    async with db.write() as session:
        root, _ = await organizations.ensure_root(session, "Provider", clock)
        token = await tokens.issue(session, root, "admin", Role.ADMIN, clock)
        session.add(Series(name="SG 61", prefix="+6561", country="SG", created_at=clock.now()))
    return root, token


STATE_OF = {"TERM": "ASSIGNED", "HELD": "RESERVED"}
STATE_OF.update((state, state) for state in STATES if state not in STATE_OF)


async def put_in_states(
    session: AsyncSession, caller: Caller, root: Organization, inventory: list[Made]
) -> None:
    """Each number moved into the state it was made for, through the domain's own moves."""

    def chosen(*states: str) -> list[str]:
        return [made.e164 for made in inventory if made.state in states]

    if reserved := chosen("RESERVED"):
        await numbers.reserve(
            session,
            caller,
            reserved,
            reserved_for_id=gid(root),
            remark="r",
            tag="t",
            expires_at=None,
        )
    if locked := chosen("LOCKED"):
        await numbers.lock(session, caller, locked, remark=None, expires_at=None)
    for e164 in chosen("ASSIGNED", "TERM", "HELD"):
        term = TermInput(3, None, 2) if e164 in chosen("TERM") else None
        await numbers.assign(
            session,
            caller,
            [e164],
            subscription_uuid=uuid.uuid4(),
            owner_uuid=root.uuid,
            remark=None,
            billing=term,
        )
    for e164 in chosen("HELD"):
        [row] = (await session.scalars(sa.select(Number).where(Number.e164 == e164))).all()
        assert row.subscription_uuid is not None
        await subscriptions.expired(session, caller, row.subscription_uuid, remark=None)
    if deleted := chosen("DELETED"):
        await numbers.delete(
            session, caller, deleted, reason=DeletionReason.RETURNED_TO_VENDOR, remark=None
        )


async def round_trip(backend: Backend, inventory: list[Made]) -> None:
    from web.app import create_app

    clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    source, target = await backend.fresh(), None
    try:
        source_root, source_token = await provider(source, clock)
        async with source.write() as session:
            viewer = await access.authenticate(session, source_token)
            assert viewer is not None
            caller = Caller(viewer, clock, Policy())
            for made in inventory:
                await numbers.add(
                    session,
                    caller,
                    [made.e164],
                    vendor="Vendor",
                    country=made.country,
                    organization_id=None,
                    details=made.details,
                )
            await put_in_states(session, caller, source_root, inventory)
        settings = Settings(_env_file=None, database_url="sqlite://")
        async with Api.open(
            create_app(settings, db=source, clock=clock), source_token, source, clock
        ) as api:
            before = await export(api)

        target = await backend.fresh()
        target_root, target_token = await provider(target, clock)
        # The same provider moving systems: its root keeps its id, so the rows naming it
        # (holder, owner) name it in the new one too.
        async with target.write() as session:
            await session.execute(
                sa.update(Organization)
                .where(Organization.id == target_root.id)
                .values(uuid=source_root.uuid)
            )
        async with Api.open(
            create_app(settings, db=target, clock=clock), target_token, target, clock
        ) as api:
            text = header_and_rows(before)
            report = await imported(api, text)
            assert (report["added"], report["bad_rows"]) == (len(inventory), []), report
            after = await export(api)
    finally:
        await source.dispose()
        if target is not None:
            await target.dispose()

    assert len(after) == len(before)
    assert {row["state"] for row in after} == {STATE_OF[made.state] for made in inventory}
    for old, new in zip(before, after, strict=True):
        assert old["organization"] == str(source_root.uuid)
        assert new == old


def header_and_rows(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=exports.COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


@pytest.fixture
def backend(database_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if database_url.startswith("sqlite"):
        yield Backend(None, request.getfixturevalue("sqlite_template"), tmp_path)
        return
    yield Backend(database_url, None, tmp_path)
    asyncio.run(_truncate_url(database_url))


async def _truncate_url(url: str) -> None:
    db = Database(url)
    try:
        await truncate(db)
    finally:
        await db.dispose()


@pytest.mark.slow
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(inventory=inventories())
def test_export_then_import_onto_a_fresh_database_reproduces_the_inventory(
    backend: Backend, inventory: list[Made]
) -> None:
    asyncio.run(round_trip(backend, inventory))


# ---- pure rules ----


@pytest.mark.slow
@given(text=st.text())
def test_the_spreadsheet_guard_on_text_cells_is_undone_exactly(text: str) -> None:
    guarded = exports.guard_text(text)
    assert guarded == text or guarded == "'" + text
    assert not guarded.startswith(tuple("=+-@\t\r\n \uff1d\uff0b\uff0d\uff20"))
    assert exports.unguard_text(guarded) == text


REGIONS = ["SG", "GB", "US", "DE", "IT", "FR", "AU", "IN", "BR", "JP", "CN", "CH", "MX", "ZA"]


@settings(max_examples=500)
@given(region=st.sampled_from(REGIONS), digits=st.text("0123456789", min_size=4, max_size=13))
def test_the_fast_validity_rule_agrees_with_phonenumbers(region: str, digits: str) -> None:
    rule = RegionRule(region)
    example = phonenumbers.example_number(region)
    assert example is not None
    # Half the time, a number that begins like a real one of the region.
    national = str(example.national_number)[: len(digits) // 2] + digits[len(digits) // 2 :]
    for candidate in (digits.lstrip("0"), national.lstrip("0")):
        if not candidate:
            continue
        number = phonenumbers.PhoneNumber(
            country_code=int(rule.calling_code), national_number=int(candidate)
        )
        expected = phonenumbers.is_valid_number_for_region(number, region)
        assert rule.valid(candidate) == expected, (region, candidate)


@settings(max_examples=400)
@given(
    region=st.sampled_from([*REGIONS, "MX", "AR", "RU", "CA"]),
    digits=st.text("0123456789", min_size=1, max_size=13),
)
def test_numbers_given_in_e164_normalise_as_the_parser_gives_them(region: str, digits: str) -> None:
    """phone.normalise skips the parser for valid E.164 input: it must agree with it."""
    example = phonenumbers.example_number(region)
    assert example is not None
    national = str(example.national_number)[: len(digits) // 2] + digits[len(digits) // 2 :]
    for raw in (f"+{example.country_code}{national}", f"+{digits}"):
        try:
            parsed = phonenumbers.parse(raw)
        except phonenumbers.NumberParseException:
            assert phone.normalise(raw) is None, raw
            continue
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        assert phone.normalise(raw) == e164, raw
        valid = phonenumbers.is_valid_number(parsed)
        assert phone.normalise_valid(raw) == (e164 if valid else None), raw


# ---- the CLI ----


def numbra(args: list[str], url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NUMBRA, *args],
        env=environment(url),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def cli_database(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A database with a root, for `numbra` processes; PostgreSQL's is emptied after."""
    if not database_url.startswith("sqlite"):
        asyncio.run(_truncate_url(database_url))
    done = numbra(["migrate"], database_url, tmp_path)
    assert done.returncode == 0, done.stderr
    yield database_url
    if not database_url.startswith("sqlite"):
        asyncio.run(_truncate_url(database_url))


@pytest.mark.slow
def test_numbra_import_reports_bad_rows_and_numbra_export_writes_the_csv(
    cli_database: str, tmp_path: Path
) -> None:
    source = tmp_path / "numbers.csv"
    source.write_text(
        "number,vendor,country,sku,state\n"
        "+6561000001-+6561000003,Singtel,SG,DID,\n"
        "+6561000009,Singtel,SG,DID,LOCKED\n"
        "+6561000002,Singtel,SG,DID,\n"
    )
    done = numbra(["import", str(source)], cli_database, tmp_path)
    assert done.returncode == 1, done.stderr
    assert "line 4: +6561000002: +6561000002 is named twice" in done.stdout
    assert "nothing was written" in done.stdout

    done = numbra(["import", str(source), "--partial"], cli_database, tmp_path)
    assert done.returncode == 1, done.stderr
    assert "added 4 numbers" in done.stdout

    done = numbra(["export", "--filter", "states=LOCKED"], cli_database, tmp_path)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [(row["number"], row["state"]) for row in rows] == [("+6561000009", "LOCKED")]

    done = numbra(
        ["export", "--filter", "pattern=+6561*", "--filter", "states=SOLD"], cli_database, tmp_path
    )
    assert done.returncode == 2
    assert "'SOLD'" in done.stderr

    done = numbra(
        ["import", str(source), "--dry-run", "--org", str(uuid.uuid4())], cli_database, tmp_path
    )
    assert done.returncode == 1
    assert "No organization" in done.stderr


@pytest.mark.slow
def test_numbra_import_refuses_a_file_over_the_cap_in_one_line(
    cli_database: str, tmp_path: Path
) -> None:
    """80 ranges of 100,000 numbers: refused before expanding any, exit 2, nothing written."""
    source = tmp_path / "probe.csv"
    ranges = [f"+{6561000000 + n * 100_000}-+{6561099999 + n * 100_000}" for n in range(80)]
    source.write_text("number,vendor,country,sku\n" + "".join(f"{r},V,SG,D\n" for r in ranges))

    for extra in ([], ["--partial"], ["--dry-run"]):
        done = numbra(["import", str(source), *extra], cli_database, tmp_path)
        assert done.returncode == 2, (done.stdout, done.stderr)
        [line] = done.stderr.strip().splitlines()
        assert line.startswith("line 22: "), line
        assert "NUMBRA_MAX_IMPORT_NUMBERS" in line

    done = numbra(["export"], cli_database, tmp_path)
    assert done.stdout.strip().splitlines()[1:] == []


def peak_rss_kib(args: list[str], url: str, cwd: Path) -> tuple[int, str]:
    """Run `numbra ARGS`; return its own peak resident set size and what it printed."""
    out, err = cwd / "stdout.log", cwd / "stderr.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [NUMBRA, *args], env=environment(url), cwd=cwd, stdout=stdout, stderr=stderr
        )
        _pid, status, usage = os.wait4(process.pid, 0)
    # Reaped by wait4 (for its resource usage): Popen must know, or it warns it still runs.
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.returncode == 0, err.read_text()
    return usage.ru_maxrss, out.read_text()


@pytest.mark.slow
def test_numbra_import_reads_a_sheet_with_a_mapping(cli_database: str, tmp_path: Path) -> None:
    source = tmp_path / "stock.xlsx"
    rows = [
        ("DID", "Carrier", "country", "sku"),
        *((f"+656100000{n}", "Singtel", "SG", "D") for n in (1, 2)),
    ]
    source.write_bytes(workbook(*rows, first="Cover"))
    args = ["import", str(source), "--sheet", "Numbers", "--map", "number=DID"]
    done = numbra([*args, "--map", "vendor=Carrier"], cli_database, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "added 2 numbers" in done.stdout

    lacking = numbra([*args, "--map", "vendor=Supplier"], cli_database, tmp_path)
    assert lacking.returncode == 1, lacking.stdout + lacking.stderr
    assert "line 1: -: the mapping names column 'Supplier' (for vendor)" in lacking.stdout
    assert "0 rows" in lacking.stdout

    missing = numbra(["import", str(source), "--sheet", "Stock"], cli_database, tmp_path)
    assert missing.returncode == 2
    assert "no sheet 'Stock'" in missing.stderr


# The bound is a property of reading in chunks, which both databases share; SQLite's
# is the configuration that must hold a million numbers in one process.
@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_importing_100000_rows_takes_bounded_memory(cli_database: str, tmp_path: Path) -> None:
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    small.write_text("number,vendor,country,sku\n+6561000000,Singtel,SG,DID\n")
    with large.open("w") as out:
        out.write("number,vendor,country,sku,capabilities,state,notes\n")
        for n in range(1, 100_001):
            state = "LOCKED" if n % 10 == 0 else ""
            out.write(f"+6561{n:06d},Singtel,SG,DID-{n % 5},VOICE|SMS,{state},row {n}\n")

    baseline, _ = peak_rss_kib(["import", str(small)], cli_database, tmp_path)
    peak, printed = peak_rss_kib(["import", str(large)], cli_database, tmp_path)

    assert "added 100000 numbers" in printed
    # Its rows as lists of cells alone take ~50 MB; a stream holds three chunks (~40 MB
    # with the numbers seen so far, the SQLite cache and the arena around them).
    assert (peak - baseline) / 1024 < 60, f"baseline {baseline} KiB, peak {peak} KiB"

    # Such rows as a workbook (other numbers): streamed too (openpyxl's read-only mode),
    # within the same bar.
    sheet = tmp_path / "large.xlsx"
    with large.open() as text:
        rows = [[cell.replace("+6561", "+6562") for cell in row] for row in csv.reader(text)]
    sheet.write_bytes(workbook(*rows))
    del rows
    peak, printed = peak_rss_kib(["import", str(sheet)], cli_database, tmp_path)
    assert "added 100000 numbers" in printed
    assert (peak - baseline) / 1024 < 60, f"baseline {baseline} KiB, xlsx peak {peak} KiB"
