"""Who is asking, and what they may do: bearer tokens, roles, subtree scoping, the caller.

A token sees only its organization's subtree. Anything outside it is reported
exactly as if it did not exist, so ids of other tenants never leak.
"""

import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain.clock import Clock
from domain.errors import DomainError, ErrorCode
from domain.policy import Policy
from models import Organization, Role, Token

TOKEN_PREFIX = "nbr_"
# The token id of a viewer that holds no token: the CLI, run by the operator on its own
# machine (and the tests' world builder).
NO_TOKEN = 0
_ROLE_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Viewer:
    token_id: int
    token_name: str
    role: Role
    org_id: int
    org_path: str

    @property
    def depth(self) -> int:
        """Depth of the token's organization: 0 for the provider."""
        return self.org_path.count("/") - 2

    @property
    def at_root(self) -> bool:
        return self.depth == 0

    @property
    def has_token(self) -> bool:
        return self.token_id != NO_TOKEN

    def sees(self, org: Organization) -> bool:
        return org.path.startswith(self.org_path)

    def has_role(self, role: Role) -> bool:
        return _ROLE_RANK[self.role] >= _ROLE_RANK[role]

    def require(self, role: Role) -> None:
        if not self.has_role(role):
            raise DomainError.one(
                ErrorCode.FORBIDDEN, f"this needs a token with the {role.value} role"
            )


@dataclass(frozen=True)
class Caller:
    """Who acts, and by which clock and rules."""

    viewer: Viewer
    clock: Clock
    policy: Policy

    @property
    def actor(self) -> str:
        return self.viewer.token_name


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def authenticate(session: AsyncSession, raw: str) -> Viewer | None:
    """The viewer a bearer token stands for, or None if it is unknown or revoked."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    row = (
        await session.execute(
            sa.select(Token.id, Token.name, Token.role, Organization.id, Organization.path)
            .join(Organization, Organization.id == Token.organization_id)
            .where(Token.token_hash == hash_token(raw), Token.revoked_at.is_(None))
        )
    ).one_or_none()
    if row is None:
        return None
    token_id, name, role, org_id, path = row
    return Viewer(token_id=token_id, token_name=name, role=role, org_id=org_id, org_path=path)
