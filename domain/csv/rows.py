"""Reading an import file: the header, then each record checked on its own.

A record is checked as addNumbers checks its input: the columns, the number (or
range) valid for the row's country, the descriptive fields. What the database must
answer (is a number there already?) is left to `domain.csv.imports`.
"""

import csv
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, TextIO

import phonenumbers

from domain import phone
from domain.csv import exports, parameters
from domain.details import NumberDetails, capability_mask
from domain.errors import DomainError, Problems
from domain.text import refusal
from models import Capability, NumberState

REQUIRED = ("number", "vendor", "country", "sku")
OPTIONAL = (
    "capabilities",
    "routing",
    "golden",
    "ported_in",
    "visible_to_domain",
    "tag",
    "notes",
    "state",
)
# An export's other columns are read past, so export → import round-trips.
KNOWN = frozenset(REQUIRED + OPTIONAL + exports.COLUMNS)
IMPORTABLE_STATES = (NumberState.AVAILABLE, NumberState.LOCKED)
MAX_RANGE = 100_000
# Columns narrower than the API's 200-character rule for text.
_COLUMN_LENGTH = {"vendor": 100, "sku": 100}
# Distinct field combinations remembered; bulk files repeat a few of them.
_FIELDS_CACHE_SIZE = 10_000

# A range is two numbers, each in any notation a single number may be written in,
# joined by a dash with space on both sides, or by a dash just before the second's "+":
# "+6561000000-+6561000999", "+65 6100 0000 - +65 6100 0999", "6100 0000 - 6100 0999".
_DASHES = "-\u2013\uff0d"  # hyphen-minus, en dash, full-width hyphen-minus
_RANGE_DASH = re.compile(rf"\s+[{_DASHES}]\s+|\s*[{_DASHES}]\s*(?=[+\uff0b])")


@dataclass(frozen=True)
class BadRow:
    line: int
    number: str | None
    reason: str


class Fields(NamedTuple):
    """A row's columns other than its number, as they are stored."""

    state: NumberState
    country: str
    sku: str
    vendor: str
    capabilities: int
    routing: str | None
    golden: bool
    ported_in: bool
    visible_to_domain: str | None
    tag: str | None
    notes: str | None


class Row(NamedTuple):
    line: int
    # One number, or the numbers of a range, in E.164.
    numbers: Sequence[str]
    fields: Fields


@dataclass
class Batch:
    rows: list[Row] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)
    records: int = 0


@dataclass(frozen=True)
class _Checked:
    """What the cells other than the number come to: fields, or reasons they are wrong."""

    fields: Fields | None
    # The country numbers are checked against, if it is one.
    country: str | None
    reasons: tuple[str, ...]


