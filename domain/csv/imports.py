"""CSV import: bulk loads of new numbers, checked as addNumbers checks its input.

The file is read as a stream, in chunks of whole rows naming about CHUNK numbers
(`domain.csv.rows` reads and checks each row). A chunk is then checked against
the file so far (duplicates) and the database (one query, on a connection of its
own), and its good rows are inserted with their ADDED events, the rows sent as one
JSON parameter (one statement on PostgreSQL, two on SQLite). Memory holds three chunks
(the next is read, in a thread, and this one checked while the one before is written;
a chunk is CHUNK numbers and at most one range row more) and every number seen so far,
as an int with its line. Before any of it, the file's
number cells are read once to sum the numbers it names (ranges counted, not
expanded): a file over the policy's cap is refused whole.

Atomic (the default): one transaction for the whole file, rolled back if any row is
bad, so a file goes in whole or not at all. Partial: one transaction per chunk,
holding its good rows. Dry run: every check, no write. Every bad row is reported
with its line (where its record starts) and why; the report lists the first
MAX_REPORTED of them and counts them all.

Intake rules are addNumbers' (`domain.intake`): a number already held outside the
caller's subtree is answered as any held number is, a range row names the first such
number only, and each such row is counted for the token; an import that would take the
token past its daily limit stops there and is refused (RATE_LIMITED), and what it asked
is counted all the same.
"""

import asyncio
import enum
import json
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, TextIO, cast
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from domain import intake, lifecycle, operators, organizations, search, series, transactions
from domain.access import Caller, Viewer
from domain.csv import states
from domain.csv.fields import Fields
from domain.csv.rows import IMPORTABLE, BadRow, Batch, Row, RowReader, first_over, some
from domain.csv.sources import CsvText, Source, Workbook
from domain.csv.states import Rules
from domain.errors import DomainError, ErrorCode, Problems
from models import Number, NumberState, Organization
from models.base import UTCDateTime
from models.database import Database

# Numbers a chunk names: each chunk costs a few statements, each a few thread hops.
CHUNK = 20_000
MAX_REPORTED = 10_000
REMARK = "imported from CSV"

# The table itself: a Core INSERT skips the ORM's per-row bookkeeping.
_NUMBERS = cast(sa.Table, Number.__table__)
# A row's cells in the rows' JSON; its vendor is the index of the vendor as given in the
# chunk's list of them, the operator each stands for is looked up by it.
_ROW_CELLS = ("e164", *Fields._fields, "series_id")
_VENDOR = Fields._fields.index("vendor")
# What PostgreSQL casts each cell of the rows' JSON to; the rest are text.
_CELL_TYPE: dict[str, Any] = {
    "vendor": sa.Integer(),
    "capabilities": sa.Integer(),
    "series_id": sa.Integer(),
    "golden": sa.Boolean(),
    "ported_in": sa.Boolean(),
}

Progress = Callable[[int], None]
SeriesOf = Callable[[str], int | None]
# Writes a chunk's checked rows.
Write = Callable[["_Chunk"], Coroutine[Any, Any, None]]


@dataclass
class Report:
    dry_run: bool
    partial: bool
    rows: int = 0
    # Numbers in good rows, and how many of them were written.
    valid: int = 0
    added: int = 0
    bad_row_count: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)

    def bad(self, row: BadRow) -> None:
        self.bad_row_count += 1
        if len(self.bad_rows) < MAX_REPORTED:
            self.bad_rows.append(row)


async def import_csv(
    db: Database,
    caller: Caller,
    file: TextIO | CsvText | Workbook,
    *,
    organization_id: str | None = None,
    mapping: Mapping[str, str] | None = None,
    dry_run: bool = False,
    partial: bool = False,
    progress: Progress | None = None,
) -> Report:
    """Import a CSV text or a workbook's sheet into an organization's pool (the viewer's
    own by default); `mapping` names the file's header for columns of ours.

    The file is read twice (a text must be seekable): first its number cells only, to
    refuse a file that names more numbers than the policy allows before anything is done.
    """
    source: Source = file if isinstance(file, CsvText | Workbook) else CsvText(file)
    mapping = check_mapping(mapping or {})
    await _refuse_over_cap(source, mapping, caller.policy.max_import_numbers)
    async with db.read() as session:
        allowance = await intake.admit(session, caller)
        pool = await _pool(session, caller, organization_id)
        series_of = await series.matcher(session)
    report = Report(dry_run=dry_run, partial=partial)
    reader = RowReader(source.records(), mapping, Rules(caller.clock.now(), caller.policy))
    if reader.header_problem is not None:
        report.bad(reader.header_problem)
        return report
    writer = _Writer(
        pool.id, caller.clock.now(), caller.actor, series_of, caller.viewer, db.is_sqlite
    )
    run = _Run(reader, report, writer, progress or (lambda _records: None), pool.path)
    run.limit_answers(caller.viewer.org_path, allowance)
    exhausted = False
    try:
        if dry_run:
            await run.check_only(db)
        elif partial:
            await run.write_per_chunk(db)
        else:
            await run.write_all_or_nothing(db)
    except _Exhausted:
        exhausted = True
    # Counted whether the import went in, stayed out or was a dry run.
    if run.elsewhere:
        async with transactions.write(db) as session:
            await intake.count(session, caller, run.elsewhere)
    if exhausted:
        kept = f"; {report.added} numbers of the chunks before were added" if partial else ""
        raise intake.refused(caller, written=kept)
    # Duplicates are found after the rest of their chunk's problems.
    report.bad_rows.sort(key=lambda bad: bad.line)
    return report


