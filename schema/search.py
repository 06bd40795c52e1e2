"""NumberFilter, the number connection and per-state counts."""

from collections.abc import Awaitable, Callable
from datetime import datetime
from uuid import UUID

import strawberry

from domain import search
from domain.pagination import Page, encode_cursor
from models import NumberState as NumberStateModel
from models import QuickFilter as QuickFilterModel
from models.numbers import NumberRecord
from schema.common import BY_ID_OR_UUID, CountedConnection, PageInfo
from schema.customer import QuickFilter, QuickFilterCount, RegistrationStatus
from schema.numbers import (
    Capability,
    DeletionReason,
    NumberState,
    NumberType,
    Projection,
    ReservationReason,
)

PATTERN_HELP = """pattern: digits with an optional leading "+" and "*" wildcards, "*" standing
for any run of digits. Without "*": a leading "+" matches from the start
("+65" = numbers that begin +65), otherwise anywhere ("65" = numbers that
contain 65). With "*": the pattern is matched whole ("+65*" begins with +65,
"*1234" ends with 1234, "+65*00*" begins +65 and contains 00 later)."""


@strawberry.input(name="NumberFilter", description=PATTERN_HELP)
class NumberFilterInput:
    states: list[NumberState] | None = None  # type: ignore[valid-type]
    pattern: str | None = None
    numbers: list[str] | None = strawberry.field(
        default=None, description="Exact numbers (bulk input)."
    )
    capabilities: list[Capability] | None = strawberry.field(
        default=None, description="Numbers that have all of these."
    )
    sku: str | None = None
    vendor: str | None = None
    country: str | None = None
    routing: str | None = None
    golden: bool | None = None
    ported_in: bool | None = None
    visible_to_domain: str | None = None
    subscription_uuid: UUID | None = None
    owner_uuid: UUID | None = strawberry.field(
        default=None, description="Numbers whose subscription this organization owns: its UUID."
    )
    tag: str | None = None
    series_id: strawberry.ID | None = None
    organization_id: strawberry.ID | None = strawberry.field(
        default=None, description=f"The pool that holds the number. {BY_ID_OR_UUID}"
    )
    include_descendants: bool | None = strawberry.field(
        default=False, description="With organizationId: the whole subtree's pools."
    )
    expires_before: datetime | None = strawberry.field(
        default=None, description="Reservations or locks that lapse before this time."
    )
    notes: str | None = strawberry.field(
        default=None, description="Case-insensitive, anywhere in the notes."
    )
    reservation_reasons: list[ReservationReason] | None = None  # type: ignore[valid-type]
    reserved_for_id: strawberry.ID | None = strawberry.field(
        default=None,
        description=f"The organization a reservation holds the number for. {BY_ID_OR_UUID}",
    )
    deletion_reasons: list[DeletionReason] | None = None  # type: ignore[valid-type]
    operator_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="At most 100."
    )
    renews: bool | None = strawberry.field(
        default=None,
        description="True: services that renew; false: cancelled or with no cycles left.",
    )
    registration_statuses: list[RegistrationStatus] | None = None  # type: ignore[valid-type]
    quick_filter: QuickFilter | None = None  # type: ignore[valid-type]

    def to_domain(self) -> search.NumberFilter:
        return search.NumberFilter(
            states=tuple(self.states) if self.states else None,
            pattern=self.pattern,
            numbers=tuple(self.numbers) if self.numbers is not None else None,
            capabilities=tuple(c.flag for c in self.capabilities) if self.capabilities else None,
            sku=self.sku,
            vendor=self.vendor,
            country=self.country,
            routing=self.routing,
            golden=self.golden,
            ported_in=self.ported_in,
            visible_to_domain=self.visible_to_domain,
            subscription_uuid=self.subscription_uuid,
            owner_uuid=self.owner_uuid,
            tag=self.tag,
            series_id=self.series_id,
            organization_id=self.organization_id,
            include_descendants=bool(self.include_descendants),
            expires_before=self.expires_before,
            notes=self.notes,
            reservation_reasons=tuple(self.reservation_reasons)
            if self.reservation_reasons
            else None,
            reserved_for_id=self.reserved_for_id,
            deletion_reasons=tuple(self.deletion_reasons) if self.deletion_reasons else None,
            operator_ids=tuple(self.operator_ids) if self.operator_ids is not None else None,
            renews=self.renews,
            registration_statuses=tuple(self.registration_statuses)
            if self.registration_statuses
            else None,
            quick_filter=self.quick_filter,
        )


def domain_filter(spec: NumberFilterInput | None) -> search.NumberFilter:
    return spec.to_domain() if spec is not None else search.NumberFilter()


@strawberry.type
class NumberEdge:
    node: NumberType

    @strawberry.field
    def cursor(self) -> str:
        """Made only when asked for: most pages ask for the end cursor alone."""
        return encode_cursor(self.node.e164)


@strawberry.type
class NumberConnection(CountedConnection):
    edges: list[NumberEdge]
    page_info: PageInfo

    @classmethod
    def from_page(
        cls,
        page: Page[NumberRecord],
        count: Callable[[], Awaitable[int]],
        projection: Projection | None = None,
    ) -> "NumberConnection":
        """The connection of a page, its rows of `projection`'s columns or of all (None).
        Its edges and page info read the rows' e164 alone, a column every page has."""
        edges = [NumberEdge(node=NumberType.from_row(row, projection)) for row in page.rows]
        ends = (
            [encode_cursor(page.rows[0].e164), encode_cursor(page.rows[-1].e164)] if edges else []
        )
        page_info = PageInfo.from_page(page, ends)  # type: ignore[arg-type]
        return cls(edges=edges, page_info=page_info, count=count)


@strawberry.type
class StateCount:
    state: NumberState  # type: ignore[valid-type]
    count: int


def state_counts(counts: dict[NumberStateModel, int]) -> list[StateCount]:
    return [StateCount(state=state, count=counts.get(state, 0)) for state in NumberStateModel]


def quick_filter_counts(counts: dict[QuickFilterModel, int]) -> list[QuickFilterCount]:
    return [
        QuickFilterCount(quick_filter=tab, count=counts.get(tab, 0)) for tab in QuickFilterModel
    ]
