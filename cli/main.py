"""The `numbra` command: migrate, serve, tokens, workers, CSV import and export."""

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console

from cli import database
from cli.command_classes import Command, Group
from cli.failures import Failure
from cli.listening import check_can_listen
from domain import ids, organizations, search, tokens
from domain.access import Caller, Viewer
from domain.clock import SystemClock
from domain.csv import exports, imports, parameters
from domain.errors import DomainError, Problems
from domain.policy import Policy
from models import Role
from models.database import BULK_ROWS, Database
from settings import get_settings
from web.logging import configure_logging

app = typer.Typer(
    cls=Group, no_args_is_help=True, help="Numbra: phone-number inventory, as a GraphQL API."
)
token_app = typer.Typer(cls=Group, no_args_is_help=True, help="API tokens.")
app.add_typer(token_app, name="token")
err = Console(stderr=True)
log = logging.getLogger("numbra.cli")

ORG_METAVAR = "ROOT|UUID|ID"
ORG_HELP = "ROOT, or an organization's UUID or global id."


@app.callback()
def options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of any failure, expected or not.")
    ] = False,
) -> None:
    # Read back by cli.command_classes.Group, which handles the failures of every command.
    del debug


def _configure_logging() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)


def _announce_first_token(token: str | None) -> None:
    if token is not None:
        err.print(
            "[bold]Created the root organization. Its ADMIN token, shown only now "
            "(only a hash is stored):[/bold]",
            soft_wrap=True,
        )
        print(token, flush=True)


def _require_database() -> None:
    asyncio.run(database.require_migrated(get_settings()))


@app.command(cls=Command)
def migrate() -> None:
    """Apply database migrations and create the root organization if it is missing."""
    _configure_logging()
    _announce_first_token(asyncio.run(database.prepare(get_settings())))


