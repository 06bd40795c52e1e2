"""number_events.organization_id: the pool a number was in when the event happened

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22

A number handed from one customer to its sibling must not bring the first one's
remarks and token names along: a viewer reads only the events that happened while
the number was in its subtree. Events written before this revision get the pool
the number is in now, the best that is known of them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("number_events") as batch:
        batch.add_column(sa.Column("organization_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE number_events SET organization_id = "
        "(SELECT organization_id FROM numbers WHERE numbers.id = number_events.number_id)"
    )
    with op.batch_alter_table("number_events") as batch:
        batch.alter_column("organization_id", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key(
            "fk_number_events_organization_id_organizations",
            "organizations",
            ["organization_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("number_events") as batch:
        batch.drop_constraint("fk_number_events_organization_id_organizations", type_="foreignkey")
        batch.drop_column("organization_id")
