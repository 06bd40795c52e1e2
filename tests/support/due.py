"""An inventory with work due, for the job tests: reservations and locks that lapsed an
hour ago and ones that end within the week, and what they must come to, exactly once."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain.clock import ManualClock
from models import NoticeStatus, Number, NumberState, Organization, OrganizationKind
from models.database import Database
from tests.support.mail import Inbox
from tests.support.world import World

DAY = timedelta(days=1)


@dataclass
class Due:
    """What the seeded inventory should come to: lapses and mails, each exactly once."""

    lapsed: list[str]
    mails: int
    customer: Organization

    async def done(self, world: World, inbox: Inbox) -> bool:
        still = await world.count(
            Number.e164.in_(self.lapsed), Number.state != NumberState.AVAILABLE
        )
        sent = [n for n in await world.notices() if n.status is NoticeStatus.SENT]
        return still == 0 and len(sent) >= self.mails and len(inbox.messages) >= self.mails

    async def check_exactly_once(self, world: World, inbox: Inbox) -> None:
        assert await world.count_events("EXPIRED") == len(self.lapsed)
        assert len(inbox.messages) == self.mails
        assert len(set(inbox.ids())) == self.mails
        assert await world.count_events("NOTIFIED") == self.mails
        assert {n.status for n in await world.notices()} == {NoticeStatus.SENT}


async def seed(db: Database, lapsed: int = 4, locks: int = 2, warned: int = 3) -> Due:
    """Reservations and locks that ended an hour ago, and ones that end within the week."""
    now = datetime.now(UTC)
    clock = ManualClock(now - 2 * DAY)
    world = await World.create(db, clock, support_email="noc@provider.test")
    partner = await world.org(
        "Resell", OrganizationKind.PARTNER, support_email="support@resell.test"
    )
    customer = await world.org(
        "Acme", OrganizationKind.CUSTOMER, partner, billing_email="billing@acme.test"
    )
    ended = await world.add(lapsed, pool=customer)
    await world.reserve(ended, customer, now - timedelta(hours=1))
    ended_locks = await world.add(locks, pool=customer)
    await world.lock(ended_locks, now - timedelta(hours=1))
    clock.set(now)
    ending = await world.add(warned, pool=customer)
    await world.reserve(ending, customer, now + 3 * DAY)
    # Mails: one per lapsed lock, one per reservation ending within the week.
    return Due(lapsed=ended + ended_locks, mails=locks + warned, customer=customer)


# Reserving until an end, through the API: traffic that makes more work due.
RESERVE = """mutation($numbers: [String!]!, $holder: ID!, $ends: DateTime) {
  reserveNumbers(input: {numbers: $numbers, reservedForId: $holder, expiresAt: $ends}) {
    userErrors { code message }
  }
}"""
