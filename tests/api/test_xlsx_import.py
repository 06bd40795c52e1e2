"""Import from another system: .xlsx workbooks and a column mapping, over HTTP and the CLI.

A sheet is read as a CSV file is (the same checks, the same report, line numbers
being the sheet's rows); a mapping renames the file's headers to ours, and a mapping
naming a header the file lacks refuses the file before any row is read.
"""

import io
import json
import zipfile
from typing import Any

import pytest

from domain.csv import sources
from tests.support.api import Api
from tests.support.xlsx import workbook

HEADER = ("number", "vendor", "country", "sku")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SEARCH = """{ numbers(first: 50) { edges { node { e164 vendor sku notes } } } }"""


async def upload(
    api: Api, content: bytes, status: int, *, name: str = "numbers.xlsx", **form: str
) -> dict[str, Any]:
    response = await api.client.post(
        "/import/numbers",
        data=form,
        files={"file": (name, content, XLSX)},
        headers=api.auth(None),
    )
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def held(api: Api) -> dict[str, dict[str, Any]]:
    edges = (await api.gql(SEARCH))["numbers"]["edges"]
    return {edge["node"]["e164"]: edge["node"] for edge in edges}


async def test_a_sheet_goes_in_as_a_csv_file_would_with_typed_cells_read_as_text(
    api: Api,
) -> None:
    content = workbook(
        (*HEADER, "notes"),
        ("+6561000001", "Singtel", "SG", "DID-SG", "first"),
        # A number typed as a number, and a sku typed as one: read as the text they show.
        (6561000002, "Singtel", "sg", 42, None),
        ("+6561000010-+6561000012", "Singtel", "SG", "DID-SG"),
        (None, None, None, None),
    )
    report = await upload(api, content, 200)
    assert (report["rows"], report["added"], report["bad_rows"]) == (3, 5, [])
    numbers = await held(api)
    assert set(numbers) == {
        "+6561000001",
        "+6561000002",
        "+6561000010",
        "+6561000011",
        "+6561000012",
    }
    assert numbers["+6561000002"]["sku"] == "42"
    assert numbers["+6561000001"]["notes"] == "first"


async def test_bad_rows_are_reported_on_their_sheet_row_and_an_atomic_sheet_writes_nothing(
    api: Api,
) -> None:
    content = workbook(
        HEADER,
        ("+6561000001", "Singtel", "SG", "DID-SG"),
        ("12345", "Singtel", "SG", "DID-SG"),
        ("+6561000001", "Singtel", "SG", "DID-SG"),
        ("+6561000003", "Singtel", "SG", "DID-SG", "a cell past the header"),
    )
    report = await upload(api, content, 422)
    assert [bad["line"] for bad in report["bad_rows"]] == [3, 4, 5]
    assert "named twice: first on line 2" in report["bad_rows"][1]["reason"]
    assert "5 cells" in report["bad_rows"][2]["reason"]
    assert report["added"] == 0
    assert await held(api) == {}


async def test_the_sheet_named_is_read_and_a_missing_one_is_refused_naming_the_sheets(
    api: Api,
) -> None:
    content = workbook(HEADER, ("+6561000001", "Singtel", "SG", "D"), first="Cover")
    # The first sheet is the cover: its header is no import's.
    cover = await upload(api, content, 422)
    assert cover["bad_rows"][0]["line"] == 1
    assert "missing column" in cover["bad_rows"][0]["reason"]

    report = await upload(api, content, 200, sheet="Numbers")
    assert report["added"] == 1

    missing = await upload(api, content, 400, sheet="Stock")
    [error] = missing["errors"]
    assert error["field"] == ["sheet"]
    assert "'Cover', 'Numbers'" in error["message"]


