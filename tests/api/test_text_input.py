"""Text input: a line (names, codes, tags, e-mails) holds no control character or line
break; free text (notes, remarks) may run over lines but holds no other control character.
Every text field of every mutation, and of an import file, refuses them as VALIDATION."""

import uuid
from typing import Any

import pytest

from models import OrganizationKind
from tests.support.api import Api, gid

N1, N2 = "+6561000101", "+6561000102"
# A line break ends a mail header; ESC starts a terminal's escape sequence; NEL and
# U+2028 break lines as Python's str.splitlines() (and the mail library) read them.
LINE_BREAKING = ["Cust A1\nX-Injected: yes", "a\rb", "a\tb", "\x1b[31mred", "a\x85b", "a\u2028b"]
FREE_TEXT_REFUSED = ["\x1b[31mred", "bell\x07", "a\x7fb", "a\x85b"]
FREE_TEXT_ALLOWED = "first line\nsecond line\r\nthird\tcolumn\u2028"

INPUT_TYPES = {
    "subscriptionExpired": "SubscriptionEventInput",
}


async def mutation(api: Api, name: str, input: dict[str, Any]) -> list[dict[str, Any]]:
    """The userErrors of a mutation."""
    type_name = INPUT_TYPES.get(name, name[0].upper() + name[1:] + "Input")
    query = (
        f"mutation($input: {type_name}!) {{ {name}(input: $input) "
        "{ userErrors { code message field } } }"
    )
    errors: list[dict[str, Any]] = (await api.gql(query, {"input": input}))[name]["userErrors"]
    return errors


NUMBER = {"numbers": [N1], "vendor": "V", "country": "SG", "sku": "DID"}


def one_line_cases(root: str, customer: str) -> list[tuple[str, dict[str, Any], str]]:
    """(mutation, input but the field, field) for every one-line text field."""
    return [
        ("createOrganization", {"kind": "CUSTOMER", "name": "Ok"}, "name"),
        ("createOrganization", {"kind": "CUSTOMER", "name": "Ok"}, "billingEmail"),
        ("createOrganization", {"kind": "CUSTOMER", "name": "Ok"}, "ownerEmail"),
        ("createOrganization", {"kind": "CUSTOMER", "name": "Ok"}, "supportEmail"),
        ("updateOrganization", {"id": customer}, "name"),
        ("updateOrganization", {"id": customer}, "billingEmail"),
        ("createToken", {"organizationId": root, "role": "VIEWER"}, "name"),
        ("createSeries", {"prefix": "+6562", "country": "SG"}, "name"),
        ("addNumbers", NUMBER | {"numbers": [N2]}, "vendor"),
        ("addNumbers", NUMBER | {"numbers": [N2]}, "sku"),
        ("addNumbers", NUMBER | {"numbers": [N2]}, "routing"),
        ("addNumbers", NUMBER | {"numbers": [N2]}, "visibleToDomain"),
        ("addNumbers", NUMBER | {"numbers": [N2]}, "tag"),
        ("editNumbers", {"numbers": [N1]}, "sku"),
        ("editNumbers", {"numbers": [N1]}, "routing"),
        ("editNumbers", {"numbers": [N1]}, "visibleToDomain"),
        ("editNumbers", {"numbers": [N1]}, "tag"),
        ("reserveNumbers", {"numbers": [N1], "reservedForId": customer}, "tag"),
    ]


def free_text_cases(customer: str) -> list[tuple[str, dict[str, Any], str]]:
    """(mutation, input but the field, field) for every free-text field."""
    subscription = {"subscriptionUuid": str(uuid.uuid4())}
    return [
        ("addNumbers", NUMBER | {"numbers": [N2]}, "notes"),
        ("editNumbers", {"numbers": [N1]}, "notes"),
        ("reserveNumbers", {"numbers": [N1], "reservedForId": customer}, "remark"),
        ("lockNumbers", {"numbers": [N1]}, "remark"),
        ("deleteNumbers", {"numbers": [N1], "reason": "FAULTY"}, "remark"),
        ("allocateNumbers", {"organizationId": customer, "numbers": [N1]}, "remark"),
        ("subscriptionExpired", subscription, "remark"),
    ]


@pytest.fixture
async def ids(api: Api) -> tuple[str, str]:
    root = await api.root()
    customer = await api.org("Customer", OrganizationKind.CUSTOMER, root)
    assert await mutation(api, "addNumbers", NUMBER) == []
    return gid(root), gid(customer)


async def test_a_line_refuses_control_characters_and_line_breaks_in_every_field(
    api: Api, ids: tuple[str, str]
) -> None:
    for name, input, field in one_line_cases(*ids):
        for text in LINE_BREAKING:
            errors = await mutation(api, name, input | {field: text})
            refusals = [e for e in errors if e["field"] == ["input", field]]
            # An e-mail address is also told it is none.
            assert {e["code"] for e in refusals} == {"VALIDATION"}, (name, field, text, errors)
            assert any("control characters or line breaks" in e["message"] for e in refusals)


async def test_free_text_runs_over_lines_but_refuses_other_control_characters(
    api: Api, ids: tuple[str, str]
) -> None:
    for name, input, field in free_text_cases(ids[1]):
        for text in FREE_TEXT_REFUSED:
            errors = await mutation(api, name, input | {field: text})
            refusals = [e for e in errors if e["field"] == ["input", field]]
            assert [e["code"] for e in refusals] == ["VALIDATION"], (name, field, text, errors)
            assert "control characters" in refusals[0]["message"]
    assert await mutation(api, "editNumbers", {"numbers": [N1], "notes": FREE_TEXT_ALLOWED}) == []
    assert await mutation(api, "lockNumbers", {"numbers": [N1], "remark": FREE_TEXT_ALLOWED}) == []


async def test_an_import_file_refuses_control_characters_in_its_text_cells(api: Api) -> None:
    rows = [
        ("+6561000201", "V\x1b", "DID", "", "ok"),
        ("+6561000202", "V", "DID\x0b", "", "ok"),
        ("+6561000203", "V", "DID", "a\x85b", "ok"),
        ("+6561000204", "V", "DID", "", "bell\x07"),
        ("+6561000205", "V", "DID", "", '"line\nbreak"'),
    ]
    text = "number,vendor,country,sku,tag,notes\n" + "".join(
        f"{number},{vendor},SG,{sku},{tag},{notes}\n" for number, vendor, sku, tag, notes in rows
    )

    report = (await api.upload_csv(text, partial=True)).json()

    reasons = {bad["number"]: bad["reason"] for bad in report["bad_rows"]}
    assert set(reasons) == {"+6561000201", "+6561000202", "+6561000203", "+6561000204"}
    assert all("control characters" in reason for reason in reasons.values()), reasons
    assert report["added"] == 1, report
