"""`numbra token`: API tokens made on the operator's own machine."""

import asyncio
from datetime import datetime
from typing import Annotated

import typer

from cli._common import ORG_HELP, ORG_METAVAR, err, find_organization, require_database
from cli.command_classes import Command, Group
from domain import organizations, tokens
from domain.access import NO_TOKEN, Viewer
from domain.clock import SystemClock
from domain.errors import DomainError
from domain.pagination import PageRequest
from models import Organization, Role, Token
from models.database import Database
from settings import get_settings

token_app = typer.Typer(cls=Group, no_args_is_help=True, help="API tokens.")

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
    require_database()
    token = asyncio.run(_create_token(org, role, name))
    print(token, flush=True)


async def _create_token(org_ref: str, role: Role, name: str) -> str:
    settings = get_settings()
    db = Database(settings.database_url, pool_size=1)
    try:
        async with db.write() as session:
            org = await find_organization(session, org_ref)
            if org is None:
                err.print(f"No organization {org_ref!r}.")
                raise typer.Exit(1)
            refusals = tokens.name_refusals(name)
            if refusals:
                err.print(f"Not a token name: {'; '.join(refusals)}.", markup=False)
                raise typer.Exit(2)
            return await tokens.issue(session, org, name, role, SystemClock())
    finally:
        await db.dispose()


COLUMNS = ("uuid", "name", "role", "organization", "created", "expires", "last used", "revoked")
PAGE = 500


def _viewer(org: Organization, what: str) -> Viewer:
    """An ADMIN of the organization: the CLI runs on the operator's own machine."""
    return Viewer(NO_TOKEN, f"numbra token {what}", Role.ADMIN, org.id, org.path)


@token_app.command("list", cls=Command)
def token_list(
    org: Annotated[
        str,
        typer.Option(
            metavar=ORG_METAVAR, help="Tokens of this organization's subtree: " + ORG_HELP
        ),
    ] = "ROOT",
    revoked: Annotated[bool, typer.Option("--revoked", help="Revoked tokens too.")] = False,
) -> None:
    """List tokens, newest first, one a line, tab-separated; never their secret."""
    require_database()
    print("\t".join(COLUMNS))
    for line in asyncio.run(_list_tokens(org, revoked)):
        print("\t".join(line), flush=True)


async def _list_tokens(org_ref: str, revoked: bool) -> list[tuple[str, ...]]:
    db = Database(get_settings().database_url, pool_size=1)
    try:
        async with db.read() as session:
            org = await find_organization(session, org_ref)
            if org is None:
                err.print(f"No organization {org_ref!r}.", markup=False)
                raise typer.Exit(1)
            viewer = _viewer(org, "list")
            rows: list[Token] = []
            after = None
            while True:
                page = await tokens.list_subtree(session, viewer, PageRequest(PAGE, after), revoked)
                rows += page.rows
                if not page.has_next:
                    break
                after = tokens.cursor_key(page.rows[-1])
            names = await organizations.by_ids(session, sorted({t.organization_id for t in rows}))
    finally:
        await db.dispose()
    return [
        (
            str(t.uuid),
            t.name,
            t.role.value,
            names[t.organization_id].name,
            *(
                _when(moment)
                for moment in (t.created_at, t.expires_at, t.last_used_at, t.revoked_at)
            ),
        )
        for t in rows
    ]


def _when(moment: datetime | None) -> str:
    return moment.isoformat() if moment is not None else "-"


@token_app.command("revoke", cls=Command)
def token_revoke(
    token: Annotated[str, typer.Argument(metavar="UUID|ID", help="The token's UUID or global id.")],
) -> None:
    """Revoke a token: from its next request on it is refused (401), in every process."""
    require_database()
    name = asyncio.run(_revoke(token))
    print(f"Revoked {name!r} ({token}).", flush=True)


async def _revoke(ref: str) -> str:
    db = Database(get_settings().database_url, pool_size=1)
    try:
        async with db.write() as session:
            root = await organizations.get_root(session)
            assert root is not None
            try:
                revoked = await tokens.revoke(session, _viewer(root, "revoke"), SystemClock(), ref)
            except DomainError as error:
                err.print(f"Not revoked: {error.problems[0].message}.", markup=False)
                raise typer.Exit(1) from None
            return revoked.name
    finally:
        await db.dispose()