def check_mapping(mapping: Mapping[str, str]) -> dict[str, str]:
    """VALIDATION unless each mapped column is one of ours, given a header, once."""
    problems = Problems()
    headers: dict[str, str] = {}
    for column, header in mapping.items():
        field = ["mapping", column]
        if column not in IMPORTABLE:
            message = f"{column!r} is not an importable column: use {', '.join(IMPORTABLE)}"
            problems.add(ErrorCode.VALIDATION, message, field)
        elif not header.strip():
            problems.add(ErrorCode.VALIDATION, f"the mapping of {column} names no column", field)
        elif (other := headers.get(header.strip().lower())) is not None:
            message = f"{column} and {other} are both mapped to column {header!r}"
            problems.add(ErrorCode.VALIDATION, message, field)
        headers.setdefault(header.strip().lower(), column)
    problems.raise_if_any()
    return dict(mapping)


async def _refuse_over_cap(source: Source, mapping: Mapping[str, str], cap: int) -> None:
    """LIMIT_EXCEEDED, naming the line, if the file names more than `cap` numbers.

    A range counts as the numbers it would expand to, summed without expanding it:
    80 rows may name 8,000,000 numbers. Nothing is expanded, checked or written.
    """
    over = await asyncio.to_thread(first_over, source, cap, mapping)
    if over is not None:
        message = f"line {over.line}: {over.reason}"
        raise DomainError.one(ErrorCode.LIMIT_EXCEEDED, message, ["file"], over.number)


async def _pool(session: AsyncSession, caller: Caller, organization_id: str | None) -> Organization:
    if organization_id is None:
        pool = await session.get(Organization, caller.viewer.org_id)
    else:
        problems = Problems()
        field = ["organization_id"]
        pool = await organizations.named(session, caller.viewer, organization_id, field, problems)
        problems.raise_if_any()
    assert pool is not None
    return pool


class _RollBack(Exception):
    """Leaves the atomic transaction without committing."""


class _Exhausted(Exception):
    """The token's answers about numbers held elsewhere ran out: stop, writing nothing more."""


