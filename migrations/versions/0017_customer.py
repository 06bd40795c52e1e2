"""customer: blocks, registration, features, capacity, and the quick-filter counts

Revision ID: 0017_customer
Revises: 0016_porting
Create Date: 2026-12-07

- NumberState BLOCKED (numbers, their history, the state counters).
- numbers.block_reason, blocked_at, blocked_until (the sweep unblocks then; its own
  partial index), block_remark: set only while BLOCKED.
- numbers.registration_status (NOT NULL, default NOT_REQUIRED), registration_identity_ref,
  registration_updated_at, registration_remark; numbers.features (JSON: kind -> status,
  updatedAt, remark; null: none set); numbers.capacity.
- port_order_numbers.prior_block_reason, prior_blocked_at, prior_blocked_until,
  prior_block_remark: a port-out of a BLOCKED number remembers its block (0016).
- number_quick_filter_counts: per pool and quick filter (DESIGN.md, "Quick filters"), how
  many numbers are in that tab, kept by triggers built as 0005 builds the state counters'
  (SQLite: row triggers on slot 0; PostgreSQL: statement triggers over transition tables,
  a slot per statement, folded into slot 0 when no one else is folding). Backfilled.

The CHECK constraints are edited in SQLite's schema text, as 0014 does, so the search and
count triggers of 0003 and 0005 survive.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_customer"
down_revision: str | None = "0016_porting"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = (
    "AVAILABLE",
    "RESERVED",
    "LOCKED",
    "ASSIGNED",
    "DELETED",
    "PORTING_IN",
    "PORTING_OUT",
)
NEW_STATES = (*STATES, "BLOCKED")
STATE_CHECKS = (
    ("numbers", "ck_numbers_number_state", "state"),
    ("number_events", "ck_number_events_from_state", "from_state"),
    ("number_events", "ck_number_events_to_state", "to_state"),
    # A port-out (0016) remembers the state it left: BLOCKED now among them.
    ("port_order_numbers", "ck_port_order_numbers_prior_state", "prior_state"),
    ("number_state_counts", "ck_number_state_counts_number_state", "state"),
)
BLOCK_REASONS = ("NON_PAYMENT", "FRAUD", "REGULATORY", "OTHER")
REGISTRATION_STATUSES = ("NOT_REQUIRED", "NOT_ASSIGNED", "PENDING", "APPROVED", "REJECTED")
QUICK_FILTERS = (
    "ALL",
    "ACTIVE",
    "NOT_CONFIGURED",
    "AWAITING_REGISTRATION",
    "EXPIRING_SOON",
    "TERMINATED",
    "PORTING",
    "BLOCKED",
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


def _tabs(r: str) -> list[tuple[str, str]]:
    """Each quick filter and the condition a number (`r` + column) is in it on: DESIGN.md's
    table, as domain/quick_filters.py states it for searches."""
    renews = f"{r}cancelled_at IS NULL AND ({r}billing_cycles IS NULL OR {r}billing_cycles > 0)"
    return [
        ("ALL", f"{r}state <> 'DELETED'"),
        (
            "ACTIVE",
            f"{r}state = 'ASSIGNED' AND {r}routing IS NOT NULL "
            f"AND {r}registration_status IN ('NOT_REQUIRED', 'APPROVED')",
        ),
        ("NOT_CONFIGURED", f"{r}state = 'ASSIGNED' AND {r}routing IS NULL"),
        (
            "AWAITING_REGISTRATION",
            f"{r}state IN ('ASSIGNED', 'BLOCKED') "
            f"AND {r}registration_status IN ('NOT_ASSIGNED', 'PENDING', 'REJECTED')",
        ),
        (
            "EXPIRING_SOON",
            f"{r}state IN ('ASSIGNED', 'BLOCKED') AND {r}paid_until IS NOT NULL AND NOT ({renews})",
        ),
        (
            "TERMINATED",
            f"{r}state = 'RESERVED' AND {r}reservation_reason IN "
            "('CANCELLED', 'SUBSCRIPTION_EXPIRED', 'SUBSCRIPTION_TERMINATED')",
        ),
        ("PORTING", f"{r}state IN ('PORTING_IN', 'PORTING_OUT')"),
        ("BLOCKED", f"{r}state = 'BLOCKED'"),
    ]


def _tab_rows(r: str, source: str, n: str) -> str:
    """SELECT organization_id, quick_filter, n: one row per tab each number of `source` is in."""
    return " UNION ALL ".join(
        f"SELECT {r}organization_id AS organization_id, '{tab}' AS quick_filter, {n} AS n "
        f"FROM {source} WHERE {condition}"
        for tab, condition in _tabs(r)
    )


_BACKFILL = (
    "INSERT INTO number_quick_filter_counts (organization_id, quick_filter, slot, count) "
    "SELECT organization_id, quick_filter, 0, count(*) "
    f"FROM ({_tab_rows('numbers.', 'numbers', '1')}) AS tabs "
    "GROUP BY organization_id, quick_filter"
)

# Columns the tabs read: an update of any other leaves every tab as it was.
WATCHED = (
    "state",
    "organization_id",
    "routing",
    "registration_status",
    "reservation_reason",
    "paid_until",
    "cancelled_at",
    "billing_cycles",
)


def _sqlite_add(r: str) -> str:
    # SQLite's upsert after a SELECT needs a WHERE of its own (a parsing ambiguity).
    return (
        "INSERT INTO number_quick_filter_counts (organization_id, quick_filter, slot, count) "
        f"SELECT organization_id, quick_filter, 0, 1 FROM ({_tab_rows(r, '(SELECT 1)', '1')}) "
        "WHERE true "
        "ON CONFLICT (organization_id, quick_filter, slot) DO UPDATE SET count = count + 1;"
    )


def _sqlite_remove(r: str) -> str:
    return (
        "UPDATE number_quick_filter_counts SET count = count - 1 "
        f"WHERE slot = 0 AND organization_id = {r}organization_id AND quick_filter IN "
        f"(SELECT quick_filter FROM ({_tab_rows(r, '(SELECT 1)', '1')}));"
    )


_CHANGED = " OR ".join(f"new.{c} IS NOT old.{c}" for c in WATCHED)
SQLITE_UP = [
    "CREATE TRIGGER number_quick_filter_counts_insert AFTER INSERT ON numbers "
    f"BEGIN {_sqlite_add('new.')} END",
    "CREATE TRIGGER number_quick_filter_counts_delete AFTER DELETE ON numbers "
    f"BEGIN {_sqlite_remove('old.')} END",
    f"CREATE TRIGGER number_quick_filter_counts_update AFTER UPDATE OF {', '.join(WATCHED)} "
    f"ON numbers WHEN {_CHANGED} "
    f"BEGIN {_sqlite_remove('old.')} {_sqlite_add('new.')} END",
]
SQLITE_DOWN = [
    "DROP TRIGGER number_quick_filter_counts_update",
    "DROP TRIGGER number_quick_filter_counts_delete",
    "DROP TRIGGER number_quick_filter_counts_insert",
]

# pg_try_advisory_xact_lock's key for folding these slots (0005's is 50050).
_FOLD_LOCK = 50051
_PG_FOLD = f"""
CREATE FUNCTION number_quick_filter_counts_fold() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF pg_try_advisory_xact_lock({_FOLD_LOCK}) THEN
        WITH folded AS (
            DELETE FROM number_quick_filter_counts WHERE slot <> 0
            RETURNING organization_id, quick_filter, count
        )
        INSERT INTO number_quick_filter_counts AS counted
            (organization_id, quick_filter, slot, count)
        SELECT organization_id, quick_filter, 0, sum(count) FROM folded
        GROUP BY organization_id, quick_filter
        ON CONFLICT (organization_id, quick_filter, slot)
        DO UPDATE SET count = counted.count + excluded.count;
    END IF;
