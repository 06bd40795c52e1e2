"""API tokens: each belongs to one organization and has a role. Only a hash is kept."""

import enum
from datetime import datetime
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, str_enum


class Role(enum.StrEnum):
    ADMIN = "ADMIN"
    OPERATOR = "OPERATOR"
    VIEWER = "VIEWER"


class Token(Base):
    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[UUID] = mapped_column(sa.Uuid, unique=True, default=uuid4)
    name: Mapped[str] = mapped_column(sa.String(200))
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[Role] = mapped_column(str_enum(Role, "role"))
    # SHA-256 of the token: tokens are 256 random bits, so a fast hash is enough.
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    # None: never expires. An expired token is refused as a revoked one is.
    expires_at: Mapped[datetime | None]
    # To the minute: written at most once a minute per token, so a busy token costs no
    # write per request.
    last_used_at: Mapped[datetime | None]
