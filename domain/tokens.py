"""Issuing tokens: shown once, stored as a hash."""

from sqlalchemy.ext.asyncio import AsyncSession

from domain import organizations
from domain.access import Viewer, hash_token, new_token
from domain.clock import Clock
from domain.errors import ErrorCode, Problems
from models import Organization, Role, Token
from models.base import column_length

MAX_NAME = column_length(Token.name)


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


async def create(
    session: AsyncSession, viewer: Viewer, clock: Clock, *, org_id: str, name: str, role: Role
) -> str:
    """An ADMIN issues a token for an organization of its subtree, with any role."""
    viewer.require(Role.ADMIN)
    problems = Problems()
    if not name.strip() or len(name.strip()) > MAX_NAME:
        problems.add(
            ErrorCode.VALIDATION, f"name must be 1 to {MAX_NAME} characters", ["input", "name"]
        )
    org = await organizations.named(session, viewer, org_id, ["input", "organizationId"], problems)
    problems.raise_if_any()
    assert org is not None
    return await issue(session, org, name, role, clock)
