"""Queries and mutations on the organization tree."""

import strawberry

from domain import organizations
from domain.errors import DomainError, ErrorCode
from domain.organizations import OrganizationFields
from domain.pagination import page_request
from resolvers.mutation import run
from schema.context import Info
from schema.organizations import (
    CreateOrganizationInput,
    OrganizationConnection,
    OrganizationPayload,
    OrganizationType,
    UpdateOrganizationInput,
)


@strawberry.type
class OrganizationQueries:
    @strawberry.field
    async def organization(self, info: Info, id: strawberry.ID) -> OrganizationType | None:
        ctx = info.context
        if organizations.key_of(id) is None:
            raise DomainError.one(ErrorCode.VALIDATION, organizations.not_a_reference(id), ["id"])
        async with ctx.db.read() as session:
            org = await organizations.find_visible(session, ctx.viewer, id)
        return OrganizationType.from_row(org) if org is not None else None

    @strawberry.field(
        description="The viewer's own organization first, then its subtree, depth first."
    )
    async def organizations(
        self, info: Info, first: int | None = 100, after: str | None = None
    ) -> OrganizationConnection:
        ctx = info.context
        request = page_request(first, after, ctx.settings.max_page_size)
        async with ctx.db.read() as session:
            page = await organizations.list_subtree(session, ctx.viewer, request)

        async def count() -> int:
            async with ctx.db.read() as session:
                return await organizations.count_subtree(session, ctx.viewer)

        return OrganizationConnection.from_page(page, count)


def _fields(input: CreateOrganizationInput | UpdateOrganizationInput) -> OrganizationFields:
    return OrganizationFields(
        name=input.name,
        billing_email=input.billing_email,
        owner_email=input.owner_email,
        support_email=input.support_email,
    )


@strawberry.type
class OrganizationMutations:
    @strawberry.mutation
    async def create_organization(
        self, info: Info, input: CreateOrganizationInput
    ) -> OrganizationPayload:
        fields = _fields(input)
        return await run(
            info,
            OrganizationPayload,
            lambda session, who: organizations.create(
                session,
                who.viewer,
                who.clock,
                kind=input.kind,
                parent_id=input.parent_id,
                fields=fields,
                max_depth=who.policy.max_tree_depth,
            ),
        )

    @strawberry.mutation
    async def update_organization(
        self, info: Info, input: UpdateOrganizationInput
    ) -> OrganizationPayload:
        fields = _fields(input)
        return await run(
            info,
            OrganizationPayload,
            lambda session, who: organizations.update(
                session, who.viewer, input.id, fields, input.may_add_numbers
            ),
        )
