"""The organization tree: provider → partners → customers → departments, to any depth."""

import enum
from datetime import datetime
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, str_enum

# Path segments are zero-padded ids so that ordering by path is depth-first with
# siblings in creation order, and a subtree is one range of the path index.
PATH_SEGMENT_WIDTH = 10
# Paths must compare byte by byte ('/' before digits) on PostgreSQL as on SQLite.
PATH_LENGTH = 4000
BYTEWISE_STRING = sa.String(PATH_LENGTH).with_variant(
    sa.String(PATH_LENGTH, collation="C"), "postgresql"
)
# The deepest an organization's path can be in that column: "/", then one segment (the id
# and "/") for each level from the root (depth 0) down. NUMBRA_MAX_TREE_DEPTH stays below.
DEEPEST = (PATH_LENGTH - 1) // (PATH_SEGMENT_WIDTH + 1) - 1


class OrganizationKind(enum.StrEnum):
    PROVIDER = "PROVIDER"
    PARTNER = "PARTNER"
    CUSTOMER = "CUSTOMER"
    DEPARTMENT = "DEPARTMENT"


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[UUID] = mapped_column(sa.Uuid, unique=True, default=uuid4)
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[OrganizationKind] = mapped_column(str_enum(OrganizationKind, "organization_kind"))
    parent_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    # "/0000000001/0000000007/": the ids from the root down to this organization.
    path: Mapped[str] = mapped_column(BYTEWISE_STRING, unique=True)
    depth: Mapped[int] = mapped_column(sa.Integer)
    billing_email: Mapped[str | None] = mapped_column(sa.String(320))
    owner_email: Mapped[str | None] = mapped_column(sa.String(320))
    support_email: Mapped[str | None] = mapped_column(sa.String(320))
    # Its ADMINs may bring numbers into the inventory; set by an ADMIN above it, and only
    # if its parent may (the provider always may, whatever this says).
    may_add_numbers: Mapped[bool] = mapped_column(
        sa.Boolean, default=False, server_default=sa.false()
    )
    created_at: Mapped[datetime]

    __table_args__ = (
        sa.CheckConstraint("(parent_id IS NULL) = (depth = 0)", name="root_has_no_parent"),
    )

    @property
    def ancestor_ids(self) -> list[int]:
        return ancestor_ids(self.path)


def ancestor_ids(path: str) -> list[int]:
    """Ids from the root down to the parent of the organization at `path`."""
    return [int(segment) for segment in path.strip("/").split("/")[:-1]]


def path_segment(org_id: int) -> str:
    return f"{org_id:0{PATH_SEGMENT_WIDTH}d}/"