class _Run:
    def __init__(
        self,
        reader: RowReader,
        report: Report,
        writer: "_Writer",
        progress: Progress,
        pool_path: str,
    ) -> None:
        self.pool_path = pool_path
        self.reader = reader
        self.report = report
        self.writer = writer
        self.progress = progress
        # Every number named so far, as an int, with the line that named it first: a
        # million take ~110 MB, and the policy caps the numbers of a file.
        self.seen: dict[int, int] = {}
        # The caller's subtree; how many answers about numbers held outside it the caller
        # may get, and how many rows have got one.
        self.subtree = "/"
        self.allowance = intake.UNLIMITED
        self.elsewhere = 0

    def limit_answers(self, subtree: str, allowance: int) -> None:
        self.subtree = subtree
        self.allowance = allowance

    async def each_chunk(self, db: Database, write: Write | None = None) -> None:
        """Check each chunk's rows that name no number named before against the database
        (`_new`, each chunk on a connection of its own) and hand the good ones to `write`.

        Three chunks are under way at once: the next is read (in a thread) and this one
        checked while the one before is written. The check needs no sight of the writes:
        a number is in one chunk only (`_unseen`), so what the database holds of a chunk's
        numbers is what it held before the import. Each `write` waits for the one before.
        """
        reading = asyncio.ensure_future(asyncio.to_thread(self.reader.take, CHUNK))
        writing: asyncio.Task[None] | None = None
        try:
            while (batch := await reading) is not None:
                reading = asyncio.ensure_future(asyncio.to_thread(self.reader.take, CHUNK))
                rows = self._unseen(batch)
                try:
                    async with db.read_statements() as session:
                        good = await self._new(session, rows)
                finally:
                    # The chunk before is written whatever this check found.
                    written, writing = writing, None
                    if written is not None:
                        await written
                if write is not None:
                    writing = asyncio.create_task(write(self.writer.prepare(good)))
            written, writing = writing, None
            if written is not None:
                await written
        finally:
            if writing is not None:
                writing.cancel()
            # The reader's thread must be done with the file before the caller closes it.
            await asyncio.gather(reading, *([writing] if writing else []), return_exceptions=True)

    def _unseen(self, batch: Batch) -> list[Row]:
        self.report.rows += batch.records
        for bad in batch.bad:
            self.report.bad(bad)
        fresh = []
        for row in batch.rows:
            keys = [int(number[1:]) for number in row.numbers]
            if self.seen.keys().isdisjoint(keys):
                fresh.append(row)
                self.seen.update(dict.fromkeys(keys, row.line))
                continue
            repeated = [n for n, key in zip(row.numbers, keys, strict=True) if key in self.seen]
            first = self.seen[int(repeated[0][1:])]
            reason = f"{some(repeated, 'named twice')}: first on line {first}"
            self.report.bad(BadRow(row.line, repeated[0], reason))
            for key in keys:
                self.seen.setdefault(key, row.line)
        self.progress(batch.records)
        return fresh

    async def _new(self, session: AsyncSession, rows: list[Row]) -> list[Row]:
        """The rows none of whose numbers are in the inventory already."""
        named = [number for row in rows for number in row.numbers]
        among = search.among(session, Number.e164, named)
        held = await session.execute(
            sa.select(Number.e164, Organization.path)
            .join(Organization, Organization.id == Number.organization_id)
            .where(among)
        )
        present = {e164: path for e164, path in held}
        named_orgs = await self._organizations(session, rows)
        good = []
        for row in rows:
            found = [number for number in row.numbers if number in present]
            if found:
                self.report.bad(self._held(row, found, present))
            elif (resolved := self._resolve(row, named_orgs)) is not None:
                good.append(resolved)
                self.report.valid += len(row.numbers)
        if self.elsewhere > self.allowance:
            raise _Exhausted
        return good

    async def _organizations(self, session: AsyncSession, rows: list[Row]) -> dict[str, int]:
        """The organizations the rows name (holders, owners) that are in the pool's
        subtree, by the reference the rows give: one query a chunk."""
        refs = {ref for row in rows if row.standing for ref in row.standing.organizations.values()}
        keys = {key: ref for ref in refs if (key := organizations.key_of(ref)) is not None}
        if not keys:
            return {}
        found = await session.execute(
            sa.select(Organization.uuid, Organization.id).where(
                Organization.uuid.in_(keys), organizations.subtree_clause(self.pool_path)
            )
        )
        return {keys[key]: org_id for key, org_id in found}

    def _resolve(self, row: Row, named: dict[str, int]) -> Row | None:
        """The row with its organizations as ids (the pool's by default), or None if it
        names one that is not in the pool's subtree (reported)."""
        if row.standing is None or row.fields.state not in _ORGANIZATION_COLUMN:
            return row
        column = _ORGANIZATION_COLUMN[row.fields.state]
        ref = row.standing.organizations.get(column)
        if ref is None:
            org_id = self.writer.pool_id
        elif (found := named.get(ref)) is not None:
            org_id = found
        else:
            cell = states.CELL[column]
            why = "is no organization in the pool's subtree"
            if organizations.key_of(ref) is None:
                why = "is neither an organization's ID nor its UUID"
            self.report.bad(BadRow(row.line, row.numbers[0], f"{cell} {ref!r} {why}"))
            return None
        values = row.standing.values | {column: org_id}
        return row._replace(standing=row.standing._replace(values=values))

    def _held(self, row: Row, found: list[str], pools: dict[str, str]) -> BadRow:
        """A row naming numbers already held: within the caller's subtree said in full;
        elsewhere, the first such number only (a row of that number alone says as much)."""
        inside = [n for n in found if organizations.in_subtree(pools[n], self.subtree)]
        elsewhere = [n for n in found if not organizations.in_subtree(pools[n], self.subtree)]
        reasons = [some(inside, "already in the inventory")] if inside else []
        if elsewhere:
            self.elsewhere += 1
            reasons.append(f"{elsewhere[0]} {intake.HELD}")
        return BadRow(row.line, (inside or elsewhere)[0], "; ".join(reasons))

    async def check_only(self, db: Database) -> None:
        await self.each_chunk(db)

    async def write_per_chunk(self, db: Database) -> None:
        async def write(chunk: _Chunk) -> None:
            async with transactions.write(db) as session:
                self.report.added += await self.writer.insert(session, chunk)

        await self.each_chunk(db, write)

    async def write_all_or_nothing(self, db: Database) -> None:
        try:
            async with transactions.write(db) as session:

                async def write(chunk: _Chunk) -> None:
                    # Once a row is bad nothing will be kept: check on, write no more.
                    if not self.report.bad_row_count:
                        self.report.added += await self.writer.insert(session, chunk)

                await self.each_chunk(db, write)
                if self.report.bad_row_count:
                    raise _RollBack
        except _RollBack:
            self.report.added = 0


