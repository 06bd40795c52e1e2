"""number_events (organization_id, action, id) and (action, id): events of some actions

Revision ID: 0018_event_actions
Revises: 0017_customer
Create Date: 2026-12-08

`numberEvents` filtered by action reads each asked action's newest events through an
index, as it reads each pool's (0012): a customer's pools one action at a time through
(organization_id, action, id), many pools (a reseller's, the provider's) one action at
a time through (action, id), keeping their own. Without them a filtered page walks a
pool's events, or every event, past all those of other actions: ten times as many for
an action among ten, every one for an action that never happened (tests/perf/events.py).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018_event_actions"
down_revision: str | None = "0017_customer"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("number_events") as batch:
        batch.create_index(
            "ix_number_events_organization_id_action_id", ["organization_id", "action", "id"]
        )
        batch.create_index("ix_number_events_action_id", ["action", "id"])


def downgrade() -> None:
    with op.batch_alter_table("number_events") as batch:
        batch.drop_index("ix_number_events_action_id")
        batch.drop_index("ix_number_events_organization_id_action_id")
