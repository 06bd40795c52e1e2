"""The lifecycle as the design states it, and one call per action on one number, through
the domain layer: what the lifecycle tests, the state machine and the counters share.

The expected table below is written from DESIGN.md by hand, not read from the code.
"""

from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from domain import customer, ids, numbers, porting, terms
from domain.clock import ManualClock
from domain.details import NumberDetails
from domain.errors import DomainError, ErrorCode
from models import (
    BlockReason,
    FeatureKind,
    FeatureStatus,
    Number,
    NumberState,
    Organization,
    RegistrationStatus,
)
from tests.support.world import World

SUBSCRIPTION = UUID("00000000-0000-4000-8000-000000000001")

A, R, L, S, D, B = "AVAILABLE", "RESERVED", "LOCKED", "ASSIGNED", "DELETED", "BLOCKED"
PI, PO = "PORTING_IN", "PORTING_OUT"
# "HELD": RESERVED by the expiry of subscription SUBSCRIPTION (it may be reactivated).
SETUPS = {
    A: [],
    R: ["reserve"],
    "HELD": ["assign", "expire_subscription"],
    L: ["lock"],
    S: ["assign"],
    D: ["delete"],
    # Issue 15's paid terms: assigned with one; that one cancelled; and held after it ended.
    "TERM": ["assign_with_term"],
    "CANCELLED": ["assign_with_term", "cancel"],
    "ENDED": ["assign_with_term", "cancel", "end_term"],
    # Issue 18's porting: a DELETED number ported in again; an AVAILABLE one ported out.
    PI: ["delete", "port_in"],
    PO: ["port_out"],
    # Blocks: a number without a term, one with a term, and one whose term is cancelled.
    B: ["assign", "block"],
    "BLOCKED_TERM": ["assign_with_term", "block"],
    "BLOCKED_CANCELLED": ["assign_with_term", "cancel", "block"],
}
# The state each setup leaves the number in.
SETUP_STATES = {
    **{s: s for s in (A, R, L, S, D, B, PI, PO)},
    "HELD": R,
    "TERM": S,
    "CANCELLED": S,
    "ENDED": R,
    "BLOCKED_TERM": B,
    "BLOCKED_CANCELLED": B,
}
ACTIONS = [
    "reserve",
    "extend",
    "release",
    "assign",
    "lock",
    "unlock",
    "delete",
    "recover",
    "edit",
    "expire_subscription",
    "terminate_subscription",
    "reactivate_subscription",
    "cancel",
    "restore",
    "renew",
    "set_cycles",
    "port_in",
    "port_out",
    "complete_port",
    "cancel_port",
    "block",
    "unblock",
    "set_registration",
    "set_feature",
]
# The setups a port-out accepts: AVAILABLE, RESERVED, ASSIGNED and BLOCKED, in every form.
PORT_OUT_FROM = [
    *(A, R, "HELD", S, "TERM", "CANCELLED", "ENDED"),
    *(B, "BLOCKED_TERM", "BLOCKED_CANCELLED"),
]
# (starting state, action) -> resulting state, from DESIGN.md's lifecycle table.
EXPECTED = {
    (A, "reserve"): R,
    (R, "extend"): R,
    ("HELD", "extend"): R,
    (R, "release"): A,
    ("HELD", "release"): A,
    (A, "assign"): S,
    (R, "assign"): S,
    ("HELD", "assign"): S,
    (A, "lock"): L,
    (L, "unlock"): A,
    (A, "delete"): D,
    (L, "delete"): D,
    (D, "recover"): A,
    (A, "edit"): A,
    (R, "edit"): R,
    ("HELD", "edit"): R,
    (L, "edit"): L,
    (S, "edit"): S,
    (S, "expire_subscription"): R,
    (S, "terminate_subscription"): R,
    ("HELD", "reactivate_subscription"): S,
    # Version 2: the paid term. Without one, these are refused (INVALID_TRANSITION).
    ("TERM", "edit"): S,
    ("CANCELLED", "edit"): S,
    ("ENDED", "edit"): R,
    ("TERM", "expire_subscription"): R,
    ("CANCELLED", "expire_subscription"): R,
    ("TERM", "terminate_subscription"): R,
    ("CANCELLED", "terminate_subscription"): R,
    ("ENDED", "extend"): R,
    ("ENDED", "release"): A,
    ("ENDED", "assign"): S,
    ("TERM", "cancel"): S,
    ("CANCELLED", "restore"): S,
    ("TERM", "renew"): S,
    ("CANCELLED", "renew"): S,
    ("ENDED", "renew"): S,
    ("TERM", "set_cycles"): S,
    ("CANCELLED", "set_cycles"): S,
    # Version 2: porting. A PORTING number takes only edit and its order's actions; a
    # cancelled port-out returns the number to the state it left (here AVAILABLE).
    (D, "port_in"): PI,
    **{(start, "port_out"): PO for start in PORT_OUT_FROM},
    (PI, "edit"): PI,
    (PO, "edit"): PO,
    (PI, "complete_port"): A,
    (PO, "complete_port"): D,
    (PI, "cancel_port"): D,
    (PO, "cancel_port"): A,
    # Version 2: blocks. A block keeps the subscription, owner and term; the subscription's
    # end and the term's actions accept a blocked number.
    (S, "block"): B,
    ("TERM", "block"): B,
    ("CANCELLED", "block"): B,
    (B, "unblock"): S,
    ("BLOCKED_TERM", "unblock"): S,
    ("BLOCKED_CANCELLED", "unblock"): S,
    (B, "edit"): B,
    ("BLOCKED_TERM", "edit"): B,
    ("BLOCKED_CANCELLED", "edit"): B,
    (B, "expire_subscription"): R,
    ("BLOCKED_TERM", "expire_subscription"): R,
    ("BLOCKED_CANCELLED", "expire_subscription"): R,
    (B, "terminate_subscription"): R,
    ("BLOCKED_TERM", "terminate_subscription"): R,
    ("BLOCKED_CANCELLED", "terminate_subscription"): R,
    ("BLOCKED_TERM", "cancel"): B,
    ("BLOCKED_CANCELLED", "restore"): B,
    ("BLOCKED_TERM", "renew"): B,
    ("BLOCKED_CANCELLED", "renew"): B,
    ("BLOCKED_TERM", "set_cycles"): B,
    ("BLOCKED_CANCELLED", "set_cycles"): B,
    # Registration and features are facts set in any state but DELETED and the porting
    # states (a porting number takes only edit and its order's actions); the state stays.
    **{
        (start, action): SETUP_STATES[start]
        for start in SETUPS
        if SETUP_STATES[start] not in (D, PI, PO)
        for action in ("set_registration", "set_feature")
    },
}
# Answers a refused action may give besides INVALID_TRANSITION: a port-in of a number
# in the inventory (not DELETED) is ALREADY_EXISTS.
ALSO_REFUSED_WITH = {"port_in": ErrorCode.ALREADY_EXISTS}


