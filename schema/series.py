"""Series, its connection, input and payload."""

from collections.abc import Awaitable, Callable

import strawberry

from domain import ids
from domain.pagination import Page, encode_cursor
from domain.series import TYPE_NAME, SeriesFacts
from models import Series as SeriesRow
from schema.common import CountedConnection, Node, PageInfo, UserError, edges_and_page_info


@strawberry.type(name="Series")
class SeriesType(Node):
    name: str
    prefix: str = strawberry.field(description='E.164 prefix, e.g. "+6531".')
    country: str = strawberry.field(description="ISO 3166-1 alpha-2.")

    @classmethod
    def from_row(cls, row: SeriesFacts) -> "SeriesType":
        return cls(
            id=strawberry.ID(ids.encode(TYPE_NAME, row.uuid)),
            name=row.name,
            prefix=row.prefix,
            country=row.country,
        )


@strawberry.type
class SeriesEdge:
    node: SeriesType
    cursor: str


@strawberry.type
class SeriesConnection(CountedConnection):
    edges: list[SeriesEdge]
    page_info: PageInfo

    @classmethod
    def from_page(
        cls, page: Page[SeriesRow], count: Callable[[], Awaitable[int]]
    ) -> "SeriesConnection":
        edges, page_info = edges_and_page_info(
            page,
            lambda row: SeriesEdge(node=SeriesType.from_row(row), cursor=encode_cursor(row.prefix)),
        )
        return cls(edges=edges, page_info=page_info, count=count)


@strawberry.input
class CreateSeriesInput:
    name: str
    prefix: str
    country: str


@strawberry.type
class SeriesPayload:
    series: SeriesType | None
    user_errors: list[UserError]

    @classmethod
    def of(cls, row: SeriesRow) -> "SeriesPayload":
        return cls(series=SeriesType.from_row(row), user_errors=[])

    @classmethod
    def refused(cls, errors: list[UserError]) -> "SeriesPayload":
        return cls(series=None, user_errors=errors)


@strawberry.input
class SeriesFilter:
    search: str | None = strawberry.field(
        default=None, description="Case-insensitive, in the name or the prefix."
    )
    country: str | None = None
