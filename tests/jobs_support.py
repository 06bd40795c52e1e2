"""For the sweep, notice and job tests: a real SMTP server, and an inventory to sweep."""

import asyncio
import email
import email.policy
import itertools
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from uuid import uuid4

import sqlalchemy as sa
from aiosmtpd.controller import Controller

from domain import ids, numbers, organizations, subscriptions
from domain.access import Caller, Viewer
from domain.clock import Clock, ManualClock
from domain.details import NumberDetails
from domain.policy import Policy
from models import (
    Notice,
    NoticeStatus,
    Number,
    NumberEvent,
    NumberState,
    Organization,
    OrganizationKind,
    Role,
)
from models.database import Database
from tests.processes import free_port


class Inbox:
    """aiosmtpd's handler: keeps the messages it accepts; replies can be scripted.

    `replies` holds the answers to the next DATA commands ("451 …", "550 …"); when it
    is empty, messages are accepted. While `hold` is set, DATA waits until it is cleared
    (and `held` tells the test a message is waiting).
    """

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.replies: deque[str] = deque()
        self.hold = threading.Event()
        self.held = threading.Event()
        self._release = threading.Event()
        self._lock = threading.Lock()

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        if self.hold.is_set():
            self.held.set()
            await asyncio.to_thread(self._release.wait)
            return "451 held back by the test"
        with self._lock:
            if self.replies:
                return self.replies.popleft()
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            self.messages.append(message)
        return "250 OK"

    def release(self) -> None:
        self._release.set()

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if address in m["To"]]

    def ids(self) -> list[str]:
        with self._lock:
            return [str(m["Message-ID"]) for m in self.messages]


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        inbox.release()
        controller.stop()


def plain_text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert isinstance(body, EmailMessage)
    return str(body.get_content())


def html_text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("html",))
    assert isinstance(body, EmailMessage)
    return str(body.get_content())


# Numbers never repeat within a test run, however many inventories a test makes.
_SERIAL = itertools.count()


@dataclass
class Inventory:
    """Organizations and numbers made through the domain layer, by an ADMIN at the root."""

    db: Database
    clock: Clock
    root: Organization

    @classmethod
    async def create(
        cls, db: Database, clock: Clock, support_email: str | None = None
    ) -> "Inventory":
        async with db.write() as session:
            root, _ = await organizations.ensure_root(session, "Provider", clock)
            root.support_email = support_email
        return cls(db, clock, root)

    @property
    def caller(self) -> Caller:
        viewer = Viewer(0, "tester", Role.ADMIN, self.root.id, self.root.path)
        return Caller(viewer=viewer, clock=self.clock, policy=Policy())

    async def org(
        self, name: str, kind: OrganizationKind, parent: Organization | None = None, **emails: str
    ) -> Organization:
        async with self.db.write() as session:
            fields = organizations.OrganizationFields(name=name, **emails)
            return await organizations.add_child(
                session, parent or self.root, kind, self.clock, fields
            )

    async def add(self, count: int, pool: Organization | None = None) -> list[str]:
        """`count` new AVAILABLE numbers in `pool` (the root's by default)."""
        e164s = [f"+65610{next(_SERIAL):05d}" for _ in range(count)]
        target = ids.encode(organizations.TYPE_NAME, (pool or self.root).uuid)
        for start in range(0, count, 50):
            async with self.db.write() as session:
                await numbers.add(
                    session,
                    self.caller,
                    e164s[start : start + 50],
                    vendor="V",
                    country="SG",
                    organization_id=target,
                    details=NumberDetails(sku="sku"),
                )
        return e164s

    async def _do(self, operation: Any, e164s: Sequence[str], **kw: Any) -> None:
        async with self.db.write() as session:
            await operation(session, self.caller, list(e164s), **kw)

    async def reserve(self, e164s: Sequence[str], holder: Organization, ends: datetime) -> None:
        holder_id = ids.encode(organizations.TYPE_NAME, holder.uuid)
        await self._do(
            numbers.reserve,
            e164s,
            reserved_for_id=holder_id,
            remark=None,
            tag=None,
            expires_at=ends,
        )

    async def extend(self, e164s: Sequence[str], ends: datetime) -> None:
        await self._do(
            numbers.extend, e164s, did_reservation_uuid=uuid4(), expires_at=ends, remark=None
        )

    async def release(self, e164s: Sequence[str]) -> None:
        await self._do(numbers.release, e164s, remark=None)

    async def assign(self, e164s: Sequence[str]) -> None:
        await self._do(
            numbers.assign, e164s, subscription_uuid=uuid4(), owner_uuid=None, remark=None
        )

    async def hold_for_expired_subscription(self, e164s: Sequence[str]) -> None:
        """Assign to a subscription that then expires: reserved for its owner for a while."""
        subscription = uuid4()
        await self._do(
            numbers.assign, e164s, subscription_uuid=subscription, owner_uuid=None, remark=None
        )
        async with self.db.write() as session:
            await subscriptions.expired(session, self.caller, subscription, None)

    async def lock(self, e164s: Sequence[str], ends: datetime | None) -> None:
        await self._do(numbers.lock, e164s, remark="unidentified", expires_at=ends)
        if ends is None:
            # Locks made before lock periods existed have no end.
            async with self.db.write() as session:
                await session.execute(
                    sa.update(Number).where(Number.e164.in_(e164s)).values(expires_at=None)
                )

    async def unlock(self, e164s: Sequence[str]) -> None:
        await self._do(numbers.unlock, e164s, remark=None)

    async def row(self, e164: str) -> Number:
        async with self.db.read() as session:
            return (await session.scalars(sa.select(Number).where(Number.e164 == e164))).one()

    async def events(self, e164: str, action: str | None = None) -> list[NumberEvent]:
        query = (
            sa.select(NumberEvent)
            .join(Number, Number.id == NumberEvent.number_id)
            .where(Number.e164 == e164)
            .order_by(NumberEvent.id)
        )
        if action is not None:
            query = query.where(NumberEvent.action == action)
        async with self.db.read() as session:
            return list((await session.scalars(query)).all())

    async def notices(self, e164: str | None = None) -> list[Notice]:
        query = sa.select(Notice).order_by(Notice.id)
        if e164 is not None:
            query = query.join(Number, Number.id == Notice.number_id).where(Number.e164 == e164)
        async with self.db.read() as session:
            return list((await session.scalars(query)).all())

    async def count(self, *conditions: Any) -> int:
        query = sa.select(sa.func.count()).select_from(Number).where(*conditions)
        async with self.db.read() as session:
            return int((await session.execute(query)).scalar_one())

    async def count_events(self, action: str) -> int:
        query = sa.select(sa.func.count()).select_from(NumberEvent)
        async with self.db.read() as session:
            return int(
                (await session.execute(query.where(NumberEvent.action == action))).scalar_one()
            )


