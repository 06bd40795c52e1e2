"""intake: who may bring numbers in, and answers about numbers held elsewhere, counted

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23

- organizations.may_add_numbers: its ADMINs may add and import numbers (false for all
  but the provider, which always may).
- intake_refusals: per token and UTC day, how many times it was told a number is
  already held outside its subtree (NUMBRA_INTAKE_REFUSALS_PER_DAY).
- notices may be about a token instead of a number: INTAKE_LIMIT_REACHED, to the
  provider's support when a token's intake is refused for the rest of the day.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = ("RESERVATION_LAPSING", "LOCK_LAPSING", "LOCK_LAPSED")
NEW_KINDS = (*KINDS, "INTAKE_LIMIT_REACHED")


def _kinds(kinds: Sequence[str]) -> str:
    return "kind IN (" + ", ".join(f"'{kind}'" for kind in kinds) + ")"


def upgrade() -> None:
    with op.batch_alter_table("organizations") as batch:
        batch.add_column(
            sa.Column("may_add_numbers", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "intake_refusals",
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["tokens.id"],
            name=op.f("fk_intake_refusals_token_id_tokens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_id", "day", name=op.f("pk_intake_refusals")),
    )
    with op.batch_alter_table("notices") as batch:
        batch.alter_column(
            "number_id",
            existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        )
        batch.add_column(sa.Column("token_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_notices_token_id_tokens"), "tokens", ["token_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_unique_constraint(
            op.f("uq_notices_token_id_kind_expires_at"), ["token_id", "kind", "expires_at"]
        )
        batch.create_check_constraint(
            op.f("ck_notices_about_a_number_or_a_token"),
            sa.text("(number_id IS NULL) <> (token_id IS NULL)"),
        )
        batch.drop_constraint(op.f("ck_notices_notice_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_notices_notice_kind"), sa.text(_kinds(NEW_KINDS)))


def downgrade() -> None:
    op.execute("DELETE FROM notices WHERE number_id IS NULL")
    with op.batch_alter_table("notices") as batch:
        batch.drop_constraint(op.f("ck_notices_notice_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_notices_notice_kind"), sa.text(_kinds(KINDS)))
        batch.drop_constraint(op.f("ck_notices_about_a_number_or_a_token"), type_="check")
        batch.drop_constraint(op.f("uq_notices_token_id_kind_expires_at"), type_="unique")
        batch.drop_constraint(op.f("fk_notices_token_id_tokens"), type_="foreignkey")
        batch.drop_column("token_id")
        batch.alter_column(
            "number_id",
            existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        )
    op.drop_table("intake_refusals")
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("may_add_numbers")