@app.command(cls=Command)
def serve(
    host: Annotated[
        str | None,
        typer.Option(
            metavar="HOST",
            help="Interface to listen on, 0.0.0.0 for all (default: NUMBRA_HOST, else 127.0.0.1).",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            metavar="PORT",
            min=1,
            max=65535,
            help="Port to listen on (default: NUMBRA_PORT, else 8000).",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[int, typer.Option(metavar="N", min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the GraphQL API (GraphiQL at /graphql). On SQLite, migrate first.

    On a new database the root organization's ADMIN token is printed once, as the last
    line before the server's own log.
    """
    import uvicorn

    from web.metrics import shared_counters

    _configure_logging()
    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    # Before anything is created: a token printed by a server that then fails is lost.
    check_can_listen(host, port)
    token = None
    if settings.is_sqlite:
        token = asyncio.run(database.prepare(settings))
    else:
        _require_database()
        if not asyncio.run(database.root_exists(settings)):
            raise Failure("The database has no root organization yet: run `numbra migrate`.")
    log.info("serving GraphiQL on http://%s:%s/graphql", host, port)
    _announce_first_token(token)
    with shared_counters(workers):
        uvicorn.run(
            "web.main:app",
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            # Numbra writes its own access line (web/logging.py), with the request id.
            access_log=False,
            proxy_headers=True,
            # Bounds on slow and oversized request heads (web/http_protocol.py).
            http="web.http_protocol:GuardedHttpToolsProtocol",
        )


ROLES = "|".join(Role)


def _role(text: str) -> Role:
    """A role in any case, named in errors as the API names it (typer would lower-case it)."""
    try:
        return Role(text.upper())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not one of {ROLES}.") from None


@token_app.command("create", cls=Command)
def token_create(
    org: Annotated[
        str, typer.Option(metavar=ORG_METAVAR, help="The token's organization: " + ORG_HELP)
    ],
    role: Annotated[
        Role,
        typer.Option(
            metavar=ROLES,
            parser=_role,
            help="What it may do in the organization's subtree (any case).",
        ),
    ],
    name: Annotated[str, typer.Option(metavar="NAME", help="Shown as the actor in history.")],
) -> None:
    """Create a token; it is printed once, alone, as the last line of output."""
    _require_database()
    token = asyncio.run(_create_token(org, role, name))
    print(token, flush=True)


async def _create_token(org_ref: str, role: Role, name: str) -> str:
    settings = get_settings()
    db = Database(settings.database_url, pool_size=1)
    try:
        async with db.write() as session:
            if org_ref.upper() == "ROOT":
                org = await organizations.get_root(session)
            else:
                key = ids.decode_uuid(org_ref, organizations.TYPE_NAME) or _parse_uuid(org_ref)
                org = await organizations.find_by_uuid(session, key) if key else None
            if org is None:
                err.print(f"No organization {org_ref!r}.")
                raise typer.Exit(1)
            if not name.strip():
                err.print("A token needs a name.")
                raise typer.Exit(2)
            return await tokens.issue(session, org, name, role, SystemClock())
    finally:
        await db.dispose()


def _parse_uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


@app.command(cls=Command)
def worker(
    processes: Annotated[int, typer.Option(metavar="N", min=1, help="Worker processes.")] = 2,
    threads: Annotated[int, typer.Option(metavar="N", min=1, help="Threads per process.")] = 4,
) -> None:
    """Run Dramatiq workers on the Redis broker (NUMBRA_REDIS_URL)."""
    if not get_settings().redis_url:
        raise Failure(
            "NUMBRA_REDIS_URL is not set: without Redis, `numbra serve` runs jobs itself."
        )
    _require_database()
    from dramatiq.cli import main as dramatiq_main

    # Dramatiq's processes fork from this one and keep its logging (NUMBRA_LOG_FORMAT).
    _configure_logging()
    sys.argv = [
        "dramatiq",
        "--skip-logging",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        "jobs.actors",
    ]
    raise typer.Exit(dramatiq_main())  # type: ignore[no-untyped-call]


@app.command(cls=Command)
def scheduler() -> None:
    """Enqueue the sweep every NUMBRA_SWEEP_INTERVAL_SECONDS (several may run)."""
    from jobs.scheduler import run_forever

    _configure_logging()
    run_forever(get_settings().sweep_interval_seconds)


@app.command(cls=Command)
def sweep() -> None:
    """Run one sweep now: lapse what is due, then send the notices due, here."""
    _configure_logging()
    _require_database()
    asyncio.run(_sweep_once())


async def _sweep_once() -> None:
    from domain import notices
    from domain.mail import mailer_from_settings
    from domain.sweep import sweep_and_deliver

    settings = get_settings()
    db = Database(settings.database_url, pool_size=1)
    try:
        report, outcomes = await sweep_and_deliver(
            db,
            SystemClock(),
            mailer_from_settings(settings),
            notices.NoticeRules.from_settings(settings),
        )
        async with db.read() as session:
            failures = await notices.failed(session)
    finally:
        await db.dispose()
    print(f"Swept: {report}.")
    if outcomes:
        print(
            "Notices: " + ", ".join(f"{n} {o.value.lower()}" for o, n in sorted(outcomes.items()))
        )
    if failures:
        print("Failed notices (most recent first):")
        for notice, e164 in failures:
            ends = f"{notice.expires_at:%Y-%m-%d %H:%M} UTC"
            print(f"  {e164} {notice.kind.value} (ends {ends}): {notice.last_error}")


@app.command("print-schema", cls=Command)
def print_schema() -> None:
    """Print the served GraphQL schema (SDL); `schema.graphql` is this output."""
    from schema.build import build_schema

    print(build_schema(get_settings()).as_str())


async def _org_viewer(db: Database, org_ref: str, what: str) -> Viewer:
    """An ADMIN viewer of the organization: the CLI runs on the operator's own machine."""
    async with db.read() as session:
        if org_ref.upper() == "ROOT":
            org = await organizations.get_root(session)
        else:
            key = ids.decode_uuid(org_ref, organizations.TYPE_NAME) or _parse_uuid(org_ref)
            org = await organizations.find_by_uuid(session, key) if key else None
    if org is None:
        err.print(f"No organization {org_ref!r}.", markup=False)
        raise typer.Exit(1)
    return Viewer(
        token_id=0, token_name=f"numbra {what}", role=Role.ADMIN, org_id=org.id, org_path=org.path
    )


@app.command("export", cls=Command)
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
    _require_database()
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


@app.command("import", cls=Command)
def import_numbers(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            exists=True,
            dir_okay=False,
            help="CSV: number,vendor,country,sku and optional columns.",
        ),
    ],
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
    """Add the numbers of a CSV file; prints every bad row (line: number: reason)."""
    _require_database()
    report = asyncio.run(_import(file, dry_run, not atomic, org))
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


async def _import(file: Path, dry_run: bool, partial: bool, org_ref: str) -> imports.Report:
    from rich.progress import Progress

    settings = get_settings()
    db = Database(settings.database_url, pool_size=1)
    with file.open("rb") as raw:
        lines = sum(block.count(b"\n") for block in iter(lambda: raw.read(1 << 20), b""))
    try:
        caller = Caller(
            await _org_viewer(db, org_ref, "import"), SystemClock(), Policy.from_settings(settings)
        )
        with (
            Progress(console=err, transient=True) as bar,
            file.open(encoding="utf-8-sig", newline="") as text,
        ):
            task = bar.add_task("Importing", total=max(lines - 1, 1))
            report = await imports.import_csv(
                db,
                caller,
                text,
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


def main() -> None:
    app()
