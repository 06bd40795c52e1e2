"""The `numbra` command: migrate, serve, tokens, workers."""

import asyncio
import logging
import sys
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console

from cli import database
from domain import ids, organizations, tokens
from domain.clock import SystemClock
from models import Role
from models.database import Database
from settings import get_settings
from web.request_id import RequestIdLogFilter

app = typer.Typer(no_args_is_help=True, help="Numbra: phone-number inventory, as a GraphQL API.")
token_app = typer.Typer(no_args_is_help=True, help="API tokens.")
app.add_typer(token_app, name="token")
err = Console(stderr=True)


def _configure_logging() -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdLogFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    )
    logging.basicConfig(level=get_settings().log_level, handlers=[handler], force=True)


def _announce_first_token(token: str | None) -> None:
    if token is not None:
        err.print("[bold]Created the root organization. Its ADMIN token, shown only now:[/bold]")
        print(token, flush=True)


@app.command()
def migrate() -> None:
    """Apply database migrations and create the root organization if it is missing."""
    _configure_logging()
    _announce_first_token(asyncio.run(database.prepare(get_settings())))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Serve the GraphQL API (GraphiQL at /graphql). On SQLite, migrate first."""
    import uvicorn

    _configure_logging()
    settings = get_settings()
    if settings.is_sqlite:
        _announce_first_token(asyncio.run(database.prepare(settings)))
    elif not asyncio.run(database.root_exists(settings)):
        err.print("The database has no root organization yet: run `numbra migrate` first.")
        raise typer.Exit(1)
    err.print(f"Numbra serves GraphiQL on http://{host}:{port}/graphql")
    uvicorn.run(
        "web.main:app",
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        proxy_headers=True,
    )


@token_app.command("create")
def token_create(
    org: Annotated[str, typer.Option(help="ROOT, or an organization's UUID or global id.")],
    role: Annotated[Role, typer.Option(case_sensitive=False)],
    name: Annotated[str, typer.Option(help="Shown as the actor in history.")],
) -> None:
    """Create a token; it is printed once, alone, as the last line of output."""
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


@app.command()
def worker(
    processes: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    threads: Annotated[int, typer.Option(help="Threads per process.")] = 4,
) -> None:
    """Run Dramatiq workers on the Redis broker (NUMBRA_REDIS_URL)."""
    if not get_settings().redis_url:
        err.print("NUMBRA_REDIS_URL is not set: without Redis, `numbra serve` runs jobs itself.")
        raise typer.Exit(2)
    from dramatiq.cli import main as dramatiq_main

    sys.argv = ["dramatiq", "--processes", str(processes), "--threads", str(threads), "jobs.actors"]
    raise typer.Exit(dramatiq_main())  # type: ignore[no-untyped-call]


@app.command()
def scheduler() -> None:
    """Enqueue the periodic jobs every NUMBRA_SWEEP_INTERVAL_SECONDS."""
    from jobs.scheduler import run_forever

    _configure_logging()
    asyncio.run(run_forever(get_settings()))


@app.command("print-schema")
def print_schema() -> None:
    """Print the served GraphQL schema (SDL); `schema.graphql` is this output."""
    from schema.build import build_schema

    print(build_schema(get_settings()).as_str())


def main() -> None:
    app()
