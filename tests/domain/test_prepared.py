"""models/prepared.py: a statement run straight on the driver gives what SQLAlchemy gives.

Same rows, same Python types (enums, UUIDs, aware datetimes, booleans, None), for lists
of any length, the empty one included; seen by statement listeners; and an error the
driver raises reaches the caller as SQLAlchemy's own.
"""

import asyncio
from collections.abc import Sequence
from datetime import timedelta

import pytest
import sqlalchemy as sa

from domain.clock import ManualClock
from models import Organization, OrganizationKind
from models.database import Database
from models.prepared import FORMS, Prepared
from tests.support.databases import StatementCounter
from tests.support.world import allow_intake, new_organization

IDS: sa.BindParameter[int] = sa.bindparam("ids", expanding=True)
KINDS: sa.BindParameter[str] = sa.bindparam("kinds", expanding=True)
SINCE = sa.bindparam("since", type_=Organization.created_at.type)
ORGANIZATIONS = (
    sa.select(
        Organization.id,
        Organization.uuid,
        Organization.kind,
        Organization.created_at,
        Organization.may_add_numbers,
        Organization.billing_email,
        sa.literal(7).label("seven"),
    )
    .where(Organization.id.in_(IDS), Organization.kind.in_(KINDS), Organization.created_at > SINCE)
    .order_by(Organization.id)
)


def only(root: Organization) -> dict[str, object]:
    """ORGANIZATIONS' parameters that select `root` alone."""
    return {"ids": [root.id], "kinds": [root.kind], "since": root.created_at - timedelta(days=1)}


def typed(rows: Sequence[Sequence[object]]) -> list[object]:
    return [[(type(value), value) for value in row] for row in rows]


async def test_rows_and_their_types_are_sqlalchemys(
    db: Database, root: Organization, clock: ManualClock
) -> None:
    partner = await new_organization(db, clock, "P", OrganizationKind.PARTNER, root)
    clock.advance(timedelta(hours=1))
    customer = await new_organization(
        db, clock, "C", OrganizationKind.CUSTOMER, partner, billing_email="c@example.com"
    )
    await allow_intake(db, partner)
    prepared = Prepared(ORGANIZATIONS)
    everyone = [root.id, partner.id, customer.id]
    before = partner.created_at - timedelta(days=1)
    asked = [
        ([], list(OrganizationKind), before),
        ([root.id], [OrganizationKind.PROVIDER], before),
        (everyone, list(OrganizationKind), before),
        # Created at that very instant is not after it: SQLite compares the text the
        # column's bind processor writes, which a value passed as it is would not match.
        ([*everyone, 10_000], list(OrganizationKind), partner.created_at),
        (
            everyone,
            [OrganizationKind.PARTNER, OrganizationKind.CUSTOMER],
            customer.created_at - timedelta(minutes=30),
        ),
    ]
    seen = []
    for ids, kinds, since in asked:
        parameters = {"ids": ids, "kinds": kinds, "since": since}
        async with db.read_connection() as connection:
            ours = await prepared.rows(connection, parameters)
            theirs = (await connection.execute(ORGANIZATIONS, parameters)).all()
        assert typed(ours) == typed(theirs)
        assert [row.kind for row in ours] == [row.kind for row in theirs]
        seen.append([row.id for row in ours])
    assert seen == [[], [root.id], everyone, [customer.id], [customer.id]]


async def test_listeners_see_each_statement(
    db: Database, root: Organization, statements: StatementCounter
) -> None:
    prepared = Prepared(ORGANIZATIONS)
    parameters = only(root)
    for _ in range(3):
        async with db.read_connection() as connection:
            assert len(await prepared.rows(connection, parameters)) == 1
    assert statements.count == 3
    assert all("organizations" in sql for sql in statements.sql)


async def test_an_error_of_the_driver_is_sqlalchemys(db: Database) -> None:
    missing = Prepared(sa.select(sa.column("x")).select_from(sa.table("no_such_table")))
    async with db.read_connection() as connection:
        with pytest.raises(sa.exc.DBAPIError, match="no_such_table"):
            await missing.rows(connection)


def test_a_value_rendered_into_the_sql_is_refused() -> None:
    """Its SQL would differ with each value: nothing to keep."""
    rendered = sa.select(Organization.id).where(
        Organization.id == sa.bindparam("id", literal_execute=True)
    )
    with pytest.raises(ValueError, match="renders no value"):
        Prepared(rendered)


async def test_read_connections_go_back_to_the_pool(db: Database, root: Organization) -> None:
    """Whether the driver ran the statement or SQLAlchemy did (and began a transaction),
    the connection goes back, and one connection serves reads that follow one another."""
    prepared = Prepared(ORGANIZATIONS)
    parameters = only(root)
    for _ in range(3):
        async with db.read_connection() as connection:
            assert len(await prepared.rows(connection, parameters)) == 1
        async with db.read_connection() as connection:
            assert (await connection.execute(sa.select(sa.literal(1)))).scalar() == 1
            assert connection.in_transaction()  # SQLAlchemy's autobegin
    pool = db.read_engine.sync_engine.pool
    assert isinstance(pool, sa.QueuePool)
    assert (pool.checkedout(), pool.checkedin()) == (0, 1)


async def test_a_read_after_a_connection_was_invalidated_connects_again(
    db: Database, root: Organization
) -> None:
    """A connection found lost is invalidated (the whole pool is, on a disconnect), and
    the next checkout connects again: the statement runs on the new driver connection."""
    prepared = Prepared(ORGANIZATIONS)
    parameters = only(root)
    async with db.read_connection() as connection:
        await prepared.rows(connection, parameters)
    for _ in range(3):
        async with db.read_connection() as connection:
            await connection.invalidate()  # as SQLAlchemy does on finding it lost
        async with db.read_connection() as connection:
            assert len(await prepared.rows(connection, parameters)) == 1


async def test_a_read_cancelled_midway_leaves_no_connection_half_used(pg_url: str) -> None:
    """A request cancelled while its statement runs on PostgreSQL (a client gone, a
    timeout) leaves the next read a sound connection. (SQLite reads run inline, in one
    call: nothing is cancelled midway there.)"""
    db = Database(pg_url, pool_size=1)
    slow = Prepared(sa.select(sa.func.pg_sleep(30)))
    quick = Prepared(sa.select(sa.literal(1).label("one")))
    try:
        for _ in range(3):
            async with db.read_connection() as connection:
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(slow.rows(connection), timeout=0.2)
            async with db.read_connection() as connection:
                assert [row.one for row in await quick.rows(connection)] == [1]
    finally:
        await db.dispose()


async def test_forms_kept_are_bounded(db: Database, root: Organization) -> None:
    """One form per length of a list: a process asked every length keeps FORMS of them,
    and still answers each."""
    prepared = Prepared(ORGANIZATIONS)
    since = root.created_at - timedelta(days=1)
    for length in range(1, FORMS + 10):
        ids = [root.id, *range(10_000, 10_000 + length - 1)]
        async with db.read_connection() as connection:
            found = await prepared.rows(
                connection, {"ids": ids, "kinds": [root.kind], "since": since}
            )
        assert [row.id for row in found] == [root.id]
    [compiled] = prepared._compiled.values()
    assert len(compiled.forms) == FORMS