class RowReader:
    """The rows of a CSV text, a batch at a time. `header_problem` says if there are none."""

    def __init__(self, text: TextIO) -> None:
        self._records = csv.reader(text)
        self._done = False
        self._checked: dict[tuple[str, ...], _Checked] = {}
        self.header_problem: BadRow | None = None
        self._columns = self._header()
        # The cells rows may share: all but the number and the notes (often one a row).
        shared = [at for name, at in self._columns.items() if name not in ("number", "notes")]
        self._shared = operator.itemgetter(*shared) if shared else None

    def _header(self) -> dict[str, int]:
        try:
            names = [name.strip().lower() for name in next(self._records, [])]
        except (csv.Error, UnicodeDecodeError) as exc:
            self.header_problem = BadRow(1, None, f"the file cannot be read as UTF-8 CSV: {exc}")
            return {}
        missing = [name for name in REQUIRED if name not in names]
        unknown = [name for name in names if name not in KNOWN]
        repeated = sorted({name for name in names if names.count(name) > 1})
        reasons = []
        if missing:
            reasons.append(f"missing column {', '.join(missing)}")
        if unknown:
            reasons.append(
                f"unknown column {', '.join(map(repr, unknown))}; "
                f"importable: {', '.join(REQUIRED + OPTIONAL)}"
            )
        if repeated:
            reasons.append(f"column {', '.join(repeated)} given twice")
        if reasons:
            self.header_problem = BadRow(1, None, "; ".join(reasons))
            return {}
        return {name: index for index, name in enumerate(names)}

    def take(self, numbers_wanted: int) -> Batch | None:
        """Whole rows naming about `numbers_wanted` numbers; None when the text is read."""
        if self._done or self.header_problem:
            return None
        batch = Batch()
        named = 0
        while named < numbers_wanted and batch.records < numbers_wanted:
            # Where the record starts: a quoted cell may span lines.
            line = self._records.line_num + 1
            try:
                cells = next(self._records, None)
            except (csv.Error, UnicodeDecodeError) as exc:
                batch.bad.append(BadRow(line, None, f"unreadable from here on: {exc}"))
                cells = None
            if cells is None:
                self._done = True
                break
            if not any(cells):
                continue
            batch.records += 1
            row = self._row(line, cells, batch.bad)
            if row is not None:
                batch.rows.append(row)
                named += len(row.numbers)
        return batch if batch.records or batch.bad else None

    def _row(self, line: int, cells: list[str], bad: list[BadRow]) -> Row | None:
        number_at = self._columns["number"]
        number = cells[number_at].strip() if number_at < len(cells) else ""
        if len(cells) != len(self._columns):
            reason = f"{len(cells)} cells, but the first line names {len(self._columns)} columns"
            bad.append(BadRow(line, number or None, reason))
            return None
        # Rows that share their other cells share their checked fields.
        assert self._shared is not None
        key = self._shared(cells)
        checked = self._checked.get(key)
        if checked is None:
            if len(self._checked) >= _FIELDS_CACHE_SIZE:
                self._checked.clear()
            cell = {name: cells[at] for name, at in self._columns.items() if name != "notes"}
            checked = self._checked[key] = _check_fields(cell)
        reasons = list(checked.reasons)
        notes = self._notes(cells, reasons)
        numbers: Sequence[str] = []
        if checked.country is not None:
            numbers = self._numbers(number, checked.country, reasons)
        if reasons or checked.fields is None:
            bad.append(BadRow(line, number or None, "; ".join(reasons)))
            return None
        fields = checked.fields if notes is None else checked.fields._replace(notes=notes)
        return Row(line, numbers, fields)

    def _notes(self, cells: list[str], reasons: list[str]) -> str | None:
        """The row's notes, checked by addNumbers' rule."""
        at = self._columns.get("notes")
        notes = exports.unguard_text(cells[at]) or None if at is not None else None
        if notes is not None:
            _add_reasons(NumberDetails(notes=notes), reasons)
        return notes

    def first_over(self, cap: int) -> BadRow | None:
        """The row by which the text names more than `cap` numbers; None if it never does.

        Only the number cells are read, and a range counts as the numbers it would
        expand to, without expanding it. Rows that are bad for other reasons count as
        what they name (one number or a range), unreadable text as nothing: reading
        the rows (`take`) reports those.
        """
        if self.header_problem is not None:
            return None
        number_at, country_at = self._columns["number"], self._columns["country"]
        needed = max(number_at, country_at) + 1
        records = self._records
        named = 0
        while True:
            line = records.line_num + 1
            try:
                cells = next(records, None)
            except (csv.Error, UnicodeDecodeError):
                return None
            if cells is None:
                return None
            if len(cells) < needed:
                continue
            number = cells[number_at]
            # A million rows are read here before any is checked: most name one number.
            if not number:
                continue
            if not any(dash in number for dash in _DASHES):
                named += 1
            else:
                number = number.strip()
                named += _named(number, cells[country_at].strip().upper())
            if named > cap:
                reason = (
                    f"by this row the file names more than {cap:,} numbers, the most one "
                    "import may (NUMBRA_MAX_IMPORT_NUMBERS); nothing was imported: "
                    "split the file"
                )
                return BadRow(line, number.strip() or None, reason)

    def _numbers(self, text: str, country: str, reasons: list[str]) -> Sequence[str]:
        """The numbers a cell names: one, or a range "+6561000000 - +6561000999"."""
        if not text:
            reasons.append("number is empty")
            return []
        ends = range_ends(text, country)
        if ends is None:
            e164 = self._valid(text, country)
            if e164 is None:
                reasons.append(_not_of_country(text, country))
                return []
            return [e164]
        first, last = ends
        span = _span(first, last)
        if isinstance(span, str):
            reasons.append(span)
            return []
        start, end = span
        numbers = [f"+{n:0{len(first) - 1}d}" for n in range(start, end + 1)]
        invalid = [n for n in numbers if self._valid(n, country, exact=True) is None]
        if not invalid:
            return numbers
        reasons.append(some(invalid, f"not valid for {country}"))
        return []

    def _valid(self, raw: str, country: str, exact: bool = False) -> str | None:
        """E.164 of a valid number of `country`, as phone.normalise_for_country gives it.

        A cell already in E.164 of the country is checked without parsing it
        (parsing costs ~100 µs a number here, minutes a million). `exact`: only
        `raw` itself will do (a range's numbers), so other notations are not tried.
        """
        rule = phone.rule_for(country)
        if phone.CANONICAL.fullmatch(raw) is not None:
            national = raw[1 + len(rule.calling_code) :]
            of_country = raw[1:].startswith(rule.calling_code)
            # A leading zero is kept in some countries' numbers: left to the parser.
            if of_country and national[:1] != "0":
                if rule.valid(national):
                    return raw
                if exact:
                    return None
            elif exact and not of_country:
                return None
        elif exact:
            return None
        found = phone.normalise_for_country(raw, country)
        return found if not exact or found == raw else None


def range_ends(text: str, country: str) -> tuple[str, str] | None:
    """The first and last number of a cell written as a range, in E.164; None if it is not.

    An end in international notation is taken as written ("+", "00" and digits between
    separators), unchecked: the range's numbers are checked one by one. An end in
    national notation must be a valid number of `country`. A cell that is not two
    such ends joined by a range's dash is a single number, or no number at all.
    """
    if _RANGE_DASH.search(text) is None:
        return None
    parts = _RANGE_DASH.split(text)
    if len(parts) != 2:
        return None
    first, last = (
        phone.as_written(part) or phone.normalise_for_country(part, country) for part in parts
    )
    if first is None or last is None:
        return None
    return first, last


