"""The `numbra` command: migrate, serve, tokens, workers, CSV import and export."""

import asyncio
import logging
import sys
from typing import Annotated, Any

import typer

from cli import csv_commands, database, serving
from cli._common import configure, err, require_database
from cli.command_classes import Command, Group
from cli.failures import Failure
from cli.listening import check_can_listen
from cli.tokens import token_app
from domain.clock import SystemClock
from models.database import Database
from settings import get_settings

app = typer.Typer(
    cls=Group, no_args_is_help=True, help="Numbra: phone-number inventory, as a GraphQL API."
)
app.add_typer(token_app, name="token")
log = logging.getLogger("numbra.cli")


@app.callback()
def options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of any failure, expected or not.")
    ] = False,
) -> None:
    # Read back by cli.command_classes.Group, which handles the failures of every command.
    del debug


def _announce_first_token(token: str | None) -> None:
    if token is not None:
        err.print(
            "[bold]Created the root organization. Its ADMIN token, shown only now "
            "(only a hash is stored):[/bold]",
            soft_wrap=True,
        )
        print(token, flush=True)


@app.command(cls=Command)
def migrate() -> None:
    """Apply database migrations and create the root organization if it is missing."""
    configure()
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

    configure()
    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    # Before anything is created: a token printed by a server that then fails is lost.
    check_can_listen(host, port)
    token = None
    if settings.is_sqlite:
        token = asyncio.run(database.prepare(settings))
    else:
        require_database()
        if not asyncio.run(database.root_exists(settings)):
            raise Failure("The database has no root organization yet: run `numbra migrate`.")
    log.info("serving GraphiQL on http://%s:%s/graphql", host, port)
    _announce_first_token(token)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "workers": workers,
        "log_config": None,
        # Numbra writes its own access line (web/logging.py), with the request id.
        "access_log": False,
        "proxy_headers": True,
        # Bounds on slow and oversized request heads (web/http_protocol.py).
        "http": "web.http_protocol:GuardedHttpToolsProtocol",
    }
    with shared_counters(workers):
        if workers > 1 and serving.spreads_connections():
            serving.run_workers(uvicorn.Config("web.main:app", **options))
        else:
            uvicorn.run("web.main:app", **options)


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
    require_database()
    from dramatiq.cli import main as dramatiq_main

    # Dramatiq's processes fork from this one and keep its logging (NUMBRA_LOG_FORMAT).
    configure()
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

    configure()
    run_forever(get_settings().sweep_interval_seconds)


@app.command(cls=Command)
def sweep() -> None:
    """Run one sweep now: lapse what is due, then send the notices and webhooks due, here."""
    configure()
    require_database()
    asyncio.run(_sweep_once())


async def _sweep_once() -> None:
    from domain import notices
    from domain.mail import mailer_from_settings
    from domain.policy import Policy
    from domain.sweep import sweep_and_deliver
    from domain.webhook_delivery import deliver_due
    from domain.webhooks import WebhookRules

    settings = get_settings()
    db = Database(settings.database_url, pool_size=1)
    try:
        report, outcomes = await sweep_and_deliver(
            db,
            SystemClock(),
            mailer_from_settings(settings),
            notices.NoticeRules.from_settings(settings),
            Policy.from_settings(settings),
        )
        hooks = await deliver_due(
            db,
            clock=SystemClock(),
            rules=WebhookRules.from_settings(settings),
            mailer=mailer_from_settings(settings),
            sender=settings.mail_from,
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
    if hooks.delivered or hooks.failed_attempts:
        print(f"Webhooks: {hooks.delivered} delivered, {hooks.failed_attempts} attempts failed.")
    if failures:
        print("Failed notices (most recent first):")
        for notice, e164 in failures:
            ends = f"{notice.expires_at:%Y-%m-%d %H:%M} UTC"
            about = e164 or f"token #{notice.token_id}"
            print(f"  {about} {notice.kind.value} (ends {ends}): {notice.last_error}")


@app.command("print-schema", cls=Command)
def print_schema() -> None:
    """Print the served GraphQL schema (SDL); `schema.graphql` is this output."""
    from schema.build import build_schema

    print(build_schema(get_settings()).as_str())


app.command("export", cls=Command)(csv_commands.export_numbers)
app.command("import", cls=Command)(csv_commands.import_numbers)


def main() -> None:
    app()
