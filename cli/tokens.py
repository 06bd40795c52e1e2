"""`numbra token`: API tokens made on the operator's own machine."""

import asyncio
from typing import Annotated

import typer

from cli._common import ORG_HELP, ORG_METAVAR, err, find_organization, require_database
from cli.command_classes import Command, Group
from domain import tokens
from domain.clock import SystemClock
from models import Role
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
