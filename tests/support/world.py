"""The one world builder: organizations and numbers made through the domain layer, as a
test's starting point, and the rows a test reads back.

Every move is made by `caller`: an ADMIN at the root, unless `by` names another viewer
(a tenant's own admin, so its history shows its own hand).
"""

import dataclasses
import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy as sa

from domain import ids, numbers, organizations, subscriptions
from domain.access import Caller, Viewer
from domain.clock import Clock
from domain.details import NumberDetails
from domain.policy import Policy
from models import DeletionReason, Notice, Number, NumberEvent, Organization, OrganizationKind, Role
from models.database import Database

# Numbers `add` makes never repeat within a test run, however many worlds a test makes.
_SERIAL = itertools.count()
# numbers.add takes at most this many numbers a call.
_BATCH = 50


async def new_organization(
    db: Database,
    clock: Clock,
    name: str,
    kind: OrganizationKind,
    parent: Organization,
    **emails: str,
) -> Organization:
    async with db.write() as session:
        fields = organizations.OrganizationFields(name=name, **emails)
        return await organizations.add_child(session, parent, kind, clock, fields)


async def allow_intake(db: Database, *orgs: Organization) -> None:
    """Let the organizations' ADMINs bring numbers in, as an ADMIN above them would."""
    async with db.write() as session:
        await session.execute(
            sa.update(Organization)
            .where(Organization.id.in_([org.id for org in orgs]))
            .values(may_add_numbers=True)
        )
    for org in orgs:
        org.may_add_numbers = True


def _gid(org: Organization) -> str:
    return ids.encode(organizations.TYPE_NAME, org.uuid)


@dataclass(frozen=True)
class World:
    db: Database
    clock: Clock
    root: Organization
    viewer: Viewer | None = None  # whose hand the moves are; None: an ADMIN at the root

    @classmethod
    async def create(cls, db: Database, clock: Clock, support_email: str | None = None) -> "World":
        async with db.write() as session:
            root, _ = await organizations.ensure_root(session, "Provider", clock)
            root.support_email = support_email
        return cls(db, clock, root)

    def by(self, viewer: Viewer) -> "World":
        """The same world, its moves made by `viewer`."""
        return dataclasses.replace(self, viewer=viewer)

    @property
    def caller(self) -> Caller:
        viewer = self.viewer or Viewer(0, "tester", Role.ADMIN, self.root.id, self.root.path)
        return Caller(viewer=viewer, clock=self.clock, policy=Policy())

    async def run(self, operation: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> Any:
        """One domain operation, by the caller, in a transaction of its own."""
        async with self.db.write() as session:
            return await operation(session, self.caller, *args, **kw)

    # --- organizations and numbers ---

    async def org(
        self, name: str, kind: OrganizationKind, parent: Organization | None = None, **emails: str
    ) -> Organization:
        return await new_organization(
            self.db, self.clock, name, kind, parent or self.root, **emails
        )

    async def add_named(
        self,
        e164s: Sequence[str],
        pool: Organization | None = None,
        vendor: str = "V",
        details: NumberDetails | None = None,
    ) -> None:
        """AVAILABLE numbers in `pool` (the caller's own by default)."""
        for start in range(0, len(e164s), _BATCH):
            await self.run(
                numbers.add,
                list(e164s[start : start + _BATCH]),
                vendor=vendor,
                country="SG",
                organization_id=_gid(pool) if pool else None,
                details=details or NumberDetails(sku="sku"),
            )

    async def add(self, count: int, pool: Organization | None = None) -> list[str]:
        """`count` new AVAILABLE numbers in `pool` (the caller's own by default)."""
        e164s = [f"+65610{next(_SERIAL):05d}" for _ in range(count)]
        await self.add_named(e164s, pool)
        return e164s

    # --- the moves, each on a list of numbers ---

    async def reserve(
        self,
        e164s: Sequence[str],
        holder: Organization,
        ends: datetime | None = None,
        remark: str | None = None,
        tag: str | None = None,
    ) -> None:
        await self.run(
            numbers.reserve,
            list(e164s),
            reserved_for_id=_gid(holder),
            remark=remark,
            tag=tag,
            expires_at=ends,
        )

    async def extend(self, e164s: Sequence[str], ends: datetime, remark: str | None = None) -> None:
        await self.run(
            numbers.extend,
            list(e164s),
            did_reservation_uuid=uuid4(),
            expires_at=ends,
            remark=remark,
        )

    async def release(self, e164s: Sequence[str]) -> None:
        await self.run(numbers.release, list(e164s), remark=None)

    async def assign(
        self,
        e164s: Sequence[str],
        subscription: UUID | None = None,
        owner: Organization | None = None,
        remark: str | None = None,
    ) -> None:
        """Assign to `subscription` (a new one by default) owned by `owner`, if given."""
        await self.run(
            numbers.assign,
            list(e164s),
            subscription_uuid=subscription or uuid4(),
            owner_uuid=owner.uuid if owner else None,
            remark=remark,
        )

    async def hold_for_expired_subscription(self, e164s: Sequence[str]) -> None:
        """Assign to a subscription that then expires: reserved for its owner for a while."""
        subscription = uuid4()
        await self.assign(e164s, subscription)
        await self.expire_subscription(subscription)

    async def lock(
        self, e164s: Sequence[str], ends: datetime | None = None, remark: str = "unidentified"
    ) -> None:
        """Lock until `ends` (the policy's lock period by default)."""
        await self.run(numbers.lock, list(e164s), remark=remark, expires_at=ends)

    async def lock_without_end(self, e164s: Sequence[str]) -> None:
        """Locks made before lock periods existed have no end."""
        await self.lock(e164s)
        async with self.db.write() as session:
            await session.execute(
                sa.update(Number).where(Number.e164.in_(e164s)).values(expires_at=None)
            )

    async def unlock(self, e164s: Sequence[str]) -> None:
        await self.run(numbers.unlock, list(e164s), remark=None)

    async def delete(
        self,
        e164s: Sequence[str],
        reason: DeletionReason = DeletionReason.FAULTY,
        remark: str | None = None,
    ) -> None:
        await self.run(numbers.delete, list(e164s), reason=reason, remark=remark)

    async def recover(self, e164s: Sequence[str]) -> None:
        await self.run(numbers.recover, list(e164s), remark=None)

    async def edit(self, e164s: Sequence[str], details: NumberDetails) -> None:
        await self.run(numbers.edit, list(e164s), details)

    async def expire_subscription(self, subscription: UUID, remark: str | None = None) -> None:
        await self.run(subscriptions.expired, subscription, remark)

    async def terminate_subscription(self, subscription: UUID) -> None:
        await self.run(subscriptions.terminated, subscription, None)

    async def reactivate_subscription(self, subscription: UUID) -> None:
        await self.run(subscriptions.reactivated, subscription, None)

    # --- reading back ---

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

    async def history_length(self, e164: str) -> int:
        return len(await self.events(e164))

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
