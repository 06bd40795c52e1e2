"""Intake answers about numbers held elsewhere, counted per token and UTC day."""

from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class IntakeRefusal(Base):
    """How many times a token was told, that day, that a number it would bring in is
    already held outside its organization's subtree (NUMBRA_INTAKE_REFUSALS_PER_DAY)."""

    __tablename__ = "intake_refusals"

    token_id: Mapped[int] = mapped_column(
        sa.ForeignKey("tokens.id", ondelete="CASCADE"), primary_key=True
    )
    # The UTC day.
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    count: Mapped[int] = mapped_column(sa.Integer)
