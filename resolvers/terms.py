"""The term mutations: cancel, restore, renew and billing cycles (domain/terms.py)."""

import strawberry

from domain import terms
from resolvers.mutation import run
from schema.context import Info
from schema.numbers import NumbersPayload
from schema.terms import (
    CancelNumbersInput,
    RenewNumbersInput,
    RestoreNumbersInput,
    SetBillingCyclesInput,
)


@strawberry.type
class TermMutations:
    @strawberry.mutation(
        description="The service ends at paidUntil and is not renewed; numbers without a "
        "billing term are INVALID_TRANSITION."
    )
    async def cancel_numbers(self, info: Info, input: CancelNumbersInput) -> NumbersPayload:
        return await run(
            info,
            NumbersPayload,
            lambda session, who: terms.cancel(session, who, input.numbers, remark=input.remark),
        )

    @strawberry.mutation(description="Cancelled terms renew again, if restored before paidUntil.")
    async def restore_numbers(self, info: Info, input: RestoreNumbersInput) -> NumbersPayload:
        return await run(
            info,
            NumbersPayload,
            lambda session, who: terms.restore(session, who, input.numbers, remark=input.remark),
        )

    @strawberry.mutation(
        description="Adds periods to paidUntil; a number held after its term ended returns to "
        "ASSIGNED on the same subscription and owner, paid from now."
    )
    async def renew_numbers(self, info: Info, input: RenewNumbersInput) -> NumbersPayload:
        return await run(
            info,
            NumbersPayload,
            lambda session, who: terms.renew(
                session, who, input.numbers, periods=input.periods, remark=input.remark
            ),
        )

    @strawberry.mutation(description="Renewals still to come: null = unlimited, or 0 to 999.")
    async def set_billing_cycles(self, info: Info, input: SetBillingCyclesInput) -> NumbersPayload:
        return await run(
            info,
            NumbersPayload,
            lambda session, who: terms.set_cycles(
                session, who, input.numbers, cycles=input.cycles, remark=input.remark
            ),
        )
