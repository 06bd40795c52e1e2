"""Queries and mutations on series."""

import strawberry

from domain import series
from domain.pagination import page_request
from resolvers.mutation import run
from schema.context import Info
from schema.series import CreateSeriesInput, SeriesConnection, SeriesFilter, SeriesPayload


@strawberry.type
class SeriesQueries:
    @strawberry.field(description="Version 2 adds filter.")
    async def series(
        self,
        info: Info,
        first: int | None = 100,
        after: str | None = None,
        filter: SeriesFilter | None = None,
    ) -> SeriesConnection:
        ctx = info.context
        ctx.viewer  # noqa: B018 (series are visible to every token, and only to tokens)
        request = page_request(first, after, ctx.settings.max_page_size)
        where = series.matching(filter.search, filter.country) if filter is not None else []
        async with ctx.db.read() as session:
            page = await series.list_all(session, request, where)

        async def count() -> int:
            async with ctx.db.read() as session:
                return await series.count_all(session, where)

        return SeriesConnection.from_page(page, count)


@strawberry.type
class SeriesMutations:
    @strawberry.mutation
    async def create_series(self, info: Info, input: CreateSeriesInput) -> SeriesPayload:
        return await run(
            info,
            SeriesPayload,
            lambda session, who: series.create(
                session,
                who.viewer,
                who.clock,
                name=input.name,
                prefix=input.prefix,
                country=input.country,
            ),
        )
