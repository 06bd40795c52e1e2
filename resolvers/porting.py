"""Queries and mutations on port orders (domain/porting.py)."""

from collections.abc import Awaitable, Callable

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from domain import porting
from domain.access import Caller
from domain.pagination import page_request
from models import PortOrder
from resolvers.mutation import run
from schema.context import Info
from schema.porting import (
    ConfirmPortOrderInput,
    CreatePortInInput,
    CreatePortOutInput,
    PortOrderActionInput,
    PortOrderConnection,
    PortOrderFilter,
    PortOrderPayload,
)

Operation = Callable[[AsyncSession, Caller], Awaitable[PortOrder]]


def _act(input: PortOrderActionInput, action: porting.OrderAction) -> Operation:
    return lambda session, who: porting.act(session, who, input.id, action, remark=input.remark)


@strawberry.type
class PortingQueries:
    @strawberry.field(description="Port orders of pools in the viewer's subtree, newest first.")
    async def port_orders(
        self,
        info: Info,
        filter: PortOrderFilter | None = None,
        first: int | None = 50,
        after: str | None = None,
    ) -> PortOrderConnection:
        ctx = info.context
        request = page_request(first, after, ctx.settings.max_page_size)
        spec = filter.to_domain() if filter is not None else porting.PortOrderFilter()
        async with ctx.db.read_statements() as session:
            page, where = await porting.listed(session, ctx.viewer, spec, request)

        async def count() -> int:
            async with ctx.db.read_statements() as session:
                return await porting.count(session, where)

        return PortOrderConnection.from_page(page, count)


@strawberry.type
class PortingMutations:
    @strawberry.mutation(
        description="A DRAFT port-in order; its numbers join the pool as PORTING_IN (ADMIN)."
    )
    async def create_port_in(self, info: Info, input: CreatePortInInput) -> PortOrderPayload:
        request = porting.PortInRequest(
            numbers=input.numbers,
            carrier=input.carrier,
            vendor=input.vendor,
            country=input.country,
            sku=input.sku,
            capabilities=None
            if input.capabilities is None
            else [c.flag for c in input.capabilities],
            reference=input.reference,
            remark=input.remark,
            organization_id=input.organization_id,
        )
        return await run(
            info,
            PortOrderPayload,
            lambda session, who: porting.create_port_in(session, who, request),
        )

    @strawberry.mutation(
        description="A DRAFT port-out order; its numbers wait in PORTING_OUT (ADMIN)."
    )
    async def create_port_out(self, info: Info, input: CreatePortOutInput) -> PortOrderPayload:
        return await run(
            info,
            PortOrderPayload,
            lambda session, who: porting.create_port_out(
                session,
                who,
                input.numbers,
                carrier=input.carrier,
                reference=input.reference,
                remark=input.remark,
            ),
        )

    @strawberry.mutation(description="DRAFT -> SUBMITTED.")
    async def submit_port_order(self, info: Info, input: PortOrderActionInput) -> PortOrderPayload:
        return await run(info, PortOrderPayload, _act(input, porting.OrderAction.SUBMIT))

    @strawberry.mutation(
        description="SUBMITTED or FOC_CONFIRMED -> FOC_CONFIRMED, a future focDate."
    )
    async def confirm_port_order(
        self, info: Info, input: ConfirmPortOrderInput
    ) -> PortOrderPayload:
        return await run(
            info,
            PortOrderPayload,
            lambda session, who: porting.act(
                session,
                who,
                input.id,
                porting.OrderAction.CONFIRM,
                remark=input.remark,
                foc_date=input.foc_date,
            ),
        )

    @strawberry.mutation(
        description="FOC_CONFIRMED -> COMPLETED: ported-in numbers become AVAILABLE, ported-out "
        "ones DELETED (PORTED_OUT)."
    )
    async def complete_port_order(
        self, info: Info, input: PortOrderActionInput
    ) -> PortOrderPayload:
        return await run(info, PortOrderPayload, _act(input, porting.OrderAction.COMPLETE))

    @strawberry.mutation(
        description="Any open order -> CANCELLED: ported-in numbers are DELETED "
        "(PORT_CANCELLED), ported-out ones return exactly as they were."
    )
    async def cancel_port_order(self, info: Info, input: PortOrderActionInput) -> PortOrderPayload:
        return await run(info, PortOrderPayload, _act(input, porting.OrderAction.CANCEL))

    @strawberry.mutation(description="SUBMITTED or FOC_CONFIRMED -> REJECTED, as cancel.")
    async def reject_port_order(self, info: Info, input: PortOrderActionInput) -> PortOrderPayload:
        return await run(info, PortOrderPayload, _act(input, porting.OrderAction.REJECT))