async def test_a_mapping_reads_our_columns_from_the_files_own_headers(api: Api) -> None:
    mapping = {"number": "DID", "vendor": "Carrier", "sku": "Product"}
    csv_text = "DID,Carrier,Country,Product\n+6561000001,Singtel,SG,DID-SG\n"
    response = await api.client.post(
        "/import/numbers",
        data={"mapping": json.dumps(mapping)},
        files={"file": ("numbers.csv", csv_text.encode(), "text/csv")},
        headers=api.auth(None),
    )
    assert response.status_code == 200, response.text
    sheet = workbook(("Carrier", "DID", "country", "Product"), ("M1", "+6561000002", "SG", "X"))
    report = await upload(api, sheet, 200, mapping=json.dumps(mapping))
    assert report["added"] == 1
    numbers = await held(api)
    assert numbers["+6561000001"]["vendor"] == "Singtel"
    assert (numbers["+6561000002"]["vendor"], numbers["+6561000002"]["sku"]) == ("M1", "X")


async def test_a_mapping_naming_a_header_the_file_lacks_refuses_it_before_any_row(
    api: Api,
) -> None:
    mapping = {"number": "DID", "vendor": "Supplier"}
    content = workbook(("DID", "Carrier", "country", "sku"), ("+6561000001", "S", "SG", "D"))
    report = await upload(api, content, 422, mapping=json.dumps(mapping))
    [bad] = report["bad_rows"]
    assert bad["line"] == 1
    assert "'Supplier' (for vendor)" in bad["reason"]
    assert (report["rows"], report["added"]) == (0, 0)
    assert await held(api) == {}


@pytest.mark.parametrize(
    ("mapping", "field", "says"),
    [
        ("[1, 2]", ["mapping"], "JSON object"),
        ('{"number": 7}', ["mapping"], "JSON object"),
        ('{"carrier": "Vendor"}', ["mapping", "carrier"], "not an importable column"),
        ('{"number": " "}', ["mapping", "number"], "names no column"),
        ('{"number": "A", "vendor": "a"}', ["mapping", "vendor"], "both mapped"),
    ],
)
async def test_a_bad_mapping_is_a_400_naming_it_and_nothing_is_read(
    api: Api, mapping: str, field: list[str], says: str
) -> None:
    content = workbook(HEADER, ("+6561000001", "Singtel", "SG", "D"))
    answer = await upload(api, content, 400, mapping=mapping)
    [error] = answer["errors"]
    assert error["field"] == field
    assert says in error["message"]
    assert await held(api) == {}


async def test_files_that_are_no_workbook_are_a_400_never_a_500(api: Api) -> None:
    broken = workbook(HEADER)[:200]
    answer = await upload(api, broken, 400)
    assert "cannot be read as an .xlsx workbook" in answer["errors"][0]["message"]

    no_workbook = io.BytesIO()
    with zipfile.ZipFile(no_workbook, "w") as archive:
        archive.writestr("hello.txt", "not a spreadsheet")
    answer = await upload(api, no_workbook.getvalue(), 400)
    assert answer["errors"][0]["field"] == ["file"]

    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (200 << 20))
    answer = await upload(api, bomb.getvalue(), 400)
    assert "would unpack to" in answer["errors"][0]["message"]
    assert await held(api) == {}


async def test_a_sheet_is_refused_for_a_csv_file(api: Api) -> None:
    response = await api.client.post(
        "/import/numbers",
        data={"sheet": "Numbers"},
        files={"file": ("n.csv", b"number,vendor,country,sku\n", "text/csv")},
        headers=api.auth(None),
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == ["sheet"]


def test_cells_are_read_as_the_export_writes_them() -> None:
    content = workbook(("a", "b", "c", "d"), (True, 1.5, 7.0, None))
    records = sources.Workbook(io.BytesIO(content)).records()
    assert next(records) == ["a", "b", "c", "d"]
    # A row's empty cells at its end are not stored: it is read as wide as the header.
    assert next(records) == ["true", "1.5", "7", ""]
    assert records.line_num == 2
