"""operators: the carriers numbers come from, per reseller; numbers.operator_id

Revision ID: 0013_operators
Revises: 0012_events
Create Date: 2026-12-01

Every vendor value numbers have becomes an operator of the reseller that holds them:
the nearest PARTNER at or above the number's pool, else the provider. Spellings that
differ only in case become one operator, named as the first spelling (in sort order),
and its numbers' vendor is that name.
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import uuid4

import sqlalchemy as sa
from alembic import op

revision: str = "0013_operators"
down_revision: str | None = "0012_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("name_key", sa.String(length=100), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_operators_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operators")),
        sa.UniqueConstraint(
            "organization_id", "name_key", name=op.f("uq_operators_organization_id_name_key")
        ),
        sa.UniqueConstraint("uuid", name=op.f("uq_operators_uuid")),
    )
    if op.get_bind().dialect.name == "sqlite":
        # Not batch mode: recreating numbers would drop the triggers 0003 and 0005 made.
        op.execute("ALTER TABLE numbers ADD COLUMN operator_id INTEGER REFERENCES operators (id)")
    else:
        op.add_column("numbers", sa.Column("operator_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f("fk_numbers_operator_id_operators"),
            "numbers",
            "operators",
            ["operator_id"],
            ["id"],
        )
    op.create_index(op.f("ix_numbers_operator_id"), "numbers", ["operator_id"])
    _operators_of_vendors()


def _operators_of_vendors() -> None:
    bind = op.get_bind()
    orgs = {
        org_id: (path, kind)
        for org_id, path, kind in bind.execute(sa.text("SELECT id, path, kind FROM organizations"))
    }

    def reseller(org_id: int) -> int:
        path = orgs[org_id][0]
        chain = [int(segment) for segment in path.strip("/").split("/")]
        partners = [a for a in chain if orgs[a][1] == "PARTNER"]
        return partners[-1] if partners else chain[0]

    # (reseller, case-folded name) -> spellings, each with the pools that use it
    found: dict[tuple[int, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    pairs = bind.execute(sa.text("SELECT DISTINCT organization_id, vendor FROM numbers"))
    for org_id, vendor in pairs:
        found[(reseller(org_id), vendor.lower())][vendor].append(org_id)
    now = datetime.now(UTC)
    operators = sa.table(
        "operators",
        sa.column("uuid", sa.Uuid()),
        sa.column("name", sa.String()),
        sa.column("name_key", sa.String()),
        sa.column("organization_id", sa.Integer()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    stamp = now.replace(tzinfo=None) if bind.dialect.name == "sqlite" else now
    for (owner, key), spellings in sorted(found.items()):
        name = min(spellings)
        operator_uuid = uuid4()
        bind.execute(
            operators.insert().values(
                uuid=operator_uuid,
                name=name,
                name_key=key,
                organization_id=owner,
                created_at=stamp,
            )
        )
        operator_id = bind.execute(
            sa.text("SELECT id FROM operators WHERE organization_id = :o AND name_key = :k"),
            {"o": owner, "k": key},
        ).scalar_one()
        bind.execute(
            sa.text(
                "UPDATE numbers SET operator_id = :operator, vendor = :name"
                " WHERE organization_id = :pool AND vendor = :vendor"
            ),
            [
                {"operator": operator_id, "name": name, "pool": pool, "vendor": vendor}
                for vendor, pools in spellings.items()
                for pool in pools
            ],
        )


def downgrade() -> None:
    op.drop_index(op.f("ix_numbers_operator_id"), table_name="numbers")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE numbers DROP COLUMN operator_id")
    else:
        op.drop_constraint(op.f("fk_numbers_operator_id_operators"), "numbers", type_="foreignkey")
        op.drop_column("numbers", "operator_id")
    op.drop_table("operators")
