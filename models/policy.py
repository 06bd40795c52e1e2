"""What an organization sets of the number policy itself; null columns are inherited."""

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, str_enum
from models.numbers import AfterHold


class NumberPolicy(Base):
    __tablename__ = "number_policies"

    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    free_reservation_days: Mapped[int | None]
    expired_hold_days: Mapped[int | None]
    terminated_hold_days: Mapped[int | None]
    cancelled_hold_days: Mapped[int | None]
    swap_hold_days: Mapped[int | None]
    lock_days: Mapped[int | None]
    notice_days: Mapped[int | None]
    after_hold: Mapped[AfterHold | None] = mapped_column(str_enum(AfterHold, "policy_after_hold"))
