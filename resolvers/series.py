"""Queries and mutations on series."""

import strawberry

from domain import series, transactions
from domain.errors import DomainError
from domain.pagination import page_request
from resolvers.context import Context
from schema.common import user_errors
from schema.series import CreateSeriesInput, SeriesConnection, SeriesPayload, SeriesType

Info = strawberry.Info[Context, None]


@strawberry.type
class SeriesQueries:
    @strawberry.field
    async def series(
        self, info: Info, first: int | None = 100, after: str | None = None
    ) -> SeriesConnection:
        ctx = info.context
        ctx.viewer  # noqa: B018 (series are visible to every token, and only to tokens)
        request = page_request(first, after, ctx.settings.max_page_size)
        async with ctx.db.read() as session:
            page = await series.list_all(session, request)

        async def count() -> int:
            async with ctx.db.read() as session:
                return await series.count_all(session)

        return SeriesConnection.from_page(page, count)


@strawberry.type
class SeriesMutations:
    @strawberry.mutation
    async def create_series(self, info: Info, input: CreateSeriesInput) -> SeriesPayload:
        ctx = info.context
        try:
            async with transactions.write(ctx.db) as session:
                row = await series.create(
                    session,
                    ctx.viewer,
                    ctx.clock,
                    name=input.name,
                    prefix=input.prefix,
                    country=input.country,
                )
        except DomainError as error:
            return SeriesPayload(series=None, user_errors=user_errors(error))
        return SeriesPayload(series=SeriesType.from_row(row), user_errors=[])