# The organization each state names: whom a reservation holds for, who owns an assignment.
_ORGANIZATION_COLUMN = {
    NumberState.RESERVED: "reserved_for_id",
    NumberState.ASSIGNED: "owner_id",
    NumberState.BLOCKED: "owner_id",
}


def _standing_update(names: tuple[str, ...]) -> sa.Update:
    table = _NUMBERS.c
    return (
        sa.update(_NUMBERS)
        .where(table.e164 == sa.bindparam("v_key"))
        .values({name: sa.bindparam(f"v_{name}", type_=table[name].type) for name in names})
    )


def _standing_update_from_json(names: tuple[str, ...]) -> sa.Update:
    """UPDATE numbers SET … FROM jsonb_to_recordset(:rows) AS v(v_key text, v_… type, …)
    WHERE e164 = v_key: PostgreSQL reads each cell as its column's type."""
    table = _NUMBERS.c
    rows = sa.cast(sa.bindparam("rows", type_=sa.Text), postgresql.JSONB)
    given = sa.func.jsonb_to_recordset(rows).table_valued(
        sa.column("v_key", sa.Text), *(sa.column(f"v_{n}", table[n].type) for n in names)
    )
    given = given.render_derived(name="v", with_types=True)
    return (
        sa.update(_NUMBERS)
        .where(table.e164 == given.c.v_key)
        .values({name: given.c[f"v_{name}"] for name in names})
    )


def _json_cell(value: object) -> object:
    """A state column's value as its column stores it, in JSON (PostgreSQL parses it)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, UUID):
        return str(value)
    return value


class _Chunk(NamedTuple):
    """A chunk's checked rows, made ready to write (`_Writer.prepare`)."""

    # The numbers' rows as one JSON array (`_ROW_CELLS`), and how many; their vendors,
    # as given.
    rows: str
    size: int
    vendors: list[str]
    # The UPDATEs filling the state columns of the rows not AVAILABLE, with parameters.
    standing: list[tuple[sa.Update, Any]]


