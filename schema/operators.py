"""Operator (a carrier numbers come from), its connection, filter, inputs and payload."""

from collections.abc import Awaitable, Callable

import strawberry

from domain import ids, operators
from domain.pagination import Page, encode_cursor
from models import NumberState
from models.operators import Operator as OperatorRow
from schema.common import (
    BY_ID_OR_UUID,
    CountedConnection,
    Node,
    PageInfo,
    UserError,
    edges_and_page_info,
)
from schema.context import Info
from schema.organizations import OrganizationType
from schema.search import StateCount, state_counts


@strawberry.type(name="Operator")
class OperatorType(Node):
    row: strawberry.Private[OperatorRow]
    name: str

    @classmethod
    def from_row(cls, row: OperatorRow) -> "OperatorType":
        return cls(
            row=row, id=strawberry.ID(ids.encode(operators.TYPE_NAME, row.uuid)), name=row.name
        )

    @strawberry.field(
        description="The reseller that buys numbers from this operator; null for the "
        "provider's own (and for one kept above the viewer's organization)."
    )
    async def reseller(self, info: Info) -> OrganizationType | None:
        org = await info.context.loaders.organization.load(self.row.organization_id)
        if org is None or org.parent_id is None or not info.context.viewer.sees(org):
            return None
        return OrganizationType.from_row(org)

    @strawberry.field(
        description="Numbers of this operator the viewer can see, in any state but DELETED."
    )
    async def number_count(self, info: Info) -> int:
        counts = await info.context.loaders.operator_counts.load(self.row.id)
        return sum(n for state, n in counts.items() if state is not NumberState.DELETED)

    @strawberry.field
    async def number_counts(self, info: Info) -> list[StateCount]:
        return state_counts(await info.context.loaders.operator_counts.load(self.row.id))


@strawberry.type
class OperatorEdge:
    node: OperatorType
    cursor: str


@strawberry.type
class OperatorConnection(CountedConnection):
    edges: list[OperatorEdge]
    page_info: PageInfo

    @classmethod
    def from_page(
        cls, page: Page[OperatorRow], count: Callable[[], Awaitable[int]]
    ) -> "OperatorConnection":
        edges, page_info = edges_and_page_info(
            page,
            lambda row: OperatorEdge(
                node=OperatorType.from_row(row), cursor=encode_cursor(row.name_key, str(row.id))
            ),
        )
        return cls(edges=edges, page_info=page_info, count=count)


@strawberry.input
class OperatorFilter:
    name: str | None = strawberry.field(
        default=None, description="Case-insensitive, anywhere in the name."
    )
    reseller_id: strawberry.ID | None = strawberry.field(default=None, description=BY_ID_OR_UUID)

    def to_domain(self) -> operators.OperatorFilter:
        return operators.OperatorFilter(name=self.name, reseller_id=self.reseller_id)


@strawberry.input
class CreateOperatorInput:
    name: str
    reseller_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Defaults to none (the provider's own) for the provider's tokens, "
        f"else the viewer's organization. {BY_ID_OR_UUID}",
    )


@strawberry.input
class UpdateOperatorInput:
    id: strawberry.ID
    name: str | None = None


@strawberry.input
class DeleteOperatorInput:
    id: strawberry.ID


@strawberry.type
class OperatorPayload:
    operator: OperatorType | None
    user_errors: list[UserError]

    @classmethod
    def of(cls, row: OperatorRow) -> "OperatorPayload":
        return cls(operator=OperatorType.from_row(row), user_errors=[])

    @classmethod
    def refused(cls, errors: list[UserError]) -> "OperatorPayload":
        return cls(operator=None, user_errors=errors)
