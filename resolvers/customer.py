"""Blocks, registration and feature statuses (domain/customer.py)."""

import strawberry

from domain import customer
from resolvers.mutation import run
from schema.context import Info
from schema.customer import (
    BlockNumbersInput,
    SetFeatureStatusInput,
    SetRegistrationInput,
    UnblockNumbersInput,
)
from schema.numbers import NumbersPayload


@strawberry.type
class CustomerMutations:
    @strawberry.mutation(
        description="ASSIGNED numbers become BLOCKED, keeping subscription, owner and term; "
        "the sweep unblocks them at `until`."
    )
    async def block_numbers(self, info: Info, input: BlockNumbersInput) -> NumbersPayload:
        return await run(
            info,
            NumbersPayload,
            lambda session, who: customer.block(
                session,
                who,
                input.numbers,
                reason=input.reason,
                until=input.until,
                remark=input.remark,
            ),
        )

    @strawberry.mutation(description="BLOCKED numbers return to ASSIGNED.")
    async def unblock_numbers(self, info: Info, input: UnblockNumbersInput) -> NumbersPayload:
        return await run(
            info,
            NumbersPayload,
            lambda session, who: customer.unblock(session, who, input.numbers, remark=input.remark),
        )

    @strawberry.mutation(description="Records the numbers' registration status.")
    async def set_registration(self, info: Info, input: SetRegistrationInput) -> NumbersPayload:
        return await run(
            info,
            NumbersPayload,
            lambda session, who: customer.set_registration(
                session,
                who,
                input.numbers,
                status=input.status,
                identity_ref=input.identity_ref,
                remark=input.remark,
            ),
        )

    @strawberry.mutation(description="Records one feature's status on the numbers.")
    async def set_feature_status(self, info: Info, input: SetFeatureStatusInput) -> NumbersPayload:
        return await run(
            info,
            NumbersPayload,
            lambda session, who: customer.set_feature(
                session,
                who,
                input.numbers,
                kind=input.kind,
                status=input.status,
                remark=input.remark,
            ),
        )
