"""numbers and their history

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "numbers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "e164",
            sa.String(length=16).with_variant(sa.String(length=16, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(
                "AVAILABLE",
                "RESERVED",
                "LOCKED",
                "ASSIGNED",
                "DELETED",
                name="number_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("vendor", sa.String(length=100), nullable=False),
        sa.Column("capabilities", sa.Integer(), nullable=False),
        sa.Column("routing", sa.String(length=200), nullable=True),
        sa.Column("golden", sa.Boolean(), nullable=False),
        sa.Column("ported_in", sa.Boolean(), nullable=False),
        sa.Column("visible_to_domain", sa.String(length=200), nullable=True),
        sa.Column("tag", sa.String(length=200), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=True),
        sa.Column("state_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "reservation_kind",
            sa.Enum(
                "FREE",
                "CHARGED",
                name="reservation_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column(
            "reservation_reason",
            sa.Enum(
                "MANUAL",
                "SUBSCRIPTION_EXPIRED",
                "SUBSCRIPTION_TERMINATED",
                "SWAPPED_OUT",
                name="reservation_reason",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("reserved_for_id", sa.Integer(), nullable=True),
        sa.Column("reservation_tag", sa.String(length=200), nullable=True),
        sa.Column("reservation_remark", sa.Text(), nullable=True),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("did_reservation_uuid", sa.Uuid(), nullable=True),
        sa.Column("held_for_subscription_uuid", sa.Uuid(), nullable=True),
        sa.Column("lock_remark", sa.Text(), nullable=True),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("subscription_uuid", sa.Uuid(), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column(
            "deletion_reason",
            sa.Enum(
                "PORTED_OUT",
                "RETURNED_TO_VENDOR",
                "FAULTY",
                name="deletion_reason",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_numbers_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["organizations.id"], name=op.f("fk_numbers_owner_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["reserved_for_id"],
            ["organizations.id"],
            name=op.f("fk_numbers_reserved_for_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["series_id"], ["series.id"], name=op.f("fk_numbers_series_id_series")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_numbers")),
        sa.UniqueConstraint("e164", name=op.f("uq_numbers_e164")),
    )
    with op.batch_alter_table("numbers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_numbers_held_for_subscription_uuid"),
            ["held_for_subscription_uuid"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_numbers_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            "ix_numbers_organization_id_state", ["organization_id", "state"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_numbers_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_numbers_series_id"), ["series_id"], unique=False)
        batch_op.create_index("ix_numbers_state_expires_at", ["state", "expires_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_numbers_subscription_uuid"), ["subscription_uuid"], unique=False
        )

    op.create_table(
        "number_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "number_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column(
            "from_state",
            sa.Enum(
                "AVAILABLE",
                "RESERVED",
                "LOCKED",
                "ASSIGNED",
                "DELETED",
                name="from_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column(
            "to_state",
            sa.Enum(
                "AVAILABLE",
                "RESERVED",
                "LOCKED",
                "ASSIGNED",
                "DELETED",
                name="to_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("remark", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["number_id"],
            ["numbers.id"],
            name=op.f("fk_number_events_number_id_numbers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_number_events")),
    )
    with op.batch_alter_table("number_events", schema=None) as batch_op:
        batch_op.create_index("ix_number_events_number_id_id", ["number_id", "id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("number_events", schema=None) as batch_op:
        batch_op.drop_index("ix_number_events_number_id_id")

    op.drop_table("number_events")
    with op.batch_alter_table("numbers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_numbers_subscription_uuid"))
        batch_op.drop_index("ix_numbers_state_expires_at")
        batch_op.drop_index(batch_op.f("ix_numbers_series_id"))
        batch_op.drop_index(batch_op.f("ix_numbers_owner_id"))
        batch_op.drop_index("ix_numbers_organization_id_state")
        batch_op.drop_index(batch_op.f("ix_numbers_organization_id"))
        batch_op.drop_index(batch_op.f("ix_numbers_held_for_subscription_uuid"))

    op.drop_table("numbers")
