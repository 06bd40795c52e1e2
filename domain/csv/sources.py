"""Import files: CSV text or a sheet of an .xlsx workbook, read as records of text cells.

Either is read twice (the numbers it names are summed before any row is checked), so
a source opens a fresh pass each time. A pass is what `csv.reader` is: an iterator of
records, each a list of cells, whose `line_num` counts the lines read so far. An
.xlsx sheet is streamed (openpyxl's read-only mode): a million rows are never held.
"""

import csv
import datetime
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Protocol, TextIO
from xml.etree import ElementTree

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException

from domain.errors import DomainError, ErrorCode

# What every .xlsx (a zip archive) starts with.
XLSX_MAGIC = b"PK\x03\x04"
MAX_UNPACK_RATIO = 100
# What openpyxl raises for a broken workbook, on opening it or reading a row.
UNREADABLE = (
    InvalidFileException,
    zipfile.BadZipFile,
    ElementTree.ParseError,
    KeyError,
    ValueError,
    TypeError,
    IndexError,
    OSError,
)


class Records(Protocol):
    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...

    def __next__(self) -> list[str]: ...


class Source(Protocol):
    def records(self) -> Records:
        """A new pass over the file's records, from its first line."""
        ...


class CsvText:
    """A seekable CSV text: each pass starts where the text stood when it was given."""

    def __init__(self, text: TextIO) -> None:
        self.text = text
        self.start = text.tell()

    def records(self) -> Records:
        self.text.seek(self.start)
        return csv.reader(self.text)


@dataclass
class Workbook:
    """A sheet of an .xlsx file (`sheet`, or the first): a seekable binary file."""

    file: IO[bytes]
    sheet: str | None = None

    def check(self) -> None:
        """VALIDATION if the file is no workbook or has no such sheet; before any row."""
        self._open().close()

    def records(self) -> Records:
        return _SheetRecords(self._open(), self.sheet)

    def rows(self) -> int:
        """The rows the sheet says it has (its dimension), for a progress bar; 0 if unsaid."""
        book = self._open()
        try:
            worksheet = book[self.sheet] if self.sheet is not None else book.worksheets[0]
            return worksheet.max_row or 0
        finally:
            book.close()

    def _open(self) -> openpyxl.Workbook:
        self._refuse_bomb()
        self.file.seek(0)
        try:
            book = openpyxl.load_workbook(self.file, read_only=True, data_only=True)
        except UNREADABLE as exc:
            # A zip that is no workbook (KeyError: a part missing), or a broken one.
            reason = f"the file cannot be read as an .xlsx workbook: {type(exc).__name__} {exc}"
            raise DomainError.one(ErrorCode.VALIDATION, reason, ["file"]) from exc
        if self.sheet is not None and self.sheet not in book.sheetnames:
            book.close()
            names = ", ".join(map(repr, book.sheetnames))
            reason = f"the workbook has no sheet {self.sheet!r}; its sheets: {names}"
            raise DomainError.one(ErrorCode.VALIDATION, reason, ["sheet"])
        return book

    def _refuse_bomb(self) -> None:
        """VALIDATION for an archive that would unpack to far more than it weighs: a
        spreadsheet's XML packs ~10:1, a zip bomb 1000:1 and more."""
        self.file.seek(0)
        try:
            with zipfile.ZipFile(self.file) as archive:
                unpacked = sum(item.file_size for item in archive.infolist())
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            reason = f"the file cannot be read as an .xlsx workbook: {exc}"
            raise DomainError.one(ErrorCode.VALIDATION, reason, ["file"]) from exc
        packed = self.file.seek(0, 2)
        if unpacked > MAX_UNPACK_RATIO * packed + (1 << 20):
            reason = (
                f"the workbook would unpack to {unpacked:,} bytes from {packed:,}: "
                f"more than {MAX_UNPACK_RATIO} times its size is refused"
            )
            raise DomainError.one(ErrorCode.VALIDATION, reason, ["file"])


class _SheetRecords:
    """A sheet's rows as CSV records: every cell as text, rows as wide as the header.

    A spreadsheet stores no trailing empty cells, so a row shorter than the header is
    padded; cells past the header's last column are kept only if one holds something
    (then the row is reported as too wide, as in a CSV file).
    """

    def __init__(self, book: openpyxl.Workbook, sheet: str | None) -> None:
        self._book = book
        worksheet = book[sheet] if sheet is not None else book.worksheets[0]
        self._rows = worksheet.iter_rows(values_only=True)
        self._width: int | None = None
        self.line_num = 0

    def __iter__(self) -> Iterator[list[str]]:
        return self

    def __next__(self) -> list[str]:
        try:
            values = next(self._rows)
        except StopIteration:
            self._book.close()
            raise
        except UNREADABLE as exc:
            # Reported as a CSV file's unreadable text is: on its line, reading no more.
            self._book.close()
            raise csv.Error(f"{type(exc).__name__} {exc}") from exc
        self.line_num += 1
        cells = [_text(value) for value in values]
        while cells and not cells[-1]:
            cells.pop()
        if self._width is None:
            self._width = len(cells)
        elif len(cells) < self._width and any(cells):
            cells.extend([""] * (self._width - len(cells)))
        return cells


def _text(value: object) -> str:
    """A cell as the CSV export would write it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        # A number typed into a cell: 6561234567, not 6561234567.0.
        return str(int(value))
    if isinstance(value, datetime.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
        return moment.isoformat()
    return str(value)


def is_xlsx(head: bytes) -> bool:
    return head.startswith(XLSX_MAGIC)
