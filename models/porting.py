"""Port orders: numbers moving in from, or out to, another carrier (DESIGN.md, "Porting")."""

import enum
from datetime import datetime
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, str_enum
from models.numbers import (
    BlockReason,
    DeletionReason,
    NumberState,
    ReservationKind,
    ReservationReason,
)


class PortDirection(enum.StrEnum):
    IN = "IN"
    OUT = "OUT"


class PortOrderStatus(enum.StrEnum):
    DRAFT = "DRAFT"
    SUBMITTED = "SUBMITTED"
    FOC_CONFIRMED = "FOC_CONFIRMED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"


class PortOrder(Base):
    __tablename__ = "port_orders"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    uuid: Mapped[UUID] = mapped_column(sa.Uuid, unique=True, default=uuid4)
    direction: Mapped[PortDirection] = mapped_column(str_enum(PortDirection, "port_direction"))
    status: Mapped[PortOrderStatus] = mapped_column(str_enum(PortOrderStatus, "port_order_status"))
    # The pool the numbers are in (port-out) or join (port-in).
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    # The losing carrier of a port-in, the gaining one of a port-out.
    carrier: Mapped[str] = mapped_column(sa.String(100))
    reference: Mapped[str | None] = mapped_column(sa.String(200))
    remark: Mapped[str | None] = mapped_column(sa.Text)
    # Firm order commitment: when the numbers move.
    foc_date: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # When it was completed, cancelled or rejected; null while open.
    closed_at: Mapped[datetime | None]


class PortOrderNumber(Base):
    """A number in a port order and, for a port-out, the state it left, column by column:
    cancelling or rejecting the order puts the number back exactly as it was."""

    __tablename__ = "port_order_numbers"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("port_orders.id", ondelete="CASCADE"))
    number_id: Mapped[int] = mapped_column(sa.ForeignKey("numbers.id", ondelete="CASCADE"))
    # Copied from its order when it closes: a number is in at most one open order.
    closed_at: Mapped[datetime | None]

    # Port-out only: the number's state columns when it left (null for a port-in).
    prior_state: Mapped[NumberState | None] = mapped_column(str_enum(NumberState, "prior_state"))
    prior_state_changed_at: Mapped[datetime | None]
    prior_expires_at: Mapped[datetime | None]
    prior_reservation_kind: Mapped[ReservationKind | None] = mapped_column(
        str_enum(ReservationKind, "prior_reservation_kind")
    )
    prior_reservation_reason: Mapped[ReservationReason | None] = mapped_column(
        str_enum(ReservationReason, "prior_reservation_reason")
    )
    prior_reserved_for_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organizations.id"))
    prior_reservation_tag: Mapped[str | None] = mapped_column(sa.String(200))
    prior_reservation_remark: Mapped[str | None] = mapped_column(sa.Text)
    prior_reserved_at: Mapped[datetime | None]
    prior_did_reservation_uuid: Mapped[UUID | None] = mapped_column(sa.Uuid)
    prior_held_for_subscription_uuid: Mapped[UUID | None] = mapped_column(sa.Uuid)
    prior_lock_remark: Mapped[str | None] = mapped_column(sa.Text)
    prior_locked_at: Mapped[datetime | None]
    prior_subscription_uuid: Mapped[UUID | None] = mapped_column(sa.Uuid)
    prior_owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organizations.id"))
    prior_deletion_reason: Mapped[DeletionReason | None] = mapped_column(
        str_enum(DeletionReason, "prior_deletion_reason")
    )
    prior_billing_period_months: Mapped[int | None] = mapped_column(sa.Integer)
    prior_billing_cycles: Mapped[int | None] = mapped_column(sa.Integer)
    prior_paid_until: Mapped[datetime | None]
    prior_cancelled_at: Mapped[datetime | None]
    prior_block_reason: Mapped[BlockReason | None] = mapped_column(
        str_enum(BlockReason, "prior_block_reason")
    )
    prior_blocked_at: Mapped[datetime | None]
    prior_blocked_until: Mapped[datetime | None]
    prior_block_remark: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (
        sa.UniqueConstraint("order_id", "number_id"),
        # One open port order per number, on both databases.
        sa.Index(
            "ix_port_order_numbers_open_number_id",
            "number_id",
            unique=True,
            postgresql_where=sa.text("closed_at IS NULL"),
            sqlite_where=sa.text("closed_at IS NULL"),
        ),
    )


# The number columns a port-out remembers: `prior_<name>` for each.
REMEMBERED = tuple(
    column.name.removeprefix("prior_")
    for column in PortOrderNumber.__table__.c
    if column.name.startswith("prior_")
)