@dataclass(frozen=True)
class Actions:
    """One call per action a person can ask for, each on one number: reservations are
    for `customer`, assignments to subscription SUBSCRIPTION, which `customer` owns."""

    world: World
    customer: Organization

    async def reserve(self, e164: str) -> None:
        await self.world.reserve([e164], self.customer, remark="for a customer", tag="sales")

    async def extend(self, e164: str) -> None:
        await self.world.extend([e164], self.world.clock.now() + timedelta(days=60))

    async def release(self, e164: str) -> None:
        await self.world.release([e164])

    async def assign(self, e164: str, subscription: UUID = SUBSCRIPTION) -> None:
        await self.world.assign([e164], subscription, owner=self.customer)

    async def lock(self, e164: str) -> None:
        await self.world.lock([e164])

    async def unlock(self, e164: str) -> None:
        await self.world.unlock([e164])

    async def delete(self, e164: str) -> None:
        await self.world.delete([e164])

    async def recover(self, e164: str) -> None:
        await self.world.recover([e164])

    async def edit(self, e164: str) -> None:
        await self.world.edit([e164], NumberDetails(sku="sku-2", notes="edited"))

    async def expire_subscription(self, _e164: str) -> None:
        await self.world.expire_subscription(SUBSCRIPTION)

    async def terminate_subscription(self, _e164: str) -> None:
        await self.world.terminate_subscription(SUBSCRIPTION)

    async def reactivate_subscription(self, _e164: str) -> None:
        await self.world.reactivate_subscription(SUBSCRIPTION)

    async def assign_with_term(self, e164: str) -> None:
        await self.world.run(
            numbers.assign,
            [e164],
            subscription_uuid=SUBSCRIPTION,
            owner_uuid=self.customer.uuid,
            remark=None,
            billing=terms.TermInput(1, None, None),
        )

    async def cancel(self, e164: str) -> None:
        await self.world.run(terms.cancel, [e164], remark=None)

    async def restore(self, e164: str) -> None:
        await self.world.run(terms.restore, [e164], remark=None)

    async def renew(self, e164: str) -> None:
        await self.world.run(terms.renew, [e164], periods=1, remark=None)

    async def set_cycles(self, e164: str) -> None:
        await self.world.run(terms.set_cycles, [e164], cycles=3, remark=None)

    async def port_in(self, e164: str) -> None:
        request = porting.PortInRequest(
            [e164], carrier="Old Carrier", vendor="V", country="SG", sku="sku-1"
        )
        await self.world.run(porting.create_port_in, request)

    async def port_out(self, e164: str) -> None:
        await self.world.run(
            porting.create_port_out, [e164], carrier="New Carrier", reference=None, remark=None
        )

    async def _order_of(self, e164: str) -> str:
        """The open port order of the number, as its id; NOT_FOUND if it is in none."""
        row = await self.world.row(e164)
        async with self.world.db.read() as session:
            found = await porting.open_orders(session, [row.id])
        if row.id not in found:
            raise DomainError.one(ErrorCode.NOT_FOUND, f"{e164} is in no open port order")
        return ids.encode(porting.TYPE_NAME, found[row.id].uuid)

    async def complete_port(self, e164: str) -> None:
        """Its order submitted, confirmed for tomorrow and completed."""
        order = await self._order_of(e164)
        tomorrow = self.world.clock.now() + timedelta(days=1)
        await self.world.run(porting.act, order, porting.OrderAction.SUBMIT, remark=None)
        await self.world.run(
            porting.act, order, porting.OrderAction.CONFIRM, remark=None, foc_date=tomorrow
        )
        await self.world.run(porting.act, order, porting.OrderAction.COMPLETE, remark=None)

    async def cancel_port(self, e164: str) -> None:
        order = await self._order_of(e164)
        await self.world.run(porting.act, order, porting.OrderAction.CANCEL, remark=None)

    async def block(self, e164: str) -> None:
        await self.world.run(
            customer.block, [e164], reason=BlockReason.NON_PAYMENT, until=None, remark=None
        )

    async def unblock(self, e164: str) -> None:
        await self.world.run(customer.unblock, [e164], remark=None)

    async def set_registration(self, e164: str) -> None:
        await self.world.run(
            customer.set_registration,
            [e164],
            status=RegistrationStatus.PENDING,
            identity_ref="identity-1",
            remark=None,
        )

    async def set_feature(self, e164: str) -> None:
        await self.world.run(
            customer.set_feature,
            [e164],
            kind=FeatureKind.EMERGENCY,
            status=FeatureStatus.ACTIVE,
            remark=None,
        )

    async def end_term(self, e164: str) -> None:
        """The clock reaches the term's paid-until and the sweep ends the service."""
        row = await self.world.row(e164)
        assert isinstance(self.world.clock, ManualClock)
        assert row.paid_until is not None
        self.world.clock.set(row.paid_until)
        await terms.sweep_terms(self.world.db, row.paid_until, self.world.caller.policy)


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
    assigned = state in (NumberState.ASSIGNED, NumberState.BLOCKED)
    if assigned != (row.subscription_uuid is not None) or assigned != (row.owner_id is not None):
        problems.append("subscription and owner set iff ASSIGNED or BLOCKED")
    blocked = [row.block_reason, row.blocked_at]
    if (state is NumberState.BLOCKED) != all(v is not None for v in blocked):
        problems.append("block present iff BLOCKED")
    if state is not NumberState.BLOCKED and (
        row.blocked_until is not None or row.block_remark is not None
    ):
        problems.append("block fields left outside BLOCKED")
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
