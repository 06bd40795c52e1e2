"""The viewer, tokens, and `node` (which has to know every refetchable type)."""

import strawberry

from domain import ids, numbers, organizations, series, tokens, transactions
from domain.errors import DomainError
from resolvers.context import Context
from schema.access import CreateTokenInput, TokenPayload, Viewer
from schema.common import Node, user_errors
from schema.numbers import TYPE_NAME as NUMBER_TYPE
from schema.numbers import NumberType
from schema.organizations import OrganizationType
from schema.series import SeriesType

Info = strawberry.Info[Context, None]


@strawberry.type
class AccessQueries:
    @strawberry.field
    async def viewer(self, info: Info) -> Viewer:
        ctx = info.context
        org = await ctx.loaders.organization.load(ctx.viewer.org_id)
        assert org is not None
        return Viewer(
            organization=OrganizationType.from_row(org),
            role=ctx.viewer.role,
            token_name=ctx.viewer.token_name,
        )

    @strawberry.field
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        ctx = info.context
        decoded = ids.decode(id)
        if decoded is None:
            return None
        type_name, key = decoded
        async with ctx.db.read() as session:
            if type_name == organizations.TYPE_NAME:
                org = await organizations.find_visible(session, ctx.viewer, id)
                return OrganizationType.from_row(org) if org is not None else None
            if type_name == NUMBER_TYPE:
                number = await numbers.find(session, ctx.viewer, key)
                return NumberType.from_row(number) if number is not None else None
            if type_name == series.TYPE_NAME:
                series_key = ids.decode_uuid(id, series.TYPE_NAME)
                row = await series.find(session, series_key) if series_key else None
                return SeriesType.from_row(row) if row is not None else None
        return None


@strawberry.type
class AccessMutations:
    @strawberry.mutation
    async def create_token(self, info: Info, input: CreateTokenInput) -> TokenPayload:
        ctx = info.context
        try:
            async with transactions.write(ctx.db) as session:
                token = await tokens.create(
                    session,
                    ctx.viewer,
                    ctx.clock,
                    org_id=input.organization_id,
                    name=input.name,
                    role=input.role,
                )
        except DomainError as error:
            return TokenPayload(token=None, user_errors=user_errors(error))
        return TokenPayload(token=token, user_errors=[])
