"""numbers: the owner and subscription indexes hold only the rows where the column is set

Revision ID: 0020_partial_null_indexes
Revises: 0019_series_counts
Create Date: 2026-12-07

Most numbers have no owner and no subscription: fresh stock, imported by the million,
is AVAILABLE. Their indexes held an entry for every null all the same, written with
every number added (on PostgreSQL ~100 ms of each 20,000-row chunk of an import, a
tenth of its INSERT) and kept in every lookup's way. Every query that uses them looks
a value up (`owner_id = …`, `subscription_uuid = …`), which implies the column is set,
so both databases still choose them, as they do the paid_until and blocked_until
indexes (0014, 0017) made this way.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_partial_null_indexes"
down_revision: str | None = "0019_series_counts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("owner_id", "subscription_uuid", "held_for_subscription_uuid")


def upgrade() -> None:
    for column in _COLUMNS:
        name = f"ix_numbers_{column}"
        where = sa.text(f"{column} IS NOT NULL")
        op.drop_index(name, table_name="numbers")
        op.create_index(name, "numbers", [column], postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    for column in _COLUMNS:
        name = f"ix_numbers_{column}"
        op.drop_index(name, table_name="numbers")
        op.create_index(name, "numbers", [column])
