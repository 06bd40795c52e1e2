"""The invariants checker: silent on an inventory the lifecycle made, loud on each corruption.

Every corruption is written with raw SQL past the database's own guards (foreign keys
off, the unique index gone), as a bug, a hand edit or a bad restore would leave it.
"""

import io
from datetime import timedelta
from uuid import uuid4

import pytest

from domain import allocation
from domain.clock import ManualClock
from domain.csv import imports
from domain.notices import NoticeRules
from domain.sweep import sweep
from models import OrganizationKind
from models.database import Database
from tests.support import invariants
from tests.support.api import gid
from tests.support.lifecycle import Actions
from tests.support.world import World

AVAILABLE, RESERVED, LOCKED, ASSIGNED, DELETED = (f"+656200000{i}" for i in range(5))
IMPORTED = "number,vendor,country,sku,state\n+6562000100,V,SG,sku-1,LOCKED\n"


@pytest.fixture
async def actions(db: Database, clock: ManualClock) -> Actions:
    """One number in each state, each put there through the domain layer."""
    world = await World.create(db, clock)
    actions = Actions(world, await world.org("Customer", OrganizationKind.CUSTOMER))
    await world.add_named([AVAILABLE, RESERVED, LOCKED, ASSIGNED, DELETED])
    await actions.reserve(RESERVED)
    await actions.lock(LOCKED)
    await actions.assign(ASSIGNED)
    await actions.delete(DELETED)
    return actions


async def test_an_inventory_after_every_kind_of_move_is_healthy(
    actions: Actions, db: Database, clock: ManualClock
) -> None:
    world = actions.world
    lapsing, held, moved = "+6562000010", "+6562000011", "+6562000012"
    await world.add_named([lapsing, held, moved])
    await actions.lock(lapsing)
    clock.advance(timedelta(days=91))
    await sweep(db, clock, NoticeRules())  # the lock and the reservation lapse
    await actions.reserve(RESERVED)
    await actions.extend(RESERVED)
    await actions.expire_subscription(ASSIGNED)
    await actions.reactivate_subscription(ASSIGNED)
    other = uuid4()
    await actions.assign(held, other)
    await world.terminate_subscription(other)
    request = allocation.Request(gid(actions.customer), None, None, [moved], None)
    await world.run(allocation.allocate, request)
    report = await imports.import_csv(db, world.caller, io.StringIO(IMPORTED))
    assert report.added == 1
    # Porting: one number ported out and back, one waiting to leave, one coming in.
    leaving, back, coming = "+6562000013", "+6562000014", "+6562000015"
    await world.add_named([leaving, back])
    await actions.reserve(back)
    await actions.port_out(back)
    await actions.cancel_port(back)
    await actions.port_out(leaving)
    await actions.port_in(coming)

    assert await invariants.check(db, expected_total=12) == []


async def test_a_total_other_than_the_expected_is_reported(actions: Actions, db: Database) -> None:
    assert await invariants.check(db, expected_total=6) == [
        "5 numbers in the inventory where 6 are expected"
    ]


# name → (raw SQL, a phrase of the line that reports it, the number named in it)
CORRUPTIONS = {
    "pool gone": (
        f"UPDATE numbers SET organization_id = 999999 WHERE e164 = '{AVAILABLE}'",
        "in no existing organization's pool",
        AVAILABLE,
    ),
    "series gone": (
        f"UPDATE numbers SET series_id = 999999 WHERE e164 = '{AVAILABLE}'",
        "name a series that is missing",
        AVAILABLE,
    ),
    "reservation left behind": (
        f"UPDATE numbers SET reservation_tag = 'x' WHERE e164 = '{AVAILABLE}'",
        "have reservation_tag set while not RESERVED",
        AVAILABLE,
    ),
    "reservation missing": (
        f"UPDATE numbers SET reserved_at = NULL WHERE e164 = '{RESERVED}'",
        "are RESERVED without",
        RESERVED,
    ),
    "lock left behind": (
        f"UPDATE numbers SET lock_remark = 'x' WHERE e164 = '{ASSIGNED}'",
        "have lock_remark set while not LOCKED",
        ASSIGNED,
    ),
    "lock missing": (
        f"UPDATE numbers SET locked_at = NULL WHERE e164 = '{LOCKED}'",
        "are LOCKED without locked_at",
        LOCKED,
    ),
    "subscription left behind": (
        f"UPDATE numbers SET owner_id = organization_id WHERE e164 = '{RESERVED}'",
        "have owner_id set while not ASSIGNED",
        RESERVED,
    ),
    "subscription missing": (
        f"UPDATE numbers SET subscription_uuid = NULL WHERE e164 = '{ASSIGNED}'",
        "are ASSIGNED without",
        ASSIGNED,
    ),
    "deletion left behind": (
        f"UPDATE numbers SET deletion_reason = 'FAULTY' WHERE e164 = '{AVAILABLE}'",
        "have deletion_reason set while not DELETED",
        AVAILABLE,
    ),
    "deletion missing": (
        f"UPDATE numbers SET deletion_reason = NULL WHERE e164 = '{DELETED}'",
        "are DELETED without deletion_reason",
        DELETED,
    ),
    "end outside a reservation or lock": (
        f"UPDATE numbers SET expires_at = state_changed_at WHERE e164 = '{ASSIGNED}'",
        "have expires_at set while not RESERVED or LOCKED",
        ASSIGNED,
    ),
    "state changed without history": (
        f"UPDATE numbers SET state = 'DELETED', deletion_reason = 'FAULTY' "
        f"WHERE e164 = '{AVAILABLE}'",
        "whose latest event disagrees",
        f"{AVAILABLE} is DELETED but its history says AVAILABLE",
    ),
    "porting without an order": (
        f"UPDATE numbers SET state = 'PORTING_IN' WHERE e164 = '{AVAILABLE}'",
        "are PORTING_IN outside an open port-in order",
        AVAILABLE,
    ),
    "counter off": (
        "UPDATE number_state_counts SET count = count + 1 WHERE state = 'LOCKED'",
        "per-pool state count(s) wrong",
        "LOCKED: 2 counted, 1 held",
    ),
    "history of a number gone": (
        f"DELETE FROM numbers WHERE e164 = '{LOCKED}'",
        "history event(s) of unknown numbers",
        "number id",
    ),
}


