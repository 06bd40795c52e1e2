"""Moving numbers down the organization tree and back: allocate and withdraw."""

import strawberry

from domain import allocation
from resolvers.mutation import run
from schema.allocation import AllocateNumbersInput, WithdrawNumbersInput
from schema.context import Info
from schema.numbers import NumbersPayload


def _request(input: AllocateNumbersInput | WithdrawNumbersInput) -> allocation.Request:
    return allocation.Request(
        organization_id=input.organization_id,
        series_id=input.series_id,
        quantity=input.quantity,
        numbers=input.numbers,
        remark=input.remark,
    )


@strawberry.type
class AllocationMutations:
    @strawberry.mutation
    async def allocate_numbers(self, info: Info, input: AllocateNumbersInput) -> NumbersPayload:
        request = _request(input)
        return await run(
            info,
            NumbersPayload,
            lambda session, who: allocation.allocate(session, who, request),
        )

    @strawberry.mutation
    async def withdraw_numbers(self, info: Info, input: WithdrawNumbersInput) -> NumbersPayload:
        request = _request(input)
        return await run(
            info,
            NumbersPayload,
            lambda session, who: allocation.withdraw(session, who, request),
        )