END $$
"""
# What a tab reads of a number, reduced to what its conditions tell apart (set or not, a
# cycle left or not), so a statement's rows fold into a few groups before the tabs are
# tested: one pass over its rows, however many tabs.
_REDUCED = (
    "organization_id, state, registration_status, reservation_reason, "
    "CASE WHEN routing IS NOT NULL THEN 1 END AS routing, "
    "CASE WHEN paid_until IS NOT NULL THEN 1 END AS paid_until, "
    "CASE WHEN cancelled_at IS NOT NULL THEN 1 END AS cancelled_at, "
    "LEAST(billing_cycles, 1) AS billing_cycles"
)
_GROUPED = (
    "organization_id, state, registration_status, reservation_reason, routing, paid_until, "
    "cancelled_at, billing_cycles"
)
_PG_ROWS = {
    "insert": f"SELECT {_REDUCED}, 1 AS n FROM new_rows",
    "delete": f"SELECT {_REDUCED}, -1 AS n FROM old_rows",
    "update": f"SELECT {_REDUCED}, 1 AS n FROM new_rows "
    f"UNION ALL SELECT {_REDUCED}, -1 AS n FROM old_rows",
}
_PG_MOVES = {
    op_name: f"WITH moved AS (SELECT {_GROUPED}, sum(n) AS n FROM ({rows}) AS rows "
    f"GROUP BY {_GROUPED} HAVING sum(n) <> 0) " + _tab_rows("moved.", "moved", "moved.n")
    for op_name, rows in _PG_ROWS.items()
}
_PG_FUNCTION = """
CREATE FUNCTION number_quick_filter_counts_{op}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO number_quick_filter_counts (organization_id, quick_filter, slot, count)
    SELECT organization_id, quick_filter, nextval('number_quick_filter_counts_slot'), sum(n)
    FROM ({moves}) AS moves
    GROUP BY organization_id, quick_filter HAVING sum(n) <> 0;
    PERFORM number_quick_filter_counts_fold();
    RETURN NULL;
