"""NumberEventFilter and TagCount: events across numbers, and the tags in use."""

from collections.abc import Awaitable, Callable
from datetime import datetime

import strawberry

from domain import events
from domain.pagination import Page, encode_cursor
from models import NumberEvent as NumberEventRow
from schema.common import BY_ID_OR_UUID, PageInfo
from schema.numbers import NumberEvent, NumberEventConnection, NumberEventEdge


@strawberry.input(name="NumberEventFilter")
class NumberEventFilterInput:
    actions: list[str] | None = None
    actor: str | None = strawberry.field(default=None, description='A token\'s name, or "system".')
    number: str | None = strawberry.field(default=None, description="One number, in any notation.")
    from_: datetime | None = strawberry.field(
        default=None, name="from", description="Events at or after this time."
    )
    to: datetime | None = strawberry.field(default=None, description="Events before this time.")
    organization_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The pool that held the number; defaults to the viewer's organization. "
        + BY_ID_OR_UUID,
    )
    include_descendants: bool | None = True

    def to_domain(self) -> events.EventFilter:
        return events.EventFilter(
            actions=tuple(self.actions) if self.actions is not None else None,
            actor=self.actor,
            number=self.number,
            since=self.from_,
            until=self.to,
            organization_id=self.organization_id,
            include_descendants=self.include_descendants is not False,
        )


def domain_filter(spec: NumberEventFilterInput | None) -> events.EventFilter:
    return spec.to_domain() if spec is not None else events.EventFilter()


def event_connection(
    page: Page[tuple[NumberEventRow, str]], count: Callable[[], Awaitable[int]]
) -> NumberEventConnection:
    edges = [
        NumberEventEdge(node=NumberEvent.from_row(row, e164), cursor=encode_cursor(row.id))
        for row, e164 in page.rows
    ]
    page_info = PageInfo.from_page(page, [edge.cursor for edge in edges])  # type: ignore[arg-type]
    return NumberEventConnection(edges=edges, page_info=page_info, count=count)


@strawberry.type
class TagCount:
    tag: str
    count: int
