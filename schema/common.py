"""Types every part of the API shares: Node, PageInfo, UserError, enums."""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, TypeVar, cast

import strawberry

from domain import errors
from domain.pagination import Page
from domain.times import parse_aware
from models import OrganizationKind as OrganizationKindModel
from models import Role as RoleModel

if TYPE_CHECKING:
    from collections.abc import Sequence

R = TypeVar("R")
E = TypeVar("E")


def _parse_datetime(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("DateTime must be an ISO-8601 string")
    return parse_aware(value)


# Times are ISO-8601 with an offset: a time without one is refused as bad input, never
# guessed at; and held in UTC from here on, so one out of range after its offset is too.
DATETIME = strawberry.scalar(
    name="DateTime",
    description="Date and time, ISO-8601 with an offset.",
    serialize=lambda value: value.isoformat(),
    parse_value=_parse_datetime,
)

# Every input that names an organization by ID takes its UUID too (as the CSV files do);
# an ID that is neither is VALIDATION naming the field.
BY_ID_OR_UUID = "Its ID or its UUID."
OWNER_UUID = (
    "The UUID of the organization that owns the number's subscription (its `uuid` field); "
    "an organization in the pool's subtree."
)

ErrorCode = strawberry.enum(errors.ErrorCode, name="ErrorCode")
Role = strawberry.enum(RoleModel, name="Role")
OrganizationKind = strawberry.enum(OrganizationKindModel, name="OrganizationKind")


@strawberry.interface
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None

    @classmethod
    def from_page(cls, page: Page[object], cursors: "Sequence[str]") -> "PageInfo":
        return cls(
            has_next_page=page.has_next,
            has_previous_page=page.has_previous,
            start_cursor=cursors[0] if cursors else None,
            end_cursor=cursors[-1] if cursors else None,
        )


@strawberry.type
class CountedConnection:
    """What every connection shares: totalCount, computed only when asked for."""

    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field
    async def total_count(self) -> int:
        return await self.count()


class _Edge(Protocol):
    cursor: str


def edges_and_page_info(page: Page[R], make_edge: Callable[[R], E]) -> tuple[list[E], PageInfo]:
    edges = [make_edge(row) for row in page.rows]
    cursors = [cast(_Edge, edge).cursor for edge in edges]
    return edges, PageInfo.from_page(page, cursors)  # type: ignore[arg-type]


@strawberry.type
class UserError:
    code: ErrorCode  # type: ignore[valid-type]
    message: str
    field: list[str] | None = strawberry.field(
        description='Path to the input field at fault, e.g. ["input", "numbers", "3"].'
    )
    number: str | None = strawberry.field(
        description="The number at fault, in E.164, where the error concerns one number."
    )


def user_errors(error: errors.DomainError) -> list[UserError]:
    return [
        UserError(
            code=p.code,
            message=p.message,
            field=list(p.field) if p.field else None,
            number=p.number,
        )
        for p in error.problems
    ]