END $$
"""
_PG_TABLES = {
    "insert": "NEW TABLE AS new_rows",
    "delete": "OLD TABLE AS old_rows",
    "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
}
POSTGRESQL_UP = [
    "CREATE SEQUENCE number_quick_filter_counts_slot MINVALUE 1",
    _PG_FOLD,
    *(
        statement
        for op_name, moves in _PG_MOVES.items()
        for statement in (
            _PG_FUNCTION.format(op=op_name, moves=moves),
            f"CREATE TRIGGER number_quick_filter_counts_{op_name} AFTER {op_name.upper()} "
            f"ON numbers REFERENCING {_PG_TABLES[op_name]} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION number_quick_filter_counts_{op_name}()",
        )
    ),
]
POSTGRESQL_DOWN = [
    *(
        statement
        for op_name in _PG_MOVES
        for statement in (
            f"DROP TRIGGER number_quick_filter_counts_{op_name} ON numbers",
            f"DROP FUNCTION number_quick_filter_counts_{op_name}()",
        )
    ),
    "DROP FUNCTION number_quick_filter_counts_fold()",
    "DROP SEQUENCE number_quick_filter_counts_slot",
]


def _enum(name: str, values: Sequence[str]) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


# Columns added to numbers: name, SQL type, the values its CHECK accepts (if any), default.
NUMBER_COLUMNS: list[tuple[str, str, Sequence[str], str | None]] = [
    ("block_reason", "VARCHAR(32)", BLOCK_REASONS, None),
    ("blocked_at", "TIMESTAMPTZ", (), None),
    ("blocked_until", "TIMESTAMPTZ", (), None),
    ("block_remark", "TEXT", (), None),
    ("registration_status", "VARCHAR(32)", REGISTRATION_STATUSES, "NOT_REQUIRED"),
    ("registration_identity_ref", "VARCHAR(200)", (), None),
    ("registration_updated_at", "TIMESTAMPTZ", (), None),
    ("registration_remark", "TEXT", (), None),
    ("features", "JSON", (), None),
    ("capacity", "INTEGER", (), None),
]


# Columns added to port_order_numbers: what a port-out of a BLOCKED number remembers.
PORT_ORDER_COLUMNS: list[tuple[str, str, Sequence[str], str | None]] = [
    (f"prior_{name}", sql_type, values, None)
    for name, sql_type, values, _default in NUMBER_COLUMNS[:4]
]


def _add_column(
    name: str, sql_type: str, values: Sequence[str], default: str | None, table: str = "numbers"
) -> None:
    # SQLite: ADD COLUMN keeps the triggers on numbers that a batch rebuild would drop, and
    # a column's own CHECK lets DROP COLUMN take it out again (0010 does the same).
    if sql_type == "TIMESTAMPTZ" and op.get_bind().dialect.name == "sqlite":
        sql_type = "DATETIME"  # what SQLAlchemy makes (and reads back) on SQLite
    sql = f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}"
    if default is not None:
        sql += f" NOT NULL DEFAULT '{default}'"
    if values and op.get_bind().dialect.name == "sqlite":
        sql += f" CONSTRAINT ck_{table}_{name} CHECK ({_in(name, values)})"
    op.execute(sql)
    if values and op.get_bind().dialect.name != "sqlite":
        op.create_check_constraint(op.f(f"ck_{table}_{name}"), table, _in(name, values))


def upgrade() -> None:
    for table, name, column in STATE_CHECKS:
        _check(table, name, column, STATES, NEW_STATES)
    for added in NUMBER_COLUMNS:
        _add_column(*added)
    for added in PORT_ORDER_COLUMNS:
        _add_column(*added, table="port_order_numbers")
    op.create_index(
        "ix_numbers_blocked_until",
        "numbers",
        ["blocked_until"],
        postgresql_where=sa.text("blocked_until IS NOT NULL"),
        sqlite_where=sa.text("blocked_until IS NOT NULL"),
    )

    op.create_table(
        "number_quick_filter_counts",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("quick_filter", _enum("quick_filter", QUICK_FILTERS), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_number_quick_filter_counts_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint(
            "organization_id", "quick_filter", "slot", name=op.f("pk_number_quick_filter_counts")
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
    op.drop_table("number_quick_filter_counts")
    # A blocked number goes back to service as it was before blocks existed.
    op.execute("UPDATE numbers SET state = 'ASSIGNED' WHERE state = 'BLOCKED'")
    op.execute("UPDATE number_events SET from_state = 'ASSIGNED' WHERE from_state = 'BLOCKED'")
    op.execute("UPDATE number_events SET to_state = 'ASSIGNED' WHERE to_state = 'BLOCKED'")
    op.execute("DELETE FROM number_state_counts WHERE state = 'BLOCKED'")
    op.execute(
        "UPDATE port_order_numbers SET prior_state = 'ASSIGNED' WHERE prior_state = 'BLOCKED'"
    )
    for name, *_rest in reversed(PORT_ORDER_COLUMNS):
        op.execute(f"ALTER TABLE port_order_numbers DROP COLUMN {name}")
    op.drop_index("ix_numbers_blocked_until", table_name="numbers")
    for name, *_rest in reversed(NUMBER_COLUMNS):
        op.execute(f"ALTER TABLE numbers DROP COLUMN {name}")
    for table, name, column in STATE_CHECKS:
        _check(table, name, column, NEW_STATES, STATES)