DAY = timedelta(days=1)


@dataclass
class Due:
    """What the seeded inventory should come to: lapses and mails, each exactly once."""

    lapsed: list[str]
    mails: int
    customer: Organization

    async def done(self, inventory: Inventory, inbox: Inbox) -> bool:
        still = await inventory.count(
            Number.e164.in_(self.lapsed), Number.state != NumberState.AVAILABLE
        )
        sent = [n for n in await inventory.notices() if n.status is NoticeStatus.SENT]
        return still == 0 and len(sent) >= self.mails and len(inbox.messages) >= self.mails

    async def check_exactly_once(self, inventory: Inventory, inbox: Inbox) -> None:
        assert await inventory.count_events("EXPIRED") == len(self.lapsed)
        assert len(inbox.messages) == self.mails
        assert len(set(inbox.ids())) == self.mails
        assert await inventory.count_events("NOTIFIED") == self.mails
        assert {n.status for n in await inventory.notices()} == {NoticeStatus.SENT}


async def seed(db: Database, lapsed: int = 4, locks: int = 2, warned: int = 3) -> Due:
    """Reservations and locks that ended an hour ago, and ones that end within the week."""
    now = datetime.now(UTC)
    clock = ManualClock(now - 2 * DAY)
    inventory = await Inventory.create(db, clock, support_email="noc@provider.test")
    partner = await inventory.org(
        "Resell", OrganizationKind.PARTNER, support_email="support@resell.test"
    )
    customer = await inventory.org(
        "Acme", OrganizationKind.CUSTOMER, partner, billing_email="billing@acme.test"
    )
    ended = await inventory.add(lapsed, pool=customer)
    await inventory.reserve(ended, customer, now - timedelta(hours=1))
    ended_locks = await inventory.add(locks, pool=customer)
    await inventory.lock(ended_locks, now - timedelta(hours=1))
    clock.set(now)
    ending = await inventory.add(warned, pool=customer)
    await inventory.reserve(ending, customer, now + 3 * DAY)
    # Mails: one per lapsed lock, one per reservation ending within the week.
    return Due(lapsed=ended + ended_locks, mails=locks + warned, customer=customer)


RESERVE = """mutation($numbers: [String!]!, $holder: ID!, $ends: DateTime) {
  reserveNumbers(input: {numbers: $numbers, reservedForId: $holder, expiresAt: $ends}) {
    userErrors { code message }
  }
}"""
