"""Report numbers stored with an e164 that is not ASCII E.164; change nothing

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

Before the E.164 rule took ASCII digits only, a number written in other digits
(full-width, Arabic-Indic, ...) could be imported beside its ASCII self as a second
number. This revision finds every stored e164 that is not "+" and 1 to 15 digits 0-9
and logs a warning naming them (the first EXAMPLES, and how many in all), so the
operator can decide what each one is: the rows are left as they are, and the
invariants checker keeps flagging them until they are fixed.
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("numbra.migrations")
EXAMPLES = 20

# PostgreSQL's [0-9] is the code points 0 to 9; SQLite's GLOB ranges are code points too.
_NOT_E164 = {
    "postgresql": "e164 !~ '^\\+[0-9]{1,15}$'",
    "sqlite": (
        "NOT (e164 GLOB '+[0-9]*' AND substr(e164, 2) NOT GLOB '*[^0-9]*' "
        "AND length(e164) BETWEEN 2 AND 16)"
    ),
}


def upgrade() -> None:
    bind = op.get_bind()
    where = _NOT_E164[bind.dialect.name]
    count = bind.scalar(sa.text(f"SELECT count(*) FROM numbers WHERE {where}"))
    if not count:
        return
    rows = bind.execute(
        sa.text(
            "SELECT numbers.id, e164, organizations.name FROM numbers "
            "LEFT JOIN organizations ON organizations.id = numbers.organization_id "
            f"WHERE {where} ORDER BY numbers.id LIMIT {EXAMPLES}"
        )
    ).all()
    listed = "; ".join(
        f"id {row_id} {e164!r} in the pool of {pool!r}" for row_id, e164, pool in rows
    )
    more = f" (the first {EXAMPLES})" if count > EXAMPLES else ""
    log.warning(
        "%d number(s) stored with an e164 that is not ASCII E.164 ('+' and 1 to 15 digits "
        "0-9), left unchanged for the operator to resolve: %s%s",
        count,
        listed,
        more,
    )


def downgrade() -> None:
    """Nothing was changed."""
