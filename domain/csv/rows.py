"""Reading an import file: the header, then each record checked on its own.

A record is checked as addNumbers checks its input: the columns, the number (or
range) valid for the row's country, the descriptive fields. What the database must
answer (is a number there already?) is left to `domain.csv.imports`.
"""

import csv
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

import phonenumbers

from domain import phone
from domain.csv import exports, ranges, states
from domain.csv.fields import Checked, Fields, add_reasons
from domain.csv.fields import check as check_fields
from domain.csv.sources import Records, Source
from domain.csv.states import Rules, Standing
from domain.details import NumberDetails
from domain.policy import Policy

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
IMPORTABLE = REQUIRED + OPTIONAL + states.COLUMNS
# An export's other columns are read past, so export → import round-trips.
KNOWN = frozenset(REQUIRED + OPTIONAL + exports.COLUMNS + states.COLUMNS)
# Distinct field combinations remembered; bulk files repeat a few of them.
_FIELDS_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class BadRow:
    line: int
    number: str | None
    reason: str


class Row(NamedTuple):
    line: int
    # One number, or the numbers of a range, in E.164.
    numbers: Sequence[str]
    fields: Fields
    # The columns of its state, if not AVAILABLE.
    standing: Standing | None = None


@dataclass
class Batch:
    rows: list[Row] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)
    records: int = 0


class RowReader:
    """The rows of a file's records, a batch at a time. `header_problem` says if there are
    none. `mapping` names, for a column of ours, the file's header that holds it
    (number -> "DID"): the file's own names, matched without regard to case."""

    def __init__(
        self,
        records: Records,
        mapping: Mapping[str, str] | None = None,
        rules: Rules | None = None,
    ) -> None:
        self._records = records
        self._rules = rules or Rules(datetime.now(UTC), Policy())
        self._done = False
        self._checked: dict[tuple[str, ...], Checked] = {}
        self.header_problem: BadRow | None = None
        self._columns = self._header(mapping or {})
        # The cells rows may share: all but the number and the notes (often one a row).
        shared = [at for name, at in self._columns.items() if name not in ("number", "notes")]
        self._shared = operator.itemgetter(*shared) if shared else None

    def _header(self, mapping: Mapping[str, str]) -> dict[str, int]:
        try:
            names = [name.strip().lower() for name in next(self._records, [])]
        except (csv.Error, UnicodeDecodeError) as exc:
            self.header_problem = BadRow(1, None, f"the file cannot be read as UTF-8 CSV: {exc}")
            return {}
        unmapped = _apply_mapping(names, mapping)
        if unmapped:
            self.header_problem = BadRow(1, None, "; ".join(unmapped))
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
            checked = self._checked[key] = check_fields(cell, self._rules)
        reasons = list(checked.reasons)
        notes = self._notes(cells, reasons)
        numbers: Sequence[str] = []
        if checked.country is not None:
            numbers = self._numbers(number, checked.country, reasons)
        if reasons or checked.fields is None:
            bad.append(BadRow(line, number or None, "; ".join(reasons)))
            return None
        fields = checked.fields if notes is None else checked.fields._replace(notes=notes)
        return Row(line, numbers, fields, checked.standing)

    def _notes(self, cells: list[str], reasons: list[str]) -> str | None:
        """The row's notes, checked by addNumbers' rule."""
        at = self._columns.get("notes")
        notes = exports.unguard_text(cells[at]) or None if at is not None else None
        if notes is not None:
            add_reasons(NumberDetails(notes=notes), reasons)
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
            if not any(dash in number for dash in ranges.DASHES):
                named += 1
            else:
                number = number.strip()
                named += ranges.count(number, cells[country_at].strip().upper())
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
        ends = ranges.ends(text, country)
        if ends is None:
            e164 = self._valid(text, country)
            if e164 is None:
                reasons.append(_not_of_country(text, country))
                return []
            return [e164]
        first, last = ends
        span = ranges.span(first, last)
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


def first_over(source: Source, cap: int, mapping: Mapping[str, str]) -> BadRow | None:
    """The row by which a file names more than `cap` numbers (see RowReader.first_over)."""
    return RowReader(source.records(), mapping).first_over(cap)


def _apply_mapping(names: list[str], mapping: Mapping[str, str]) -> list[str]:
    """Rename the file's mapped headers to our columns, in place; what could not be."""
    problems = []
    for column, header in mapping.items():
        at = [index for index, name in enumerate(names) if name == header.strip().lower()]
        if not at:
            problems.append(
                f"the mapping names column {header!r} (for {column}), "
                "which the file's first line lacks"
            )
        elif len(at) > 1:
            problems.append(f"the mapping names column {header!r}, which the file has twice")
        else:
            names[at[0]] = column
    return problems


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
