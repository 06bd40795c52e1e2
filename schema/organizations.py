"""Organization, its connection, inputs and payload."""

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import strawberry

from domain import ids, number_policy
from domain.number_policy import Periods
from domain.organizations import TYPE_NAME, OrganizationFacts, may_add_numbers
from domain.pagination import Page, encode_cursor, page_request
from models import Organization as OrganizationRow
from schema.common import (
    BY_ID_OR_UUID,
    CountedConnection,
    Node,
    OrganizationKind,
    PageInfo,
    UserError,
    edges_and_page_info,
)
from schema.context import Info
from schema.policy import NumberPolicy, NumberPolicyOverrides

if TYPE_CHECKING:
    from schema.allocation import Allocation
    from schema.search import NumberConnection, NumberFilterInput, StateCount


@strawberry.type(name="Organization")
class OrganizationType(Node):
    row: strawberry.Private[OrganizationFacts]
    uuid: UUID
    name: str
    kind: OrganizationKind  # type: ignore[valid-type]
    depth: int
    billing_email: str | None
    owner_email: str | None
    support_email: str | None
    may_add_numbers: bool = strawberry.field(
        description="Whether this organization's ADMINs may bring numbers into the inventory "
        "(add, import, port in). Always true for the provider."
    )

    @classmethod
    def from_row(cls, row: OrganizationFacts) -> "OrganizationType":
        return cls(
            row=row,
            id=strawberry.ID(ids.encode(TYPE_NAME, row.uuid)),
            uuid=row.uuid,
            name=row.name,
            kind=row.kind,
            depth=row.depth,
            billing_email=row.billing_email,
            owner_email=row.owner_email,
            support_email=row.support_email,
            may_add_numbers=may_add_numbers(row),
        )

    @strawberry.field
    async def parent(self, info: Info) -> "OrganizationType | None":
        ctx = info.context
        if self.row.parent_id is None or self.row.id == ctx.viewer.org_id:
            return None  # the viewer's own organization has no visible parent
        parent = await ctx.loaders.organization.load(self.row.parent_id)
        return OrganizationType.from_row(parent) if parent is not None else None

    @strawberry.field
    async def children(self, info: Info) -> list["OrganizationType"]:
        rows = await info.context.loaders.children.load(self.row.id)
        return [OrganizationType.from_row(row) for row in rows]

    @strawberry.field(description="Root first, ending with the parent.")
    async def ancestors(self, info: Info) -> list["OrganizationType"]:
        ctx = info.context
        # Only ancestors inside the viewer's subtree exist for the viewer.
        visible = self.row.ancestor_ids[ctx.viewer.depth :]
        rows = await ctx.loaders.organization.load_many(visible)
        return [OrganizationType.from_row(row) for row in rows if row is not None]

    @strawberry.field
    async def policy(self, info: Info) -> NumberPolicy:
        ctx = info.context
        lineage = number_policy.lineage(self.row.path)
        own = await ctx.loaders.policy_overrides.load_many(lineage)
        chain = dict(zip(lineage, own, strict=True))
        return NumberPolicy.of(
            number_policy.resolve(self.row.path, chain, Periods.defaults(ctx.policy))
        )

    @strawberry.field
    async def policy_overrides(self, info: Info) -> NumberPolicyOverrides:
        return NumberPolicyOverrides.of(
            await info.context.loaders.policy_overrides.load(self.row.id)
        )

    # The number views below return types whose modules import this one: they are
    # named lazily, and imported where they are built.
    @strawberry.field(
        description="Numbers held in this organization's own pool, or in its whole subtree."
    )
    async def numbers(
        self,
        info: Info,
        filter: Annotated["NumberFilterInput", strawberry.lazy("schema.search")] | None = None,
        first: int | None = 50,
        after: str | None = None,
        include_descendants: bool | None = False,
    ) -> Annotated["NumberConnection", strawberry.lazy("schema.search")]:
        from schema.number_columns import page_projection
        from schema.search import NumberConnection, domain_filter

        ctx = info.context
        request = page_request(first, after, ctx.settings.max_page_size)
        key = (self.row.id, bool(include_descendants), domain_filter(filter), request)
        projection = page_projection(info)
        page = await ctx.loaders.pool_page.load((*key, projection.columns))

        async def count() -> int:
            return await ctx.loaders.pool_count.load(key)

        return NumberConnection.from_page(page, count, projection)

    @strawberry.field(
        description="One row per series this organization holds numbers of, in its own pool."
    )
    async def allocations(
        self, info: Info
    ) -> list[Annotated["Allocation", strawberry.lazy("schema.allocation")]]:
        from schema.allocation import Allocation

        rows = await info.context.loaders.allocations.load(self.row.id)
        return [Allocation.from_row(row) for row in rows]

    @strawberry.field
    async def number_counts(
        self, info: Info, include_descendants: bool | None = False
    ) -> list[Annotated["StateCount", strawberry.lazy("schema.search")]]:
        from schema.search import state_counts

        key = (self.row.id, bool(include_descendants))
        return state_counts(await info.context.loaders.state_counts.load(key))


@strawberry.type
class OrganizationEdge:
    node: OrganizationType
    cursor: str


@strawberry.type
class OrganizationConnection(CountedConnection):
    edges: list[OrganizationEdge]
    page_info: PageInfo

    @classmethod
    def from_page(
        cls, page: Page[OrganizationRow], count: Callable[[], Awaitable[int]]
    ) -> "OrganizationConnection":
        edges, page_info = edges_and_page_info(
            page,
            lambda row: OrganizationEdge(
                node=OrganizationType.from_row(row), cursor=encode_cursor(row.path)
            ),
        )
        return cls(edges=edges, page_info=page_info, count=count)


@strawberry.input
class CreateOrganizationInput:
    name: str
    kind: OrganizationKind  # type: ignore[valid-type]
    parent_id: strawberry.ID | None = strawberry.field(
        default=None, description=f"Defaults to the viewer's organization. {BY_ID_OR_UUID}"
    )
    billing_email: str | None = None
    owner_email: str | None = None
    support_email: str | None = None


@strawberry.input
class UpdateOrganizationInput:
    id: strawberry.ID = strawberry.field(description=BY_ID_OR_UUID)
    name: str | None = None
    billing_email: str | None = None
    owner_email: str | None = None
    support_email: str | None = None
    may_add_numbers: bool | None = strawberry.field(
        default=None,
        description="Only an ADMIN of an ancestor may set it. To allow an organization, the "
        "one above it must be allowed (a reseller allowed may allow its descendants); taken "
        "from an organization, it is taken from its whole subtree.",
    )


@strawberry.type
class OrganizationPayload:
    organization: OrganizationType | None
    user_errors: list[UserError]

    @classmethod
    def of(cls, row: OrganizationRow) -> "OrganizationPayload":
        return cls(organization=OrganizationType.from_row(row), user_errors=[])

    @classmethod
    def refused(cls, errors: list[UserError]) -> "OrganizationPayload":
        return cls(organization=None, user_errors=errors)