class _Writer:
    """Inserts checked rows into one pool, with one ADDED event per number.

    What a chunk's rows come to is made while the chunk before is written (`prepare`);
    `insert` links the vendors to their operators and sends what was made.
    """

    def __init__(
        self,
        pool_id: int,
        now: datetime,
        actor: str,
        series_of: SeriesOf,
        viewer: Viewer,
        sqlite: bool,
    ) -> None:
        self.pool_id = pool_id
        self.now = now
        self.actor = actor
        self.series_of = series_of
        self.viewer = viewer
        self.sqlite = sqlite

    def prepare(self, rows: Sequence[Row]) -> _Chunk:
        vendors: dict[str, int] = {}
        values: list[tuple[Any, ...]] = []
        for row in rows:
            head, vendor, tail = row.fields[:_VENDOR], row.fields.vendor, row.fields[_VENDOR + 1 :]
            index = vendors.setdefault(vendor.strip(), len(vendors))
            values.extend((n, *head, index, *tail, self.series_of(n)) for n in row.numbers)
        return _Chunk(json.dumps(values), len(values), list(vendors), self._standing(rows))

    async def insert(self, session: AsyncSession, chunk: _Chunk) -> int:
        if not chunk.size:
            return 0
        # Each vendor named is its operator's name, linked as addNumbers links it.
        linked = await operators.link(session, self.viewer, chunk.vendors, self.now)
        links = json.dumps(
            [[linked[vendor].name, linked[vendor].operator_id] for vendor in chunk.vendors]
        )
        await self._numbers(session, chunk, links)
        for update, params in chunk.standing:
            await session.execute(update, params)
        return chunk.size

    def _standing(self, rows: Sequence[Row]) -> list[tuple[sa.Update, Any]]:
        """The UPDATEs, with their parameters, filling the state columns of the rows not
        AVAILABLE, per kind of state (each sets the same columns): on PostgreSQL one
        UPDATE … FROM the rows sent as one JSON parameter; on SQLite one UPDATE with many
        parameter sets.

        Not a statement per row on PostgreSQL: each runs the statement triggers that keep
        the counts (~2 ms a statement: 20 s of a million-row import with every tenth LOCKED).
        """
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            if row.standing is None or not row.standing.values:
                continue
            values = row.standing.values
            params = by_columns.setdefault(tuple(sorted(values)), [])
            cells = {f"v_{name}": value for name, value in values.items()}
            params.extend({"v_key": number, **cells} for number in row.numbers)
        if self.sqlite:
            return [(_standing_update(names), params) for names, params in by_columns.items()]
        return [
            (
                _standing_update_from_json(names),
                {"rows": json.dumps([{k: _json_cell(v) for k, v in p.items()} for p in params])},
            )
            for names, params in by_columns.items()
        ]

    async def _numbers(self, session: AsyncSession, chunk: _Chunk, links: str) -> None:
        """Insert the numbers by one INSERT … SELECT from the rows sent as one JSON
        parameter, each row's vendor and operator looked up by its index in `links` (the
        operators linked, as JSON), and an ADDED event for each: on PostgreSQL in the same
        statement (the INSERT … RETURNING in a WITH: ~3 s of a million-row import went to
        finding the numbers again by e164), on SQLite by the ids after.

        One statement, not one per row: on SQLite the trigger that feeds the FTS5
        index would flush it for every statement (~5x slower), and on PostgreSQL
        a statement per row costs ~2.5x as much. One JSON text, not an array per
        column: encoding 14 arrays of 20,000 items took the driver and SQLAlchemy's
        per-item processing ~0.4 s a chunk of Python, while PostgreSQL waited.
        """
        rows = sa.literal(chunk.rows)
        cells: list[sa.ColumnElement[Any]]
        linked: sa.ColumnElement[Any]
        if self.sqlite:
            # SQLite writes one transaction at a time (BEGIN IMMEDIATE), so the rows
            # with higher ids than any before are these.
            last_id = await session.scalar(sa.select(sa.func.max(Number.id)))
            item = sa.func.json_each(rows).table_valued("value")
            cells = [item.c.value.op("->>")(index) for index in range(len(_ROW_CELLS))]
            linked = sa.literal(links)
        else:
            item = sa.func.jsonb_array_elements(sa.cast(rows, postgresql.JSONB)).table_valued(
                "value"
            )
            cells = [
                sa.cast(item.c.value.op("->>")(index), _CELL_TYPE.get(name, sa.Text()))
                for index, name in enumerate(_ROW_CELLS)
            ]
            # Parsed once, not once a row.
            linked = sa.select(sa.cast(sa.literal(links), postgresql.JSONB)).scalar_subquery()
        link = linked.op("->")(cells[_ROW_CELLS.index("vendor")])
        vendor = link.op("->>")(0)
        operator_id = sa.cast(link.op("->>")(1), sa.Integer())
        at = sa.literal(self.now, UTCDateTime())
        state = cells[_ROW_CELLS.index("state")]
        locked_at = sa.case((state == NumberState.LOCKED.value, at), else_=sa.null())
        values = [
            vendor if name == "vendor" else cell
            for name, cell in zip(_ROW_CELLS, cells, strict=True)
        ]
        select = sa.select(*values, operator_id, sa.literal(self.pool_id), at, locked_at)
        names = [*_ROW_CELLS, "operator_id", "organization_id", "state_changed_at", "locked_at"]
        insert = sa.insert(_NUMBERS).from_select(names, select)
        if self.sqlite:
            # SQLite has no INSERT in a WITH: the events find the numbers by id after.
            await session.execute(insert)
            added: sa.ColumnElement[bool] = Number.id > (last_id or 0)
            await lifecycle.record_where(
                session,
                added,
                "ADDED",
                actor=self.actor,
                at=self.now,
                remark=REMARK,
                from_state=sa.null(),
            )
            return
        table = _NUMBERS.c
        written = insert.returning(table.id, table.organization_id, table.state).cte("added")
        await lifecycle.record_added(session, written, actor=self.actor, at=self.now, remark=REMARK)
