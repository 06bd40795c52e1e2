"""numbers: no index of organization_id alone; the expiry index holds only what expires

Revision ID: 0021_lean_number_indexes
Revises: 0020_partial_null_indexes
Create Date: 2026-12-08

Every number added writes an entry in each of the numbers' indexes: on PostgreSQL most
of an import's INSERT. Two of them held entries no query needs:

- ix_numbers_organization_id: (organization_id) is the first column of
  ix_numbers_organization_id_state, which answers every lookup by pool (a pool's pages,
  the foreign key's checks) as well.
- ix_numbers_state_expires_at held every number, though only reserved (and held)
  numbers expire: fresh stock has no expires_at. Every query using it compares
  expires_at with a time (the sweep, the notices, the backlog), which implies the
  column is set, so both databases still choose it, as they do 0020's.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_lean_number_indexes"
down_revision: str | None = "0020_partial_null_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EXPIRY = "ix_numbers_state_expires_at"


def upgrade() -> None:
    op.drop_index("ix_numbers_organization_id", table_name="numbers")
    op.drop_index(_EXPIRY, table_name="numbers")
    where = sa.text("expires_at IS NOT NULL")
    op.create_index(
        _EXPIRY, "numbers", ["state", "expires_at"], postgresql_where=where, sqlite_where=where
    )


def downgrade() -> None:
    op.drop_index(_EXPIRY, table_name="numbers")
    op.create_index(_EXPIRY, "numbers", ["state", "expires_at"])
    op.create_index("ix_numbers_organization_id", "numbers", ["organization_id"])
