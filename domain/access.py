"""Who is asking, and what they may do: bearer tokens, roles, subtree scoping, the caller.

A token sees only its organization's subtree. Anything outside it is reported
exactly as if it did not exist, so ids of other tenants never leak.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from domain.clock import Clock
from domain.errors import DomainError, ErrorCode
from domain.policy import Policy
from models import Organization, Role, Token
from models.prepared import Prepared

TOKEN_PREFIX = "nbr_"
# The token id of a viewer that holds no token: the CLI, run by the operator on its own
# machine (and the tests' world builder).
NO_TOKEN = 0
_ROLE_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


class _AtPath(Protocol):
    """An organization (a row or a plain read of one), as far as seeing it goes."""

    @property
    def path(self) -> str: ...


@dataclass(frozen=True)
class Viewer:
    token_id: int
    token_name: str
    role: Role
    org_id: int
    org_path: str
    # The token's own UUID (None for the CLI's viewer): what its budget is kept under.
    token_uuid: UUID | None = None

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

    def sees(self, org: _AtPath) -> bool:
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


# Built once: every request runs it, and building it is most of its cost in Python.
_TOKEN_LOOKUP = Prepared(
    sa.select(
        Token.id,
        Token.uuid,
        Token.name,
        Token.role,
        Token.last_used_at,
        Organization.id,
        Organization.path,
    )
    .join(Organization, Organization.id == Token.organization_id)
    .where(
        Token.token_hash == sa.bindparam("token_hash"),
        Token.revoked_at.is_(None),
        sa.or_(
            Token.expires_at.is_(None),
            Token.expires_at > sa.bindparam("now", type_=Token.expires_at.type),
        ),
    )
)


@dataclass(frozen=True)
class Authenticated:
    """A token found valid: the viewer it stands for, and when it was last used."""

    viewer: Viewer
    last_used_at: datetime | None


async def identify(
    session: AsyncSession | AsyncConnection, raw: str, now: datetime
) -> Authenticated | None:
    """The token `raw` is, if it is known, not revoked and not expired at `now`.

    Looked up in the database at every request (one indexed statement), so a revoked
    token is refused from the next request on, in every process.
    """
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    connection = await session.connection() if isinstance(session, AsyncSession) else session
    found = await _TOKEN_LOOKUP.rows(connection, {"token_hash": hash_token(raw), "now": now})
    if not found:
        return None
    token_id, token_uuid, name, role, last_used_at, org_id, path = found[0]
    viewer = Viewer(
        token_id=token_id,
        token_name=name,
        role=role,
        org_id=org_id,
        org_path=path,
        token_uuid=token_uuid,
    )
    return Authenticated(viewer, last_used_at)


async def authenticate(
    session: AsyncSession, raw: str, now: datetime | None = None
) -> Viewer | None:
    """The viewer a bearer token stands for, or None if it is unknown, revoked or expired."""
    found = await identify(session, raw, now or datetime.now(UTC))
    return found.viewer if found is not None else None
