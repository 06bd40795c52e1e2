"""porting: port orders and the numbers in them (DESIGN.md, "Porting")

Revision ID: 0016_porting
Revises: 0015_webhooks
Create Date: 2026-12-07

- port_orders: direction, status, pool, carrier, reference, focDate, closed_at.
- port_order_numbers: a number in an order and, for a port-out, every state column it
  left (prior_*), so cancelling puts it back exactly; a partial unique index keeps a
  number in at most one open order.
- NumberState PORTING_IN, PORTING_OUT; DeletionReason PORT_CANCELLED; NoticeKind
  PORT_FOC_NEAR, and notices.port_order_id (a notice is about a number, a token or an
  order).

As in 0014, the CHECK constraints of the tables with triggers (numbers, number_events,
number_state_counts) are edited in SQLite's schema text rather than by rebuilding them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_porting"
down_revision: str | None = "0015_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = ("AVAILABLE", "RESERVED", "LOCKED", "ASSIGNED", "DELETED")
NEW_STATES = (*STATES, "PORTING_IN", "PORTING_OUT")
DELETIONS = ("PORTED_OUT", "RETURNED_TO_VENDOR", "FAULTY", "RETIRED")
NEW_DELETIONS = (*DELETIONS, "PORT_CANCELLED")
KINDS = (
    "RESERVATION_LAPSING",
    "LOCK_LAPSING",
    "LOCK_LAPSED",
    "INTAKE_LIMIT_REACHED",
    "SERVICE_ENDING",
)
NEW_KINDS = (*KINDS, "PORT_FOC_NEAR")
RESERVATION_KINDS = ("FREE", "CHARGED")
RESERVATION_REASONS = (
    "MANUAL",
    "SUBSCRIPTION_EXPIRED",
    "SUBSCRIPTION_TERMINATED",
    "SWAPPED_OUT",
    "CANCELLED",
)
# Checks on number states: (table, constraint, column).
STATE_CHECKS = (
    ("numbers", "ck_numbers_number_state", "state"),
    ("number_events", "ck_number_events_from_state", "from_state"),
    ("number_events", "ck_number_events_to_state", "to_state"),
    ("number_state_counts", "ck_number_state_counts_number_state", "state"),
)
ABOUT_TWO = "(number_id IS NULL) <> (token_id IS NULL)"
ABOUT_THREE = (
    " + ".join(
        f"(CASE WHEN {column} IS NULL THEN 0 ELSE 1 END)"
        for column in ("number_id", "token_id", "port_order_id")
    )
    + " = 1"
)


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


def _enum(name: str, values: Sequence[str]) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "port_orders",
        _id(),
        sa.Column("uuid", sa.Uuid(), nullable=False),
        sa.Column("direction", _enum("port_direction", ("IN", "OUT")), nullable=False),
        sa.Column(
            "status",
            _enum(
                "port_order_status",
                ("DRAFT", "SUBMITTED", "FOC_CONFIRMED", "COMPLETED", "CANCELLED", "REJECTED"),
            ),
            nullable=False,
        ),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("carrier", sa.String(length=100), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("remark", sa.Text(), nullable=True),
        sa.Column("foc_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_port_orders_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_port_orders")),
        sa.UniqueConstraint("uuid", name=op.f("uq_port_orders_uuid")),
    )
    op.create_index(op.f("ix_port_orders_organization_id"), "port_orders", ["organization_id"])
    op.create_table(
        "port_order_numbers",
        _id(),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "number_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("prior_state", _enum("prior_state", NEW_STATES), nullable=True),
        sa.Column("prior_state_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("prior_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "prior_reservation_kind",
            _enum("prior_reservation_kind", RESERVATION_KINDS),
            nullable=True,
        ),
        sa.Column(
            "prior_reservation_reason",
            _enum("prior_reservation_reason", RESERVATION_REASONS),
            nullable=True,
        ),
        sa.Column("prior_reserved_for_id", sa.Integer(), nullable=True),
        sa.Column("prior_reservation_tag", sa.String(length=200), nullable=True),
        sa.Column("prior_reservation_remark", sa.Text(), nullable=True),
        sa.Column("prior_reserved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("prior_did_reservation_uuid", sa.Uuid(), nullable=True),
        sa.Column("prior_held_for_subscription_uuid", sa.Uuid(), nullable=True),
        sa.Column("prior_lock_remark", sa.Text(), nullable=True),
        sa.Column("prior_locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("prior_subscription_uuid", sa.Uuid(), nullable=True),
        sa.Column("prior_owner_id", sa.Integer(), nullable=True),
        sa.Column(
            "prior_deletion_reason", _enum("prior_deletion_reason", NEW_DELETIONS), nullable=True
        ),
        sa.Column("prior_billing_period_months", sa.Integer(), nullable=True),
        sa.Column("prior_billing_cycles", sa.Integer(), nullable=True),
        sa.Column("prior_paid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("prior_cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["port_orders.id"],
            name=op.f("fk_port_order_numbers_order_id_port_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["number_id"],
            ["numbers.id"],
            name=op.f("fk_port_order_numbers_number_id_numbers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["prior_reserved_for_id"],
            ["organizations.id"],
            name=op.f("fk_port_order_numbers_prior_reserved_for_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["prior_owner_id"],
            ["organizations.id"],
            name=op.f("fk_port_order_numbers_prior_owner_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_port_order_numbers")),
        sa.UniqueConstraint(
            "order_id", "number_id", name=op.f("uq_port_order_numbers_order_id_number_id")
        ),
    )
    op.create_index(
        "ix_port_order_numbers_open_number_id",
        "port_order_numbers",
        ["number_id"],
        unique=True,
        postgresql_where=sa.text("closed_at IS NULL"),
        sqlite_where=sa.text("closed_at IS NULL"),
    )
    for table, name, column in STATE_CHECKS:
        _check(table, name, column, STATES, NEW_STATES)
    _check("numbers", "ck_numbers_deletion_reason", "deletion_reason", DELETIONS, NEW_DELETIONS)
    # notices has no triggers: SQLite may rebuild it.
    with op.batch_alter_table("notices") as batch:
        batch.add_column(
            sa.Column(
                "port_order_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch.create_foreign_key(
            op.f("fk_notices_port_order_id_port_orders"),
            "port_orders",
            ["port_order_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_unique_constraint(
            op.f("uq_notices_port_order_id_kind_expires_at"),
            ["port_order_id", "kind", "expires_at"],
        )
        batch.drop_constraint(op.f("ck_notices_about_a_number_or_a_token"), type_="check")
        batch.create_check_constraint(op.f("ck_notices_about_one_thing"), sa.text(ABOUT_THREE))
        batch.drop_constraint(op.f("ck_notices_notice_kind"), type_="check")
        batch.create_check_constraint(
            op.f("ck_notices_notice_kind"), sa.text(_in("kind", NEW_KINDS))
        )


def downgrade() -> None:
    op.execute("DELETE FROM notices WHERE port_order_id IS NOT NULL OR kind = 'PORT_FOC_NEAR'")
    with op.batch_alter_table("notices") as batch:
        batch.drop_constraint(op.f("ck_notices_notice_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_notices_notice_kind"), sa.text(_in("kind", KINDS)))
        batch.drop_constraint(op.f("ck_notices_about_one_thing"), type_="check")
        batch.create_check_constraint(
            op.f("ck_notices_about_a_number_or_a_token"), sa.text(ABOUT_TWO)
        )
        batch.drop_constraint(op.f("uq_notices_port_order_id_kind_expires_at"), type_="unique")
        batch.drop_constraint(op.f("fk_notices_port_order_id_port_orders"), type_="foreignkey")
        batch.drop_column("port_order_id")
    # Numbers still porting go back to DELETED: their orders go with this migration.
    op.execute(
        "UPDATE numbers SET state = 'DELETED', deletion_reason = 'RETURNED_TO_VENDOR' "
        "WHERE state IN ('PORTING_IN', 'PORTING_OUT')"
    )
    op.execute(
        "UPDATE numbers SET deletion_reason = 'RETURNED_TO_VENDOR' "
        "WHERE deletion_reason = 'PORT_CANCELLED'"
    )
    op.execute(
        "DELETE FROM number_events WHERE from_state IN ('PORTING_IN', 'PORTING_OUT') "
        "OR to_state IN ('PORTING_IN', 'PORTING_OUT')"
    )
    op.execute("DELETE FROM number_state_counts WHERE state IN ('PORTING_IN', 'PORTING_OUT')")
    _check("numbers", "ck_numbers_deletion_reason", "deletion_reason", NEW_DELETIONS, DELETIONS)
    for table, name, column in STATE_CHECKS:
        _check(table, name, column, NEW_STATES, STATES)
    op.drop_index("ix_port_order_numbers_open_number_id", table_name="port_order_numbers")
    op.drop_table("port_order_numbers")
    op.drop_index(op.f("ix_port_orders_organization_id"), table_name="port_orders")
    op.drop_table("port_orders")
