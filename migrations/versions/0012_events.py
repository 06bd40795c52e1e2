"""number_events (organization_id, id): events across numbers, a pool's newest first

Revision ID: 0012_events
Revises: 0011_tokens
Create Date: 2026-12-01

`numberEvents` pages the events of the viewer's pools newest first, by id. Where the
pools hold a small share of all events, reading each pool's events backwards from the
cursor beats walking every event backwards (tests/perf/events.py).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012_events"
down_revision: str | None = "0011_tokens"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("number_events") as batch:
        batch.create_index("ix_number_events_organization_id_id", ["organization_id", "id"])


def downgrade() -> None:
    with op.batch_alter_table("number_events") as batch:
        batch.drop_index("ix_number_events_organization_id_id")
