"""PortOrder, its connection, filter, inputs and payload (domain/porting.py)."""

from collections.abc import Awaitable, Callable
from datetime import datetime

import strawberry

from domain import ids, porting
from domain.pagination import Page, encode_cursor, page_request
from models import PortDirection as PortDirectionModel
from models import PortOrder as PortOrderRow
from models import PortOrderStatus as PortOrderStatusModel
from schema.common import (
    BY_ID_OR_UUID,
    CountedConnection,
    Node,
    PageInfo,
    UserError,
    edges_and_page_info,
)
from schema.context import Info
from schema.numbers import Capability
from schema.organizations import OrganizationType
from schema.search import NumberConnection

PortDirection = strawberry.enum(PortDirectionModel, name="PortDirection")
PortOrderStatus = strawberry.enum(PortOrderStatusModel, name="PortOrderStatus")


@strawberry.type(name="PortOrder")
class PortOrderType(Node):
    row: strawberry.Private[PortOrderRow]
    direction: PortDirection  # type: ignore[valid-type]
    status: PortOrderStatus  # type: ignore[valid-type]
    carrier: str = strawberry.field(
        description="The other carrier: the losing carrier of a port-in, the gaining one of "
        "a port-out."
    )
    reference: str | None
    foc_date: datetime | None = strawberry.field(
        description="Firm order commitment: when the numbers move."
    )
    created_at: datetime
    updated_at: datetime
    remark: str | None

    @classmethod
    def from_row(cls, row: PortOrderRow) -> "PortOrderType":
        return cls(
            row=row,
            id=strawberry.ID(ids.encode(porting.TYPE_NAME, row.uuid)),
            direction=row.direction,
            status=row.status,
            carrier=row.carrier,
            reference=row.reference,
            foc_date=row.foc_date,
            created_at=row.created_at,
            updated_at=row.updated_at,
            remark=row.remark,
        )

    @strawberry.field
    async def organization(self, info: Info) -> OrganizationType:
        org = await info.context.loaders.organization.load(self.row.organization_id)
        assert org is not None
        return OrganizationType.from_row(org)

    @strawberry.field
    async def numbers(
        self, info: Info, first: int | None = 50, after: str | None = None
    ) -> NumberConnection:
        ctx = info.context
        request = page_request(first, after, ctx.settings.max_page_size)
        order_id = self.row.id
        async with ctx.db.read_statements() as session:
            page = await porting.numbers_page(session, order_id, request)

        async def count() -> int:
            async with ctx.db.read_statements() as session:
                return await porting.number_count(session, order_id)

        return NumberConnection.from_page(page, count)


@strawberry.type
class PortOrderEdge:
    node: PortOrderType
    cursor: str


@strawberry.type
class PortOrderConnection(CountedConnection):
    edges: list[PortOrderEdge]
    page_info: PageInfo

    @classmethod
    def from_page(
        cls, page: Page[PortOrderRow], count: Callable[[], Awaitable[int]]
    ) -> "PortOrderConnection":
        edges, page_info = edges_and_page_info(
            page,
            lambda row: PortOrderEdge(
                node=PortOrderType.from_row(row), cursor=encode_cursor(str(row.id))
            ),
        )
        return cls(edges=edges, page_info=page_info, count=count)


@strawberry.input
class PortOrderFilter:
    direction: PortDirection | None = None  # type: ignore[valid-type]
    statuses: list[PortOrderStatus] | None = None  # type: ignore[valid-type]
    organization_id: strawberry.ID | None = strawberry.field(
        default=None, description=BY_ID_OR_UUID
    )
    include_descendants: bool | None = True

    def to_domain(self) -> porting.PortOrderFilter:
        return porting.PortOrderFilter(
            direction=self.direction,
            statuses=self.statuses,
            organization_id=self.organization_id,
            include_descendants=self.include_descendants is not False,
        )


@strawberry.input
class CreatePortInInput:
    organization_id: strawberry.ID | None = strawberry.field(
        default=None,
        description=f"The pool the numbers join; defaults to the viewer's organization. "
        f"{BY_ID_OR_UUID}",
    )
    numbers: list[str] = strawberry.field(
        description="1 to 1,000 numbers not in the inventory (or DELETED)."
    )
    carrier: str
    vendor: str
    country: str
    sku: str
    capabilities: list[Capability] | None = strawberry.field(
        default_factory=lambda: [Capability.VOICE]
    )
    reference: str | None = None
    remark: str | None = None


@strawberry.input
class CreatePortOutInput:
    numbers: list[str] = strawberry.field(
        description="AVAILABLE, RESERVED, ASSIGNED or BLOCKED numbers, all in one "
        "organization's pool."
    )
    carrier: str
    reference: str | None = None
    remark: str | None = None


@strawberry.input
class PortOrderActionInput:
    id: strawberry.ID
    remark: str | None = None


@strawberry.input
class ConfirmPortOrderInput:
    id: strawberry.ID
    foc_date: datetime
    remark: str | None = None


@strawberry.type
class PortOrderPayload:
    port_order: PortOrderType | None
    user_errors: list[UserError]

    @classmethod
    def of(cls, row: PortOrderRow) -> "PortOrderPayload":
        return cls(port_order=PortOrderType.from_row(row), user_errors=[])

    @classmethod
    def refused(cls, errors: list[UserError]) -> "PortOrderPayload":
        return cls(port_order=None, user_errors=errors)
