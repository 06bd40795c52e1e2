"""Number queries and the lifecycle mutations: parse input, call the domain, shape payloads."""

from collections.abc import Awaitable, Callable
from uuid import UUID

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from domain import numbers, subscriptions
from domain.access import Caller
from domain.details import NumberDetails
from models import Capability as CapabilityFlag
from models import Number
from resolvers.mutation import run
from schema.context import Info
from schema.numbers import (
    AddNumbersInput,
    AssignNumbersInput,
    Capability,
    DeleteNumbersInput,
    EditNumbersInput,
    ExtendReservationInput,
    LockNumbersInput,
    NumbersPayload,
    NumberType,
    RecoverNumbersInput,
    ReleaseNumbersInput,
    ReserveNumbersInput,
    SubscriptionEventInput,
    SwapNumberInput,
    UnlockNumbersInput,
)

# A subscription's event: expired, terminated or reactivated.
SubscriptionEvent = Callable[[AsyncSession, Caller, UUID, str | None], Awaitable[list[Number]]]


async def _subscription_event(
    info: Info, input: SubscriptionEventInput, event: SubscriptionEvent
) -> NumbersPayload:
    return await run(
        info,
        NumbersPayload,
        lambda session, who: event(session, who, input.subscription_uuid, input.remark),
    )


def _flags(capabilities: list[Capability] | None) -> list[CapabilityFlag] | None:
    return None if capabilities is None else [c.flag for c in capabilities]


@strawberry.type
class NumberQueries:
    @strawberry.field
    async def number(self, info: Info, e164: str) -> NumberType | None:
        ctx = info.context
        async with ctx.db.read() as session:
            row = await numbers.find(session, ctx.viewer, e164)
        return NumberType.from_row(row) if row is not None else None


@strawberry.type
class NumberMutations:
    @strawberry.mutation
    async def add_numbers(self, info: Info, input: AddNumbersInput) -> NumbersPayload:
        details = NumberDetails(
            sku=input.sku,
            capabilities=_flags(input.capabilities),
            routing=input.routing,
            golden=input.golden,
            ported_in=input.ported_in,
            visible_to_domain=input.visible_to_domain,
            tag=input.tag,
            notes=input.notes,
            after_hold=input.after_hold,
            after_hold_given=input.after_hold is not None,
            capacity=input.capacity,
            capacity_given=input.capacity is not None,
        )
        return await run(
            info,
            NumbersPayload,
            lambda session, who: numbers.add(
                session,
                who,
                input.numbers,
                vendor=input.vendor,
                country=input.country,
                organization_id=input.organization_id,
                details=details,
            ),
        )

    @strawberry.mutation
    async def reserve_numbers(self, info: Info, input: ReserveNumbersInput) -> NumbersPayload:
        return await run(
            info,
            NumbersPayload,
            lambda session, who: numbers.reserve(
                session,
                who,
                input.numbers,
                reserved_for_id=input.reserved_for_id,
                remark=input.remark,
                tag=input.tag,
                expires_at=input.expires_at,
            ),
        )

    @strawberry.mutation
    async def extend_reservation(self, info: Info, input: ExtendReservationInput) -> NumbersPayload:
        return await run(
            info,
            NumbersPayload,
            lambda session, who: numbers.extend(
                session,
                who,
                input.numbers,
                did_reservation_uuid=input.did_reservation_uuid,
                expires_at=input.expires_at,
                remark=input.remark,
            ),
        )

    @strawberry.mutation
    async def release_numbers(self, info: Info, input: ReleaseNumbersInput) -> NumbersPayload:
        return await run(
            info,
            NumbersPayload,
            lambda session, who: numbers.release(session, who, input.numbers, remark=input.remark),
        )

    @strawberry.mutation
    async def assign_numbers(self, info: Info, input: AssignNumbersInput) -> NumbersPayload:
        return await run(
            info,
            NumbersPayload,
            lambda session, who: numbers.assign(
                session,
                who,
                input.numbers,
                subscription_uuid=input.subscription_uuid,
                owner_uuid=input.owner_uuid,
                remark=input.remark,
                billing=input.billing.term() if input.billing else None,
            ),
        )

    @strawberry.mutation
    async def lock_numbers(self, info: Info, input: LockNumbersInput) -> NumbersPayload:
        return await run(
            info,
            NumbersPayload,
            lambda session, who: numbers.lock(
                session, who, input.numbers, remark=input.remark, expires_at=input.expires_at
            ),
        )

    @strawberry.mutation
    async def unlock_numbers(self, info: Info, input: UnlockNumbersInput) -> NumbersPayload:
        return await run(
            info,
            NumbersPayload,
            lambda session, who: numbers.unlock(session, who, input.numbers, remark=input.remark),
        )

    @strawberry.mutation
    async def delete_numbers(self, info: Info, input: DeleteNumbersInput) -> NumbersPayload:
        return await run(
            info,
            NumbersPayload,
            lambda session, who: numbers.delete(
                session, who, input.numbers, reason=input.reason, remark=input.remark
            ),
        )

    @strawberry.mutation
    async def recover_numbers(self, info: Info, input: RecoverNumbersInput) -> NumbersPayload:
        return await run(
            info,
            NumbersPayload,
            lambda session, who: numbers.recover(session, who, input.numbers, remark=input.remark),
        )

    @strawberry.mutation
    async def edit_numbers(self, info: Info, input: EditNumbersInput) -> NumbersPayload:
        details = NumberDetails(
            sku=input.sku,
            capabilities=_flags(input.capabilities),
            routing=input.routing,
            golden=input.golden,
            ported_in=input.ported_in,
            visible_to_domain=input.visible_to_domain,
            tag=input.tag,
            notes=input.notes,
            after_hold=input.after_hold or None,
            after_hold_given=input.after_hold is not strawberry.UNSET,
            capacity=input.capacity if input.capacity is not strawberry.UNSET else None,
            capacity_given=input.capacity is not strawberry.UNSET,
        )
        return await run(
            info,
            NumbersPayload,
            lambda session, who: numbers.edit(session, who, input.numbers, details),
        )

    @strawberry.mutation
    async def subscription_expired(
        self, info: Info, input: SubscriptionEventInput
    ) -> NumbersPayload:
        return await _subscription_event(info, input, subscriptions.expired)

    @strawberry.mutation
    async def subscription_terminated(
        self, info: Info, input: SubscriptionEventInput
    ) -> NumbersPayload:
        return await _subscription_event(info, input, subscriptions.terminated)

    @strawberry.mutation
    async def subscription_reactivated(
        self, info: Info, input: SubscriptionEventInput
    ) -> NumbersPayload:
        return await _subscription_event(info, input, subscriptions.reactivated)

    @strawberry.mutation
    async def swap_number(self, info: Info, input: SwapNumberInput) -> NumbersPayload:
        return await run(
            info,
            NumbersPayload,
            lambda session, who: subscriptions.swap(
                session,
                who,
                input.subscription_uuid,
                input.old_number,
                input.new_number,
                input.remark,
            ),
        )
