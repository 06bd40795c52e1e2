"""Migration 0010 makes operators of the vendor values numbers have."""

import asyncio

import sqlalchemy as sa
from alembic import command

from domain.clock import ManualClock
from migrations import alembic_config, upgrade_async
from models import Number, OrganizationKind
from models.database import Database
from models.operators import Operator
from tests.support.world import World

INSERT = sa.text(
    "INSERT INTO numbers (e164, state, country, sku, vendor, capabilities, golden, ported_in,"
    " organization_id, state_changed_at)"
    " VALUES (:e164, 'AVAILABLE', 'SG', 'DID', :vendor, 1, false, false, :pool, :at)"
)


async def test_vendors_become_operators_of_the_nearest_partner_else_the_provider(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    world = await World.create(db, clock)
    partner = await world.org("Partner", OrganizationKind.PARTNER)
    customer = await world.org("Customer", OrganizationKind.CUSTOMER, partner)
    direct = await world.org("Direct", OrganizationKind.CUSTOMER)
    await db.dispose()
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0012_events")
    at = clock.now().replace(tzinfo=None) if db.is_sqlite else clock.now()
    given = [
        ("+6561000001", "Acme", customer.id),
        ("+6561000002", "ACME", partner.id),
        ("+6561000003", "Acme", world.root.id),
        ("+6561000004", "Zeta", direct.id),
        ("+6561000005", "zeta", world.root.id),
    ]
    async with db.write() as session:
        for e164, vendor, pool in given:
            await session.execute(INSERT, {"e164": e164, "vendor": vendor, "pool": pool, "at": at})
    await db.dispose()

    await upgrade_async(database_url)

    async with db.read() as session:
        made = {
            (row.organization_id, row.name_key): (row.id, row.name)
            for row in await session.scalars(sa.select(Operator))
        }
        numbers = {
            e164: (vendor, operator_id)
            for e164, vendor, operator_id in await session.execute(
                sa.select(Number.e164, Number.vendor, Number.operator_id)
            )
        }
    assert {key: name for key, (_, name) in made.items()} == {
        (partner.id, "acme"): "ACME",
        (world.root.id, "acme"): "Acme",
        (world.root.id, "zeta"): "Zeta",
    }
    assert numbers == {
        "+6561000001": ("ACME", made[(partner.id, "acme")][0]),
        "+6561000002": ("ACME", made[(partner.id, "acme")][0]),
        "+6561000003": ("Acme", made[(world.root.id, "acme")][0]),
        "+6561000004": ("Zeta", made[(world.root.id, "zeta")][0]),
        "+6561000005": ("Zeta", made[(world.root.id, "zeta")][0]),
    }
