"""`numbra export` and `numbra import`: CSV files, as the HTTP routes serve them."""

import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from cli._common import ORG_HELP, ORG_METAVAR, err, find_organization, require_database
from cli.failures import Failure
from domain import search
from domain.access import NO_TOKEN, Caller, Viewer
from domain.clock import SystemClock
from domain.csv import exports, imports, parameters, sources
from domain.csv.sources import CsvText, Workbook
from domain.errors import DomainError, Problems
from domain.policy import Policy
from models import Role
from models.database import BULK_ROWS, Database
from settings import get_settings


async def _org_viewer(db: Database, org_ref: str, what: str) -> Viewer:
    """An ADMIN viewer of the organization: the CLI runs on the operator's own machine."""
    async with db.read() as session:
        org = await find_organization(session, org_ref)
    if org is None:
        err.print(f"No organization {org_ref!r}.", markup=False)
        raise typer.Exit(1)
    return Viewer(
        token_id=NO_TOKEN,
        token_name=f"numbra {what}",
        role=Role.ADMIN,
        org_id=org.id,
        org_path=org.path,
    )


def export_numbers(
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            metavar="FIELD=VALUE",
            help="A NumberFilter field, e.g. states=AVAILABLE,LOCKED or pattern=+6561*. "
            "Repeat for more (they combine with AND).",
        ),
    ] = None,
    org: Annotated[
        str, typer.Option(metavar=ORG_METAVAR, help=ORG_HELP + " Exports its subtree.")
    ] = "ROOT",
) -> None:
    """Write the numbers a filter selects to stdout as CSV, as GET /export/numbers.csv does."""
    pairs = [item.partition("=") for item in filters or []]
    if any(not sep for _key, sep, _value in pairs):
        raise Failure("Give each filter as FIELD=VALUE.")
    require_database()
    asyncio.run(_export([(key.strip(), value) for key, _sep, value in pairs], org))


async def _export(pairs: list[tuple[str, str]], org_ref: str) -> None:
    db = Database(get_settings().database_url, pool_size=1)
    try:
        viewer = await _org_viewer(db, org_ref, "export")
        problems = Problems()
        spec = parameters.filter_from_params(pairs, problems)
        async with db.read() as session:
            where = await search.build(session, viewer, spec, problems)
            try:
                problems.raise_if_any()
            except DomainError as error:
                for problem in error.problems:
                    err.print(problem.message, markup=False, soft_wrap=True)
                raise typer.Exit(2) from error
            async for chunk in exports.csv_chunks(session, where):
                sys.stdout.write(chunk)
    finally:
        await db.dispose()


def import_numbers(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            exists=True,
            dir_okay=False,
            help="CSV or .xlsx: number,vendor,country,sku and optional columns.",
        ),
    ],
    maps: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            metavar="COLUMN=HEADER",
            help="Read our COLUMN from the file's column HEADER, e.g. --map number=DID. "
            "Repeat for more.",
        ),
    ] = None,
    sheet: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="The .xlsx sheet to read (the first by default)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row; write nothing.")
    ] = False,
    atomic: Annotated[
        bool, typer.Option("--atomic/--partial", help="Nothing if a row is bad, or the good rows.")
    ] = True,
    org: Annotated[
        str, typer.Option(metavar=ORG_METAVAR, help=ORG_HELP + " Its pool gets the numbers.")
    ] = "ROOT",
) -> None:
    """Add the numbers of a CSV or .xlsx file; prints every bad row (line: number: reason)."""
    pairs = [item.partition("=") for item in maps or []]
    if any(not sep for _column, sep, _header in pairs):
        raise Failure("Give each mapping as COLUMN=HEADER.")
    mapping = {column.strip(): header for column, _sep, header in pairs}
    require_database()
    report = asyncio.run(_import(file, mapping, sheet, dry_run, not atomic, org))
    for bad in report.bad_rows:
        print(f"line {bad.line}: {bad.number or '-'}: {bad.reason}")
    if report.bad_row_count > len(report.bad_rows):
        print(f"... and {report.bad_row_count - len(report.bad_rows)} more bad rows")
    if dry_run:
        outcome = f"dry run: {report.valid} numbers would be added; nothing was written"
    elif report.bad_row_count and atomic:
        outcome = "nothing was written (--partial writes the good rows)"
    else:
        outcome = f"added {report.added} numbers"
    print(f"{report.rows} rows, {report.bad_row_count} bad; {outcome}.")
    raise typer.Exit(1 if report.bad_row_count else 0)


async def _import(
    file: Path,
    mapping: dict[str, str],
    sheet: str | None,
    dry_run: bool,
    partial: bool,
    org_ref: str,
) -> imports.Report:
    from rich.progress import Progress

    settings = get_settings()
    db = Database(settings.database_url, pool_size=1)
    try:
        caller = Caller(
            await _org_viewer(db, org_ref, "import"), SystemClock(), Policy.from_settings(settings)
        )
        with (
            Progress(console=err, transient=True) as bar,
            _opened(file, sheet) as (source, lines),
        ):
            task = bar.add_task("Importing", total=max(lines - 1, 1))
            report = await imports.import_csv(
                db,
                caller,
                source,
                mapping=mapping,
                dry_run=dry_run,
                partial=partial,
                progress=lambda rows: bar.advance(task, rows),
            )
        if report.added >= BULK_ROWS:
            await db.refresh_statistics()
        return report
    except DomainError as error:
        err.print(str(error), markup=False, soft_wrap=True)
        raise typer.Exit(2) from error
    finally:
        await db.dispose()


@contextmanager
def _opened(file: Path, sheet: str | None) -> Iterator[tuple[CsvText | Workbook, int]]:
    """The file as an import source, and about how many lines it has (for the bar)."""
    with file.open("rb") as raw:
        if sources.is_xlsx(raw.read(len(sources.XLSX_MAGIC))):
            workbook = Workbook(raw, sheet)
            yield workbook, workbook.rows()
            return
        if sheet is not None:
            raise Failure("--sheet is for .xlsx files; this one is CSV.")
        raw.seek(0)
        lines = sum(block.count(b"\n") for block in iter(lambda: raw.read(1 << 20), b""))
    with file.open(encoding="utf-8-sig", newline="") as text:
        yield CsvText(text), lines