async def corrupt(db: Database, statement: str) -> None:
    """Run `statement` with foreign keys (and on PostgreSQL, triggers) not enforced."""
    async with db.engine.connect() as conn:
        if db.is_sqlite:
            await conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
            try:
                await conn.exec_driver_sql(statement)
            finally:
                await conn.exec_driver_sql("PRAGMA foreign_keys = ON")
        else:
            await conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            await conn.exec_driver_sql(statement)
        await conn.commit()


@pytest.mark.parametrize("name", list(CORRUPTIONS))
async def test_each_kind_of_corruption_is_reported_naming_the_number(
    actions: Actions, db: Database, name: str
) -> None:
    statement, phrase, named = CORRUPTIONS[name]
    assert await invariants.check(db) == []

    await corrupt(db, statement)

    violations = await invariants.check(db)
    assert [line for line in violations if phrase in line and named in line], violations


async def test_a_number_held_twice_is_reported(actions: Actions, db: Database) -> None:
    """The unique index is dropped first: it is what keeps duplicates out otherwise."""
    async with db.engine.connect() as conn:
        if db.is_sqlite:
            # The constraint lives in the table's SQL; rewrite it to one that holds.
            version = (await conn.exec_driver_sql("PRAGMA schema_version")).scalar_one()
            for statement in (
                "PRAGMA writable_schema = ON",
                "UPDATE sqlite_schema SET sql = replace(sql, "
                "'CONSTRAINT uq_numbers_e164 UNIQUE (e164)', 'CHECK (1)') WHERE name = 'numbers'",
                "DELETE FROM sqlite_schema WHERE name = 'sqlite_autoindex_numbers_1'",
                f"PRAGMA schema_version = {version + 1}",
                "PRAGMA writable_schema = OFF",
            ):
                await conn.exec_driver_sql(statement)
        else:
            await conn.exec_driver_sql("ALTER TABLE numbers DROP CONSTRAINT uq_numbers_e164")
        await conn.exec_driver_sql(
            f"UPDATE numbers SET e164 = '{AVAILABLE}' WHERE e164 = '{DELETED}'"
        )
        await conn.commit()
    try:
        violations = await invariants.check(db)
        assert violations[-1:] == [f"1 E.164 number(s) held more than once, e.g. {AVAILABLE}"]
    finally:
        if not db.is_sqlite:
            async with db.engine.connect() as conn:
                # The database outlives the test: put the constraint back for the others.
                await conn.exec_driver_sql("TRUNCATE numbers CASCADE")
                await conn.exec_driver_sql(
                    "ALTER TABLE numbers ADD CONSTRAINT uq_numbers_e164 UNIQUE (e164)"
                )
                await conn.commit()


async def _split_counter(db: Database, state: str, moved: int) -> None:
    """Move `moved` of slot 0's count for `state` into an unfolded slot of its own, as a
    PostgreSQL writer's delta waits there to be folded (slot 0 may go below zero)."""
    await corrupt(
        db,
        "INSERT INTO number_state_counts (organization_id, state, slot, count) "
        f"SELECT organization_id, state, 7, {moved} FROM number_state_counts "
        f"WHERE state = '{state}' AND slot = 0",
    )
    await corrupt(
        db,
        f"UPDATE number_state_counts SET count = count - {moved} "
        f"WHERE state = '{state}' AND slot = 0",
    )


async def test_counts_not_yet_folded_are_summed_per_pool_and_state(
    actions: Actions, db: Database
) -> None:
    await _split_counter(db, "LOCKED", 1)
    await _split_counter(db, "AVAILABLE", 3)

    assert await invariants.check(db) == []


async def test_a_miscount_spread_over_unfolded_slots_is_still_reported(
    actions: Actions, db: Database
) -> None:
    await _split_counter(db, "LOCKED", 1)
    await corrupt(db, "UPDATE number_state_counts SET count = count + 1 WHERE slot = 7")

    violations = await invariants.check(db)
    assert [line for line in violations if "LOCKED: 2 counted, 1 held" in line], violations
