"""number_state_counts: per pool and state, how many numbers; kept by triggers

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

SQLite writes one transaction at a time: a row trigger bumps the one counter (slot
0) of the number's pool and state, a few microseconds a number.

PostgreSQL writes many at once, and a counter row updated by one transaction would
hold every other writer of that pool until it commits (a million-row import for a
minute). So each statement adds its net change as rows of their own (statement
triggers over transition tables; a fresh slot from a sequence), which no one else
touches, and folds the slots into slot 0 when no other transaction is folding
(an advisory lock, only tried): writers never wait for one another's counters.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BACKFILL = (
    "INSERT INTO number_state_counts (organization_id, state, slot, count) "
    "SELECT organization_id, state, 0, count(*) FROM numbers GROUP BY organization_id, state"
)

_SQLITE_ADD = (
    "INSERT INTO number_state_counts (organization_id, state, slot, count) "
    "VALUES (new.organization_id, new.state, 0, 1) "
    "ON CONFLICT (organization_id, state, slot) DO UPDATE SET count = count + 1;"
)
_SQLITE_REMOVE = (
    "UPDATE number_state_counts SET count = count - 1 "
    "WHERE organization_id = old.organization_id AND state = old.state AND slot = 0;"
)
SQLITE_UP = [
    f"CREATE TRIGGER number_state_counts_insert AFTER INSERT ON numbers BEGIN {_SQLITE_ADD} END",
    f"CREATE TRIGGER number_state_counts_delete AFTER DELETE ON numbers BEGIN {_SQLITE_REMOVE} END",
    "CREATE TRIGGER number_state_counts_update AFTER UPDATE OF state, organization_id ON numbers "
    "WHEN new.state IS NOT old.state OR new.organization_id IS NOT old.organization_id "
    f"BEGIN {_SQLITE_REMOVE} {_SQLITE_ADD} END",
]
SQLITE_DOWN = [
    "DROP TRIGGER number_state_counts_update",
    "DROP TRIGGER number_state_counts_delete",
    "DROP TRIGGER number_state_counts_insert",
]

# Any constant, the same for every folder: pg_try_advisory_xact_lock's key.
_FOLD_LOCK = 50050
_PG_FOLD = f"""
CREATE FUNCTION number_state_counts_fold() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF pg_try_advisory_xact_lock({_FOLD_LOCK}) THEN
        WITH folded AS (
            DELETE FROM number_state_counts WHERE slot <> 0
            RETURNING organization_id, state, count
        )
        INSERT INTO number_state_counts AS counted (organization_id, state, slot, count)
        SELECT organization_id, state, 0, sum(count) FROM folded
        GROUP BY organization_id, state
        ON CONFLICT (organization_id, state, slot)
        DO UPDATE SET count = counted.count + excluded.count;
    END IF;
END $$
"""
# What each statement moves: +1 for every row it adds, -1 for every row it removes.
_PG_MOVES = {
    "insert": "SELECT organization_id, state, 1 AS n FROM new_rows",
    "delete": "SELECT organization_id, state, -1 AS n FROM old_rows",
    "update": "SELECT organization_id, state, 1 AS n FROM new_rows "
    "UNION ALL SELECT organization_id, state, -1 FROM old_rows",
}
_PG_FUNCTION = """
CREATE FUNCTION number_state_counts_{op}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO number_state_counts (organization_id, state, slot, count)
    SELECT organization_id, state, nextval('number_state_counts_slot'), sum(n)
    FROM ({moves}) AS moves
    GROUP BY organization_id, state HAVING sum(n) <> 0;
    PERFORM number_state_counts_fold();
    RETURN NULL;
END $$
"""
_PG_TABLES = {
    "insert": "NEW TABLE AS new_rows",
    "delete": "OLD TABLE AS old_rows",
    "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
}
POSTGRESQL_UP = [
    "CREATE SEQUENCE number_state_counts_slot MINVALUE 1",
    _PG_FOLD,
    *(
        statement
        for op_name, moves in _PG_MOVES.items()
        for statement in (
            _PG_FUNCTION.format(op=op_name, moves=moves),
            f"CREATE TRIGGER number_state_counts_{op_name} AFTER {op_name.upper()} ON numbers "
            f"REFERENCING {_PG_TABLES[op_name]} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION number_state_counts_{op_name}()",
        )
    ),
]
POSTGRESQL_DOWN = [
    *(
        statement
        for op_name in _PG_MOVES
        for statement in (
            f"DROP TRIGGER number_state_counts_{op_name} ON numbers",
            f"DROP FUNCTION number_state_counts_{op_name}()",
        )
    ),
    "DROP FUNCTION number_state_counts_fold()",
    "DROP SEQUENCE number_state_counts_slot",
]


def upgrade() -> None:
    op.create_table(
        "number_state_counts",
        sa.Column("organization_id", sa.Integer(), nullable=False),
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
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_number_state_counts_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint(
            "organization_id", "state", "slot", name=op.f("pk_number_state_counts")
        ),
        sqlite_with_rowid=False,
    )
    op.execute(_BACKFILL)
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_UP if sqlite else POSTGRESQL_UP:
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_DOWN if sqlite else POSTGRESQL_DOWN:
        op.execute(statement)
    op.drop_table("number_state_counts")
