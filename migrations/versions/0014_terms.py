"""terms: the paid service term Numbra renews itself (DESIGN.md, "Lifecycle, version 2")

Revision ID: 0014_terms
Revises: 0013_operators
Create Date: 2026-12-01

- numbers.billing_period_months (1, 3, 6 or 12; null: no term, billing drives the
  subscription), paid_until, billing_cycles (null: unlimited), cancelled_at.
- ix_numbers_paid_until: the renewal sweep's index, only over numbers with a term.
- ReservationReason CANCELLED; NoticeKind SERVICE_ENDING.

SQLite cannot alter a CHECK constraint without rebuilding the table, which would drop
the search and count triggers of 0003 and 0005: the constraint's text is edited in
the schema instead (only the accepted values change; no stored row is touched).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_terms"
down_revision: str | None = "0013_operators"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REASONS = ("MANUAL", "SUBSCRIPTION_EXPIRED", "SUBSCRIPTION_TERMINATED", "SWAPPED_OUT")
NEW_REASONS = (*REASONS, "CANCELLED")
KINDS = ("RESERVATION_LAPSING", "LOCK_LAPSING", "LOCK_LAPSED", "INTAKE_LIMIT_REACHED")
NEW_KINDS = (*KINDS, "SERVICE_ENDING")
COLUMNS = ("billing_period_months", "paid_until", "billing_cycles", "cancelled_at")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN (" + ", ".join(f"'{value}'" for value in values) + ")"


def _check(table: str, name: str, column: str, old: Sequence[str], new: Sequence[str]) -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("PRAGMA writable_schema = ON")
        op.execute(
            sa.text(
                "UPDATE sqlite_master SET sql = replace(sql, :old, :new) "
                "WHERE type = 'table' AND name = :table"
            ).bindparams(old=_in(column, old), new=_in(column, new), table=table)
        )
        version = op.get_bind().exec_driver_sql("PRAGMA schema_version").scalar_one()
        op.execute(f"PRAGMA schema_version = {int(version) + 1}")
        op.execute("PRAGMA writable_schema = OFF")
        return
    op.drop_constraint(op.f(name), table, type_="check")
    op.create_check_constraint(op.f(name), table, sa.text(_in(column, new)))


def upgrade() -> None:
    op.add_column("numbers", sa.Column("billing_period_months", sa.Integer(), nullable=True))
    op.add_column("numbers", sa.Column("paid_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("numbers", sa.Column("billing_cycles", sa.Integer(), nullable=True))
    op.add_column("numbers", sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_numbers_paid_until",
        "numbers",
        ["paid_until"],
        postgresql_where=sa.text("paid_until IS NOT NULL"),
        sqlite_where=sa.text("paid_until IS NOT NULL"),
    )
    _check("numbers", "ck_numbers_reservation_reason", "reservation_reason", REASONS, NEW_REASONS)
    _check("notices", "ck_notices_notice_kind", "kind", KINDS, NEW_KINDS)


def downgrade() -> None:
    op.execute("DELETE FROM notices WHERE kind = 'SERVICE_ENDING'")
    op.execute(
        "UPDATE numbers SET reservation_reason = 'SUBSCRIPTION_EXPIRED' "
        "WHERE reservation_reason = 'CANCELLED'"
    )
    _check("notices", "ck_notices_notice_kind", "kind", NEW_KINDS, KINDS)
    _check("numbers", "ck_numbers_reservation_reason", "reservation_reason", NEW_REASONS, REASONS)
    op.drop_index("ix_numbers_paid_until", table_name="numbers")
    for column in reversed(COLUMNS):
        op.drop_column("numbers", column)
