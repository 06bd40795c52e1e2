"""Events across numbers, the tags in use, and events as they are committed (live)."""

from collections.abc import AsyncGenerator, Sequence

import strawberry
from strawberry.types.nodes import SelectedField, Selection

from domain import events, live, tags
from domain.errors import DomainError, ErrorCode
from domain.pagination import page_request
from schema.context import Info
from schema.events import NumberEventFilterInput, TagCount, domain_filter, event_connection
from schema.numbers import NumberEvent, NumberEventConnection


def _asks(selections: Sequence[Selection], name: str) -> bool:
    """Whether a field of this name is asked anywhere below, through any fragment."""
    return any(
        (isinstance(selection, SelectedField) and selection.name == name)
        or _asks(selection.selections, name)
        for selection in selections
    )


@strawberry.type
class EventQueries:
    @strawberry.field(
        description="Events across numbers, newest first, only from pools the viewer may see."
    )
    async def number_events(
        self,
        info: Info,
        filter: NumberEventFilterInput | None = None,
        first: int | None = 50,
        after: str | None = None,
    ) -> NumberEventConnection:
        ctx = info.context
        request = page_request(first, after, ctx.settings.max_page_size, int)
        async with ctx.db.read_statements() as session:
            chosen = await events.scope(session, ctx.viewer, domain_filter(filter))
            page = await events.page(session, chosen, request)
        if _asks(info.selected_fields, "organization"):
            # Each node's pool at hand before the nodes are resolved: awaited node by node
            # they cost a page a quarter of its time (tests/perf/events.py).
            await ctx.loaders.organization.load_many({row.organization_id for row, _ in page.rows})

        async def count() -> int:
            async with ctx.db.read_statements() as session:
                return await events.count(session, chosen)

        return event_connection(page, count)

    @strawberry.field(
        description="Tags in use on numbers and reservations the viewer can see, most used first."
    )
    async def tags(
        self, info: Info, prefix: str | None = None, first: int | None = 100
    ) -> list[TagCount]:
        ctx = info.context
        limit = ctx.settings.max_page_size if first is None else first
        async with ctx.db.read_statements() as session:
            found = await tags.counts(
                session, ctx.viewer, prefix, limit, ctx.settings.max_page_size
            )
        return [TagCount(tag=row.tag, count=row.count) for row in found]


@strawberry.type
class EventSubscriptions:
    @strawberry.subscription(
        description="Each event as it is committed, only from pools the viewer may see."
    )
    async def number_events(
        self, info: Info, filter: NumberEventFilterInput | None = None
    ) -> AsyncGenerator[NumberEvent, None]:
        ctx = info.context
        if ctx.hub is None:
            raise DomainError.one(ErrorCode.VALIDATION, "subscriptions run over a websocket")
        viewer = ctx.viewer
        async with ctx.db.read_statements() as session:
            chosen = await events.scope(session, viewer, domain_filter(filter))
        async with ctx.hub.subscribe(viewer.token_id, chosen) as subscriber:
            while True:
                try:
                    event = await subscriber.next()
                except live.Overflow:
                    raise DomainError.one(
                        ErrorCode.LIMIT_EXCEEDED, "too far behind: subscribe again"
                    ) from None
                # An organization renamed since the last event is shown as it is now.
                ctx.loaders.organization.clear_all()
                yield NumberEvent.from_row(event, event.e164)
