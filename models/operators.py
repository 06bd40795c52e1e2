"""Operators: the carriers numbers are bought from, each kept by a reseller or the provider."""

from datetime import datetime
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Operator(Base):
    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[UUID] = mapped_column(sa.Uuid, unique=True, default=uuid4)
    # As numbers' vendor, which is the operator's name.
    name: Mapped[str] = mapped_column(sa.String(100))
    # The name case-folded: a name is unique per reseller whatever its case.
    name_key: Mapped[str] = mapped_column(sa.String(100))
    # The reseller that buys from it; the provider (root) for the provider's own, which
    # the API shows as no reseller. Never null, so the unique key needs no NULL rules.
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"))
    created_at: Mapped[datetime]

    __table_args__ = (sa.UniqueConstraint("organization_id", "name_key"),)