def _span(first: str, last: str) -> tuple[int, int] | str:
    """A range's first and last number as integers, or why it is not one to expand."""
    start, end = int(first[1:]), int(last[1:])
    if len(first) != len(last):
        return f"range ends {first} and {last} differ in length"
    if end < start:
        return f"range runs backwards: {first} is after {last}"
    if end - start >= MAX_RANGE:
        return f"range of {end - start + 1} numbers; at most {MAX_RANGE} a row"
    return start, end


def _named(cell: str, country: str) -> int:
    """How many numbers a number cell names: a range's, if it is one to expand, else 1."""
    ends = range_ends(cell, country)
    span = _span(*ends) if ends is not None else None
    if span is None or isinstance(span, str):
        return 1
    return span[1] - span[0] + 1


def first_over(text: TextIO, cap: int) -> BadRow | None:
    """The row by which a CSV text names more than `cap` numbers (see RowReader.first_over)."""
    return RowReader(text).first_over(cap)


def some(numbers: Sequence[str], what: str) -> str:
    """`what` said of one number, or of the first of several in a range."""
    if len(numbers) == 1:
        return f"{numbers[0]} is {what}"
    return f"{numbers[0]} and {len(numbers) - 1} more numbers of the range are {what}"


def _not_of_country(raw: str, country: str) -> str:
    elsewhere = phone.normalise_valid(raw)
    if elsewhere is not None:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(elsewhere))
        return f"{elsewhere} is a number of {region}, not of {country}"
    return f"{raw!r} is not a valid number of {country}"


def _check_fields(cell: dict[str, str]) -> _Checked:
    reasons: list[str] = []

    def text(name: str) -> str | None:
        return exports.unguard_text(cell.get(name, "")) or None

    country = cell["country"].strip().upper()
    if not phone.is_country(country):
        reasons.append(f"{country!r} is not an ISO 3166-1 country")
    given = {name: text(name) or "" for name in ("vendor", "sku")}
    vendor, sku = given["vendor"].strip(), given["sku"].strip()
    for name, value in (("vendor", vendor), ("sku", sku)):
        if not value or len(value) > _COLUMN_LENGTH[name]:
            reasons.append(f"{name} must be 1 to {_COLUMN_LENGTH[name]} characters")
        if (refused := refusal(given[name], name)) is not None:
            reasons.append(refused)
    capabilities = _capabilities(cell.get("capabilities", ""), reasons)
    golden = _flag(cell, "golden", reasons)
    ported_in = _flag(cell, "ported_in", reasons)
    state = _state(cell.get("state", ""), reasons)
    # The remaining text rules are addNumbers' own (sku and vendor: their columns').
    details = NumberDetails(
        capabilities=capabilities,
        routing=text("routing"),
        visible_to_domain=text("visible_to_domain"),
        tag=text("tag"),
        notes=text("notes"),
    )
    _add_reasons(details, reasons)
    if reasons:
        return _Checked(None, country if phone.is_country(country) else None, tuple(reasons))
    fields = Fields(
        state=state,
        country=country,
        sku=sku,
        vendor=vendor,
        capabilities=int(capability_mask(capabilities or [Capability.VOICE])),
        routing=details.routing,
        golden=golden,
        ported_in=ported_in,
        visible_to_domain=details.visible_to_domain,
        tag=details.tag,
        notes=details.notes,
    )
    return _Checked(fields, country, ())


def _add_reasons(details: NumberDetails, reasons: list[str]) -> None:
    """What addNumbers' rules say is wrong with `details`."""
    problems = Problems()
    details.check(problems)
    try:
        problems.raise_if_any()
    except DomainError as error:
        reasons.extend(problem.message for problem in error.problems)


def _capabilities(text: str, reasons: list[str]) -> list[Capability] | None:
    if not text.strip():
        return None
    found = []
    for name in text.split("|"):
        member = Capability.__members__.get(name.strip().upper())
        if member is None:
            reasons.append(f"{name.strip()!r} is not a capability: VOICE, FAX or SMS")
            return None
        found.append(member)
    return found


def _flag(cell: dict[str, str], name: str, reasons: list[str]) -> bool:
    text = cell.get(name, "")
    if not text.strip():
        return False
    flag = parameters.parse_bool(text)
    if flag is None:
        reasons.append(f"{name} must be true or false, not {text!r}")
    return bool(flag)


def _state(text: str, reasons: list[str]) -> NumberState:
    if not text.strip():
        return NumberState.AVAILABLE
    state = NumberState.__members__.get(text.strip().upper())
    if state is None or state not in IMPORTABLE_STATES:
        reasons.append(f"state must be AVAILABLE or LOCKED, not {text!r}")
        return NumberState.AVAILABLE
    return state
