"""Notices: the outbox of e-mails that warn before (and when) reservations and locks lapse."""

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, str_enum


class NoticeKind(enum.StrEnum):
    # To the reserver, some days before the reservation lapses.
    RESERVATION_LAPSING = "RESERVATION_LAPSING"
    # To support, some days before the lock lapses, and when it has lapsed.
    LOCK_LAPSING = "LOCK_LAPSING"
    LOCK_LAPSED = "LOCK_LAPSED"
    # To the provider's support, when a token's intake is refused for the rest of the day
    # (past NUMBRA_INTAKE_REFUSALS_PER_DAY): about the token, not a number.
    INTAKE_LIMIT_REACHED = "INTAKE_LIMIT_REACHED"
    # To the owner's billing e-mail, some days before a paid term that will not renew ends.
    SERVICE_ENDING = "SERVICE_ENDING"
    # To the pool's owner and the nearest partner's support, some days before a port
    # order's FOC date: about the order, keyed by (order, focDate).
    PORT_FOC_NEAR = "PORT_FOC_NEAR"


class NoticeStatus(enum.StrEnum):
    PENDING = "PENDING"
    # Claimed by a worker until `next_attempt_at`; claimable again after that.
    SENDING = "SENDING"
    SENT = "SENT"
    FAILED = "FAILED"
    # The reservation or lock it was about changed or ended before it went out.
    CANCELLED = "CANCELLED"


# A notice is about exactly one of a number, a token and a port order.
ABOUT_ONE_THING = (
    " + ".join(
        f"(CASE WHEN {column} IS NULL THEN 0 ELSE 1 END)"
        for column in ("number_id", "token_id", "port_order_id")
    )
    + " = 1"
)


class Notice(Base):
    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    # What the notice is about: a number, (INTAKE_LIMIT_REACHED) a token, or
    # (PORT_FOC_NEAR) a port order.
    number_id: Mapped[int | None] = mapped_column(sa.ForeignKey("numbers.id", ondelete="CASCADE"))
    token_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tokens.id", ondelete="CASCADE"))
    port_order_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("port_orders.id", ondelete="CASCADE")
    )
    kind: Mapped[NoticeKind] = mapped_column(str_enum(NoticeKind, "notice_kind"))
    # The end of the reservation or lock the notice is about (of the day the token's intake
    # is refused for): with number (token) and kind, its key.
    expires_at: Mapped[datetime]
    due_at: Mapped[datetime]
    status: Mapped[NoticeStatus] = mapped_column(str_enum(NoticeStatus, "notice_status"))
    # When it may next be claimed: first the due time, then a retry's backoff or a claim's lease.
    next_attempt_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(sa.Integer)
    recipients: Mapped[str | None] = mapped_column(sa.Text)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]

    __table_args__ = (
        sa.UniqueConstraint("number_id", "kind", "expires_at"),
        sa.UniqueConstraint("token_id", "kind", "expires_at"),
        sa.UniqueConstraint("port_order_id", "kind", "expires_at"),
        sa.CheckConstraint(ABOUT_ONE_THING, name="about_one_thing"),
        sa.Index("ix_notices_status_next_attempt_at", "status", "next_attempt_at"),
    )
