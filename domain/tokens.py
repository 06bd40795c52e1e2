"""Issuing tokens: shown once, stored as a hash."""

import unicodedata

from sqlalchemy.ext.asyncio import AsyncSession

from domain import organizations, text
from domain.access import Viewer, hash_token, new_token
from domain.clock import Clock
from domain.errors import ErrorCode, Problems
from domain.notices import SYSTEM
from models import Organization, Role, Token
from models.base import column_length

MAX_NAME = column_length(Token.name)
# The numbra command's own moves show in history as "numbra import", "numbra export".
CLI_ACTOR_PREFIX = "numbra "


async def issue(
    session: AsyncSession, org: Organization, name: str, role: Role, clock: Clock
) -> str:
    """Create a token for `org` and return its text: the only time it exists in the clear."""
    raw = new_token()
    session.add(
        Token(
            name=name.strip(),
            organization_id=org.id,
            role=role,
            token_hash=hash_token(raw),
            created_at=clock.now(),
        )
    )
    await session.flush()
    return raw


def name_refusals(name: str) -> list[str]:
    """Why a token may not have this name: history shows it as the actor of every move the
    token makes, so it is a line of text, and not a name history gives its jobs or the CLI."""
    refusals = []
    if not name.strip() or len(name.strip()) > MAX_NAME:
        refusals.append(f"name must be 1 to {MAX_NAME} characters")
    refused = text.refusal(name, "name")
    if refused is not None:
        refusals.append(refused)
    elif _reserved(name):
        refusals.append(f"{name.strip()!r} is how history names jobs and the numbra command")
    return refusals


def _reserved(name: str) -> bool:
    # Compared as a reader would tell them apart: case, width and spacing aside.
    folded = " ".join(unicodedata.normalize("NFKC", name).casefold().split())
    return folded == SYSTEM or folded.startswith(CLI_ACTOR_PREFIX)


async def create(
    session: AsyncSession, viewer: Viewer, clock: Clock, *, org_id: str, name: str, role: Role
) -> str:
    """An ADMIN issues a token for an organization of its subtree, with any role."""
    viewer.require(Role.ADMIN)
    problems = Problems()
    for refusal in name_refusals(name):
        problems.add(ErrorCode.VALIDATION, refusal, ["input", "name"])
    org = await organizations.named(session, viewer, org_id, ["input", "organizationId"], problems)
    problems.raise_if_any()
    assert org is not None
    return await issue(session, org, name, role, clock)
