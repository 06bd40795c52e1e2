"""Allocation rows and the allocate and withdraw inputs."""

import strawberry

from domain.inventory import AllocationRow
from schema.common import BY_ID_OR_UUID
from schema.context import Info
from schema.organizations import OrganizationType
from schema.series import SeriesType


@strawberry.type
class Allocation:
    row: strawberry.Private[AllocationRow]
    allocated: int = strawberry.field(
        description="Numbers of this series in the organization's own pool, "
        "in any state but DELETED."
    )
    unused: int = strawberry.field(
        description="Of those, the ones that are AVAILABLE: the most that can be withdrawn."
    )

    @classmethod
    def from_row(cls, row: AllocationRow) -> "Allocation":
        return cls(row=row, allocated=row.allocated, unused=row.unused)

    @strawberry.field
    async def organization(self, info: Info) -> OrganizationType:
        org = await info.context.loaders.organization.load(self.row.organization_id)
        assert org is not None
        return OrganizationType.from_row(org)

    @strawberry.field
    def series(self) -> SeriesType:
        return SeriesType.from_row(self.row.series)


@strawberry.input
class AllocateNumbersInput:
    organization_id: strawberry.ID = strawberry.field(
        description=f"The sub-organization that receives the numbers. {BY_ID_OR_UUID}"
    )
    series_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Either seriesId with quantity (any AVAILABLE numbers of that series "
        "from the parent's pool) ...",
    )
    quantity: int | None = None
    numbers: list[str] | None = strawberry.field(
        default=None, description="... or these exact numbers, which must be in the parent's pool."
    )
    remark: str | None = None


@strawberry.input
class WithdrawNumbersInput:
    organization_id: strawberry.ID = strawberry.field(
        description=f"The sub-organization that gives numbers back to its parent. {BY_ID_OR_UUID}"
    )
    series_id: strawberry.ID | None = None
    quantity: int | None = None
    numbers: list[str] | None = None
    remark: str | None = None
