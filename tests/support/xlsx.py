"""Workbooks for import tests, written as a spreadsheet program would save them."""

import io
from collections.abc import Sequence
from typing import Any

import openpyxl


def workbook(*rows: Sequence[Any], sheet: str = "Numbers", first: str | None = None) -> bytes:
    """An .xlsx file holding `rows` on the sheet `sheet` (after a sheet `first`, if given)."""
    book = openpyxl.Workbook(write_only=True)
    if first is not None:
        book.create_sheet(first).append(("nothing", "here"))
    page = book.create_sheet(sheet)
    for row in rows:
        page.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
