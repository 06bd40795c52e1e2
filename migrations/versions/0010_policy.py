"""policy: periods and the after-hold state per organization; a number's own after-hold

Revision ID: 0010_policy
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_policy"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AFTER_HOLD = ("AVAILABLE", "LOCKED", "DELETED")
DELETION_REASONS = ("PORTED_OUT", "RETURNED_TO_VENDOR", "FAULTY")
RETIRED = "RETIRED"
PERIODS = (
    "free_reservation_days",
    "expired_hold_days",
    "terminated_hold_days",
    "cancelled_hold_days",
    "swap_hold_days",
    "lock_days",
    "notice_days",
)


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _rewrite_sqlite_check(table: str, old: str, new: str) -> None:
    """Widen a CHECK on SQLite in place: the rows already pass the wider check, so only
    the table's stored definition changes (SQLite's documented writable_schema procedure).
    Rebuilding `numbers` would drop its search and counting triggers."""
    bind = op.get_bind()
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.execute(
        sa.text(
            "UPDATE sqlite_master SET sql = replace(sql, :old, :new) "
            "WHERE type = 'table' AND name = :table"
        ),
        {"old": old, "new": new, "table": table},
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def _deletion_reasons(reasons: Sequence[str], was: Sequence[str]) -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rewrite_sqlite_check(
            "numbers", _in("deletion_reason", was), _in("deletion_reason", reasons)
        )
        return
    op.drop_constraint(op.f("ck_numbers_deletion_reason"), "numbers", type_="check")
    op.create_check_constraint(
        op.f("ck_numbers_deletion_reason"), "numbers", _in("deletion_reason", reasons)
    )


def upgrade() -> None:
    op.create_table(
        "number_policies",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        *(sa.Column(period, sa.Integer(), nullable=True) for period in PERIODS),
        sa.Column(
            "after_hold",
            sa.Enum(
                *AFTER_HOLD,
                name="policy_after_hold",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_number_policies_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_number_policies")),
    )
    check = f"CONSTRAINT ck_numbers_after_hold CHECK ({_in('after_hold', AFTER_HOLD)})"
    if op.get_bind().dialect.name == "sqlite":
        # ADD COLUMN keeps the triggers on numbers that a batch rebuild would drop.
        op.execute(f"ALTER TABLE numbers ADD COLUMN after_hold VARCHAR(32) {check}")
    else:
        op.add_column("numbers", sa.Column("after_hold", sa.String(length=32), nullable=True))
        op.create_check_constraint(
            op.f("ck_numbers_after_hold"), "numbers", _in("after_hold", AFTER_HOLD)
        )
    _deletion_reasons((*DELETION_REASONS, RETIRED), was=DELETION_REASONS)


def downgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE numbers SET deletion_reason = 'FAULTY' WHERE deletion_reason = :r"
        ).bindparams(r=RETIRED)
    )
    _deletion_reasons(DELETION_REASONS, was=(*DELETION_REASONS, RETIRED))
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE numbers DROP COLUMN after_hold")
    else:
        op.drop_column("numbers", "after_hold")
    op.drop_table("number_policies")
