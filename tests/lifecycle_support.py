"""Putting numbers into each state through the domain layer, and the invariants they keep."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID, uuid4

import sqlalchemy as sa

from domain import numbers, subscriptions
from domain.access import Caller, Viewer
from domain.clock import ManualClock
from domain.details import NumberDetails
from domain.errors import DomainError
from domain.policy import Policy
from models import DeletionReason, Number, NumberEvent, NumberState, Organization, Role
from models.database import Database

SUBSCRIPTION = UUID("00000000-0000-4000-8000-000000000001")


@dataclass
class World:
    db: Database
    clock: ManualClock
    root: Organization
    customer: Organization

    @property
    def caller(self) -> Caller:
        viewer = Viewer(
            token_id=0,
            token_name="tester",
            role=Role.ADMIN,
            org_id=self.root.id,
            org_path=self.root.path,
        )
        return Caller(viewer=viewer, clock=self.clock, policy=Policy())

    async def run(self, operation: Callable[..., Awaitable[object]], *args: object, **kw: object):
        async with self.db.write() as session:
            return await operation(session, self.caller, *args, **kw)

    async def add(self, e164: str) -> None:
        await self.run(
            numbers.add,
            [e164],
            vendor="V",
            country="SG",
            organization_id=None,
            details=NumberDetails(sku="sku-1"),
        )

    async def row(self, e164: str) -> Number:
        async with self.db.read() as session:
            return (await session.scalars(sa.select(Number).where(Number.e164 == e164))).one()

    async def history_length(self, e164: str) -> int:
        async with self.db.read() as session:
            query = (
                sa.select(sa.func.count())
                .select_from(NumberEvent)
                .join(Number)
                .where(Number.e164 == e164)
            )
            return (await session.execute(query)).scalar_one()

    # --- one call per action a person can ask for ---

    async def reserve(self, e164: str) -> object:
        return await self.run(
            numbers.reserve,
            [e164],
            reserved_for_id=_gid(self.customer),
            remark="for a customer",
            tag="sales",
            expires_at=None,
        )

    async def extend(self, e164: str) -> object:
        return await self.run(
            numbers.extend,
            [e164],
            did_reservation_uuid=uuid4(),
            expires_at=self.clock.now() + timedelta(days=60),
            remark=None,
        )

    async def release(self, e164: str) -> object:
        return await self.run(numbers.release, [e164], remark=None)

    async def assign(self, e164: str, subscription: UUID = SUBSCRIPTION) -> object:
        return await self.run(
            numbers.assign,
            [e164],
            subscription_uuid=subscription,
            owner_uuid=self.customer.uuid,
            remark=None,
        )

    async def lock(self, e164: str) -> object:
        return await self.run(numbers.lock, [e164], remark="unidentified", expires_at=None)

    async def unlock(self, e164: str) -> object:
        return await self.run(numbers.unlock, [e164], remark=None)

    async def delete(self, e164: str) -> object:
        return await self.run(numbers.delete, [e164], reason=DeletionReason.FAULTY, remark=None)

    async def recover(self, e164: str) -> object:
        return await self.run(numbers.recover, [e164], remark=None)

    async def edit(self, e164: str) -> object:
        return await self.run(numbers.edit, [e164], NumberDetails(sku="sku-2", notes="edited"))

    async def expire_subscription(self, _e164: str) -> object:
        return await self.run(subscriptions.expired, SUBSCRIPTION, None)

    async def terminate_subscription(self, _e164: str) -> object:
        return await self.run(subscriptions.terminated, SUBSCRIPTION, None)

    async def reactivate_subscription(self, _e164: str) -> object:
        return await self.run(subscriptions.reactivated, SUBSCRIPTION, None)


def _gid(org: Organization) -> str:
    from domain import ids, organizations

    return ids.encode(organizations.TYPE_NAME, org.uuid)


def state_problems(row: Number) -> list[str]:
    """Ways in which a number's fields disagree with its state."""
    problems = []
    state = row.state
    reserved = [row.reservation_kind, row.reservation_reason, row.reserved_for_id, row.reserved_at]
    if (state is NumberState.RESERVED) != all(v is not None for v in reserved):
        problems.append("reservation present iff RESERVED")
    if state is not NumberState.RESERVED and any(v is not None for v in reserved):
        problems.append("reservation fields left outside RESERVED")
    if (state is NumberState.LOCKED) != (row.locked_at is not None):
        problems.append("lock present iff LOCKED")
    assigned = state is NumberState.ASSIGNED
    if assigned != (row.subscription_uuid is not None) or assigned != (row.owner_id is not None):
        problems.append("subscription and owner set iff ASSIGNED")
    if (state is NumberState.DELETED) != (row.deletion_reason is not None):
        problems.append("deletion reason iff DELETED")
    if row.expires_at is not None and state not in (NumberState.RESERVED, NumberState.LOCKED):
        problems.append("an end outside RESERVED and LOCKED")
    return problems


async def attempt(call: Awaitable[object]) -> DomainError | None:
    try:
        await call
    except DomainError as error:
        return error
    return None
