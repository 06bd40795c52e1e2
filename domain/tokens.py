"""Tokens: issued (shown once, stored as a hash), listed to the ADMINs of their subtree,
revoked by them or by the token itself, and marked as used to the minute."""

import unicodedata
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain import ids, organizations, text
from domain.access import Viewer, hash_token, new_token
from domain.clock import Clock
from domain.errors import DomainError, ErrorCode, Problems
from domain.notices import SYSTEM
from domain.pagination import Page, PageRequest, make_page
from models import Organization, Role, Token
from models.base import column_length

TYPE_NAME = "Token"
MAX_NAME = column_length(Token.name)
# The numbra command's own moves show in history as "numbra import", "numbra export".
CLI_ACTOR_PREFIX = "numbra "


async def issue(
    session: AsyncSession,
    org: Organization,
    name: str,
    role: Role,
    clock: Clock,
    expires_at: datetime | None = None,
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
            expires_at=expires_at,
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
    session: AsyncSession,
    viewer: Viewer,
    clock: Clock,
    *,
    org_id: str,
    name: str,
    role: Role,
    expires_at: datetime | None = None,
) -> str:
    """An ADMIN issues a token for an organization of its subtree, with any role, that
    expires at `expires_at` (in the future) or never."""
    viewer.require(Role.ADMIN)
    problems = Problems()
    for refusal in name_refusals(name):
        problems.add(ErrorCode.VALIDATION, refusal, ["input", "name"])
    if expires_at is not None and expires_at <= clock.now():
        problems.add(
            ErrorCode.VALIDATION, "expiresAt must be in the future", ["input", "expiresAt"]
        )
    org = await organizations.named(session, viewer, org_id, ["input", "organizationId"], problems)
    problems.raise_if_any()
    assert org is not None
    return await issue(session, org, name, role, clock, expires_at)


def _visible_to(viewer: Viewer) -> sa.ColumnElement[bool]:
    """Tokens the viewer may see: its subtree's for an ADMIN; else only itself."""
    own = Token.id == viewer.token_id
    if not viewer.has_role(Role.ADMIN):
        return own
    return sa.or_(own, organizations.subtree_clause(viewer.org_path))


async def list_subtree(
    session: AsyncSession, viewer: Viewer, page: PageRequest, include_revoked: bool
) -> Page[Token]:
    """The tokens of the ADMIN's subtree, newest first; keyed by (created_at, uuid)."""
    viewer.require(Role.ADMIN)
    query = _subtree_tokens(viewer, include_revoked)
    if page.after is not None:
        created, key = _position(page.after)
        query = query.where(
            sa.or_(
                Token.created_at < created,
                sa.and_(Token.created_at == created, Token.uuid < key),
            )
        )
    query = query.order_by(Token.created_at.desc(), Token.uuid.desc()).limit(page.first + 1)
    return make_page((await session.scalars(query)).all(), page)


async def count_subtree(session: AsyncSession, viewer: Viewer, include_revoked: bool) -> int:
    viewer.require(Role.ADMIN)
    query = _subtree_tokens(viewer, include_revoked).subquery()
    return (await session.execute(sa.select(sa.func.count()).select_from(query))).scalar_one()


def _subtree_tokens(viewer: Viewer, include_revoked: bool) -> sa.Select[Token]:
    query = (
        sa.select(Token)
        .join(Organization, Organization.id == Token.organization_id)
        .where(organizations.subtree_clause(viewer.org_path))
    )
    return query if include_revoked else query.where(Token.revoked_at.is_(None))


def cursor_key(token: Token) -> tuple[str, str]:
    return token.created_at.isoformat(), str(token.uuid)


def _position(after: tuple[object, ...]) -> tuple[datetime, UUID]:
    try:
        created, key = after
        return datetime.fromisoformat(str(created)), UUID(str(key))
    except ValueError:
        raise DomainError.one(
            ErrorCode.VALIDATION, "after is not a cursor of this list", ["after"]
        ) from None


def key_of(ref: str) -> UUID | None:
    """The UUID a token reference names: its global ID, or its UUID; None if neither."""
    return ids.uuid_named(ref, TYPE_NAME)


async def find_visible(session: AsyncSession, viewer: Viewer, ref: str) -> Token | None:
    """The token `ref` names, if the viewer may see it (an ADMIN of its subtree, or the
    token itself); else None, exactly as for a token that does not exist."""
    key = key_of(ref)
    if key is None:
        return None
    query = (
        sa.select(Token)
        .join(Organization, Organization.id == Token.organization_id)
        .where(Token.uuid == key, _visible_to(viewer))
    )
    return (await session.scalars(query)).one_or_none()


async def revoke(session: AsyncSession, viewer: Viewer, clock: Clock, ref: str) -> Token:
    """Revoke a token: from the next request on it is refused, in every process. Revoking
    a revoked token changes nothing."""
    field = ["input", "id"]
    if key_of(ref) is None:
        raise DomainError.one(
            ErrorCode.VALIDATION, "id is neither a token's ID nor its UUID", field
        )
    token = await find_visible(session, viewer, ref)
    if token is None:
        raise DomainError.one(ErrorCode.NOT_FOUND, "no such token", field)
    await session.execute(
        sa.update(Token)
        .where(Token.id == token.id, Token.revoked_at.is_(None))
        .values(revoked_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    await session.refresh(token)
    return token


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def needs_marking(last_used_at: datetime | None, now: datetime) -> bool:
    """Whether the token's last use is older than this minute (so one write a minute)."""
    return last_used_at is None or last_used_at < minute_of(now)


async def mark_used(session: AsyncSession, token_id: int, now: datetime) -> None:
    """Set the token's last use to this minute, unless another request already did."""
    minute = minute_of(now)
    await session.execute(
        sa.update(Token)
        .where(
            Token.id == token_id,
            sa.or_(Token.last_used_at.is_(None), Token.last_used_at < minute),
        )
        .values(last_used_at=minute)
        .execution_options(synchronize_session=False)
    )
