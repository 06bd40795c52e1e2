"""Number search across the viewer's pools: a page of numbers, and counts per state."""

import strawberry

from domain import search
from domain.errors import Problems
from domain.pagination import page_request
from schema.context import Info
from schema.customer import QuickFilterCount
from schema.number_columns import page_projection
from schema.search import (
    NumberConnection,
    NumberFilterInput,
    StateCount,
    domain_filter,
    quick_filter_counts,
    state_counts,
)


@strawberry.type
class SearchQueries:
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
        spec = domain_filter(filter)
        projection = page_projection(info)
        async with ctx.db.read_connection() as connection:
            page = await search.page(connection, ctx.viewer, spec, request, projection.columns)

        async def count() -> int:
            async with ctx.db.read_statements() as session:
                problems = Problems()
                where = await search.build(session, ctx.viewer, spec, problems)
                problems.raise_if_any()
                return await search.count(session, where)

        return NumberConnection.from_page(page, count, projection)

    @strawberry.field(description="Counts per state for the same filter: the quick-filter tabs.")
    async def number_counts(
        self, info: Info, filter: NumberFilterInput | None = None
    ) -> list[StateCount]:
        ctx = info.context
        problems = Problems()
        async with ctx.db.read_statements() as session:
            spec = domain_filter(filter)
            return state_counts(await search.counts_by_state(session, ctx.viewer, spec, problems))

    @strawberry.field(
        description="Counts per quick filter for the same filter (its own quickFilter ignored)."
    )
    async def quick_filter_counts(
        self, info: Info, filter: NumberFilterInput | None = None
    ) -> list[QuickFilterCount]:
        ctx = info.context
        problems = Problems()
        async with ctx.db.read_statements() as session:
            spec = domain_filter(filter)
            counts = await search.counts_by_quick_filter(session, ctx.viewer, spec, problems)
        return quick_filter_counts(counts)
