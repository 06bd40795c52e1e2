"""Number lists, counts, allocation views, and the allocate and withdraw mutations."""

import strawberry

from domain import allocation, search
from domain.errors import Problems
from domain.pagination import page_request
from models import Organization
from resolvers.context import Context
from resolvers.numbers import run
from schema.allocation import AllocateNumbersInput, Allocation, WithdrawNumbersInput
from schema.numbers import NumbersPayload
from schema.search import (
    NumberConnection,
    NumberFilterInput,
    StateCount,
    domain_filter,
    state_counts,
)

Info = strawberry.Info[Context, None]


async def organization_numbers(
    info: Info,
    org: Organization,
    spec: NumberFilterInput | None,
    first: int | None,
    after: str | None,
    include_descendants: bool,
) -> NumberConnection:
    ctx = info.context
    request = page_request(first, after, ctx.settings.max_page_size)
    key = (org.id, include_descendants, domain_filter(spec), request)
    page = await ctx.loaders.pool_page.load(key)

    async def count() -> int:
        return await ctx.loaders.pool_count.load(key)

    return NumberConnection.from_page(page, count)


async def organization_allocations(info: Info, org: Organization) -> list[Allocation]:
    rows = await info.context.loaders.allocations.load(org.id)
    return [Allocation.from_row(row) for row in rows]


async def organization_counts(
    info: Info, org: Organization, include_descendants: bool
) -> list[StateCount]:
    return state_counts(await info.context.loaders.state_counts.load((org.id, include_descendants)))


@strawberry.type
class InventoryQueries:
    @strawberry.field(description="Ordered by e164 ascending; only numbers the viewer may see.")
    async def numbers(
        self,
        info: Info,
        filter: NumberFilterInput | None = None,
        first: int | None = 50,
        after: str | None = None,
    ) -> NumberConnection:
        ctx = info.context
        request = page_request(first, after, ctx.settings.max_page_size)
        problems = Problems()
        async with ctx.db.read() as session:
            where = await search.build(session, ctx.viewer, domain_filter(filter), problems)
            problems.raise_if_any()
            page = await search.page(session, where, request)

        async def count() -> int:
            async with ctx.db.read() as session:
                return await search.count(session, where)

        return NumberConnection.from_page(page, count)

    @strawberry.field(description="Counts per state for the same filter: the quick-filter tabs.")
    async def number_counts(
        self, info: Info, filter: NumberFilterInput | None = None
    ) -> list[StateCount]:
        ctx = info.context
        problems = Problems()
        async with ctx.db.read() as session:
            spec = domain_filter(filter)
            return state_counts(await search.counts_by_state(session, ctx.viewer, spec, problems))


@strawberry.type
class AllocationMutations:
    @strawberry.mutation
    async def allocate_numbers(self, info: Info, input: AllocateNumbersInput) -> NumbersPayload:
        request = allocation.Request(
            organization_id=input.organization_id,
            series_id=input.series_id,
            quantity=input.quantity,
            numbers=input.numbers,
            remark=input.remark,
        )
        return await run(info, lambda session, who: allocation.allocate(session, who, request))

    @strawberry.mutation
    async def withdraw_numbers(self, info: Info, input: WithdrawNumbersInput) -> NumbersPayload:
        request = allocation.Request(
            organization_id=input.organization_id,
            series_id=input.series_id,
            quantity=input.quantity,
            numbers=input.numbers,
            remark=input.remark,
        )
        return await run(info, lambda session, who: allocation.withdraw(session, who, request))
