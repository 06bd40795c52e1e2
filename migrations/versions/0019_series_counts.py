"""number_series_counts: per pool and series, numbers allocated and unused; kept by triggers

Revision ID: 0019_series_counts
Revises: 0018_event_actions
Create Date: 2026-12-07

An organization's allocations (per series: its numbers not DELETED, and of those the
AVAILABLE ones) were counted from the numbers at every look: the SPA's organization
page read its whole pool, 0.85 s for the provider's 400,000 numbers on SQLite, 2.3 s
for a partner holding a million. They are kept here as 0005 keeps the state counts:
on SQLite a row trigger bumps slot 0; on PostgreSQL each statement adds its net change
as a slot of its own from its transition tables, folded into slot 0 by whoever gets
the advisory lock, so writers never wait for one another's counters. Numbers of no
series are not counted.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_series_counts"
down_revision: str | None = "0018_event_actions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What a number adds to its pool's and series' counts.
_ALLOCATED = "CASE WHEN {r}state <> 'DELETED' THEN 1 ELSE 0 END"
_UNUSED = "CASE WHEN {r}state = 'AVAILABLE' THEN 1 ELSE 0 END"

_BACKFILL = (
    "INSERT INTO number_series_counts (organization_id, series_id, slot, allocated, unused) "
    f"SELECT organization_id, series_id, 0, sum({_ALLOCATED.format(r='')}), "
    f"sum({_UNUSED.format(r='')}) "
    "FROM numbers WHERE series_id IS NOT NULL GROUP BY organization_id, series_id"
)


def _sqlite_add(r: str) -> str:
    # "WHERE true" before ON CONFLICT: SQLite's parser needs it after a SELECT.
    return (
        "INSERT INTO number_series_counts (organization_id, series_id, slot, allocated, unused) "
        f"SELECT {r}organization_id, {r}series_id, 0, {_ALLOCATED.format(r=r)}, "
        f"{_UNUSED.format(r=r)} WHERE {r}series_id IS NOT NULL "
        "ON CONFLICT (organization_id, series_id, slot) DO UPDATE SET "
        "allocated = allocated + excluded.allocated, unused = unused + excluded.unused;"
    )


def _sqlite_remove(r: str) -> str:
    return (
        f"UPDATE number_series_counts SET allocated = allocated - {_ALLOCATED.format(r=r)}, "
        f"unused = unused - {_UNUSED.format(r=r)} "
        f"WHERE organization_id = {r}organization_id AND series_id = {r}series_id AND slot = 0;"
    )


_WATCHED = ("state", "organization_id", "series_id")
_CHANGED = " OR ".join(f"new.{c} IS NOT old.{c}" for c in _WATCHED)
SQLITE_UP = [
    "CREATE TRIGGER number_series_counts_insert AFTER INSERT ON numbers "
    f"WHEN new.series_id IS NOT NULL BEGIN {_sqlite_add('new.')} END",
    "CREATE TRIGGER number_series_counts_delete AFTER DELETE ON numbers "
    f"WHEN old.series_id IS NOT NULL BEGIN {_sqlite_remove('old.')} END",
    f"CREATE TRIGGER number_series_counts_update AFTER UPDATE OF {', '.join(_WATCHED)} "
    f"ON numbers WHEN {_CHANGED} "
    f"BEGIN {_sqlite_remove('old.')} {_sqlite_add('new.')} END",
]
SQLITE_DOWN = [
    "DROP TRIGGER number_series_counts_update",
    "DROP TRIGGER number_series_counts_delete",
    "DROP TRIGGER number_series_counts_insert",
]

# pg_try_advisory_xact_lock's key for folding these slots (0005's is 50050, 0017's 50051).
_FOLD_LOCK = 50052
_PG_FOLD = f"""
CREATE FUNCTION number_series_counts_fold() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF pg_try_advisory_xact_lock({_FOLD_LOCK}) THEN
        WITH folded AS (
            DELETE FROM number_series_counts WHERE slot <> 0
            RETURNING organization_id, series_id, allocated, unused
        )
        INSERT INTO number_series_counts AS counted
            (organization_id, series_id, slot, allocated, unused)
        SELECT organization_id, series_id, 0, sum(allocated), sum(unused) FROM folded
        GROUP BY organization_id, series_id
        ON CONFLICT (organization_id, series_id, slot)
        DO UPDATE SET allocated = counted.allocated + excluded.allocated,
                      unused = counted.unused + excluded.unused;
    END IF;
END $$
"""


def _pg_rows(table: str, sign: str) -> str:
    return (
        f"SELECT organization_id, series_id, {sign}{_ALLOCATED.format(r='')} AS a, "
        f"{sign}{_UNUSED.format(r='')} AS u FROM {table} WHERE series_id IS NOT NULL"
    )


# What each statement moves: what it adds, less what it removes.
_PG_MOVES = {
    "insert": _pg_rows("new_rows", ""),
    "delete": _pg_rows("old_rows", "-"),
    "update": f"{_pg_rows('new_rows', '')} UNION ALL {_pg_rows('old_rows', '-')}",
}
_PG_FUNCTION = """
CREATE FUNCTION number_series_counts_{op}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO number_series_counts (organization_id, series_id, slot, allocated, unused)
    SELECT organization_id, series_id, nextval('number_series_counts_slot'), sum(a), sum(u)
    FROM ({moves}) AS moves
    GROUP BY organization_id, series_id HAVING sum(a) <> 0 OR sum(u) <> 0;
    PERFORM number_series_counts_fold();
    RETURN NULL;
END $$
"""
_PG_TABLES = {
    "insert": "NEW TABLE AS new_rows",
    "delete": "OLD TABLE AS old_rows",
    "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
}
POSTGRESQL_UP = [
    "CREATE SEQUENCE number_series_counts_slot MINVALUE 1",
    _PG_FOLD,
    *(
        statement
        for op_name, moves in _PG_MOVES.items()
        for statement in (
            _PG_FUNCTION.format(op=op_name, moves=moves),
            f"CREATE TRIGGER number_series_counts_{op_name} AFTER {op_name.upper()} ON numbers "
            f"REFERENCING {_PG_TABLES[op_name]} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION number_series_counts_{op_name}()",
        )
    ),
]
POSTGRESQL_DOWN = [
    *(
        statement
        for op_name in _PG_MOVES
        for statement in (
            f"DROP TRIGGER number_series_counts_{op_name} ON numbers",
            f"DROP FUNCTION number_series_counts_{op_name}()",
        )
    ),
    "DROP FUNCTION number_series_counts_fold()",
    "DROP SEQUENCE number_series_counts_slot",
]


def upgrade() -> None:
    op.create_table(
        "number_series_counts",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        # No foreign key: a series whose numbers all left keeps its zero counts.
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("allocated", sa.BigInteger(), nullable=False),
        sa.Column("unused", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_number_series_counts_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint(
            "organization_id", "series_id", "slot", name=op.f("pk_number_series_counts")
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
    op.drop_table("number_series_counts")
