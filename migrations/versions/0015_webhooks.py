"""webhooks: endpoints, the deliveries outbox, and the trigger that fills it

Revision ID: 0015_webhooks
Revises: 0014_terms
Create Date: 2026-12-07

- webhook_endpoints: an organization's receivers (url, actions, signing secrets).
- webhook_deliveries: one row per (endpoint, event), and one per PING.
- The trigger webhook_outbox on number_events writes an event's deliveries in the
  event's own statement, so in its transaction: every path that records an event (the
  API, jobs, the CLI) fills the outbox, and a rolled-back change leaves nothing to send.
  PostgreSQL runs it once per statement over the new rows; SQLite once per row.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_webhooks"
down_revision: str | None = "0014_terms"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    "uuid, endpoint_id, event_id, action, status, attempts, next_attempt_at, retry_from, created_at"
)

SQLITE_TRIGGER = f"""
CREATE TRIGGER webhook_outbox AFTER INSERT ON number_events
WHEN EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled)
BEGIN
  INSERT INTO webhook_deliveries ({_COLUMNS})
  SELECT lower(hex(randomblob(16))), w.id, NEW.id, NEW.action, 'PENDING', 0, NEW.at, NEW.at, NEW.at
  FROM webhook_endpoints w
  JOIN organizations wo ON wo.id = w.organization_id
  JOIN organizations o ON o.id = NEW.organization_id
  WHERE w.enabled
    AND substr(o.path, 1, length(wo.path)) = wo.path
    AND (w.actions = '' OR instr(w.actions, ',' || NEW.action || ',') > 0);
END
"""

POSTGRESQL_FUNCTION = f"""
CREATE FUNCTION webhook_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled) THEN
    RETURN NULL;
  END IF;
  INSERT INTO webhook_deliveries ({_COLUMNS})
  SELECT gen_random_uuid(), w.id, e.id, e.action, 'PENDING', 0, e.at, e.at, e.at
  FROM new_events e
  JOIN organizations o ON o.id = e.organization_id
  JOIN webhook_endpoints w ON w.enabled
  JOIN organizations wo ON wo.id = w.organization_id
  WHERE left(o.path, length(wo.path)) = wo.path
    AND (w.actions = '' OR strpos(w.actions, ',' || e.action || ',') > 0);
  RETURN NULL;
END $$
"""

POSTGRESQL_TRIGGER = """
CREATE TRIGGER webhook_outbox AFTER INSERT ON number_events
REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION webhook_outbox()
"""


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("actions", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("previous_secret", sa.String(length=100), nullable=True),
        sa.Column("previous_secret_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_webhook_endpoints_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
        sa.UniqueConstraint("uuid", name=op.f("uq_webhook_endpoints_uuid")),
    )
    op.create_index(
        op.f("ix_webhook_endpoints_organization_id"), "webhook_endpoints", ["organization_id"]
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("uuid", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "PENDING",
                "DELIVERED",
                "FAILED",
                name="delivery_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_response_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retry_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["number_events.id"],
            name=op.f("fk_webhook_deliveries_event_id_number_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "endpoint_id", "event_id", name=op.f("uq_webhook_deliveries_endpoint_id_event_id")
        ),
        sa.UniqueConstraint("uuid", name=op.f("uq_webhook_deliveries_uuid")),
    )
    op.create_index(
        "ix_webhook_deliveries_status_next_attempt_at",
        "webhook_deliveries",
        ["status", "next_attempt_at"],
    )
    op.create_index(
        "ix_webhook_deliveries_endpoint_id_id", "webhook_deliveries", ["endpoint_id", "id"]
    )
    op.create_index(op.f("ix_webhook_deliveries_event_id"), "webhook_deliveries", ["event_id"])
    if op.get_bind().dialect.name == "sqlite":
        op.execute(SQLITE_TRIGGER)
    else:
        op.execute(POSTGRESQL_FUNCTION)
        op.execute(POSTGRESQL_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER webhook_outbox")
    else:
        op.execute("DROP TRIGGER webhook_outbox ON number_events")
        op.execute("DROP FUNCTION webhook_outbox()")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
