"""Indexes for "contains" searches: FTS5 trigram on SQLite, pg_trgm on PostgreSQL.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_UP = [
    "CREATE VIRTUAL TABLE numbers_fts USING fts5("
    "e164, content='numbers', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER numbers_fts_insert AFTER INSERT ON numbers BEGIN "
    "INSERT INTO numbers_fts(rowid, e164) VALUES (new.id, new.e164); END",
    "CREATE TRIGGER numbers_fts_delete AFTER DELETE ON numbers BEGIN "
    "INSERT INTO numbers_fts(numbers_fts, rowid, e164) VALUES ('delete', old.id, old.e164); END",
    "CREATE TRIGGER numbers_fts_update AFTER UPDATE OF e164 ON numbers BEGIN "
    "INSERT INTO numbers_fts(numbers_fts, rowid, e164) VALUES ('delete', old.id, old.e164); "
    "INSERT INTO numbers_fts(rowid, e164) VALUES (new.id, new.e164); END",
    "INSERT INTO numbers_fts(numbers_fts) VALUES ('rebuild')",
]
SQLITE_DOWN = [
    "DROP TRIGGER numbers_fts_update",
    "DROP TRIGGER numbers_fts_delete",
    "DROP TRIGGER numbers_fts_insert",
    "DROP TABLE numbers_fts",
]
POSTGRESQL_UP = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_numbers_e164_trgm ON numbers USING gin (e164 gin_trgm_ops)",
]
POSTGRESQL_DOWN = ["DROP INDEX ix_numbers_e164_trgm"]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_UP if sqlite else POSTGRESQL_UP:
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_DOWN if sqlite else POSTGRESQL_DOWN:
        op.execute(statement)
