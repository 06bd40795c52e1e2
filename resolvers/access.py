"""The viewer, tokens, and `node` (which has to know every refetchable type)."""

import strawberry

from domain import ids, numbers, operators, organizations, series, tokens, webhooks
from resolvers.mutation import run
from schema.access import CreateTokenInput, TokenPayload, Viewer
from schema.common import Node
from schema.context import Info
from schema.numbers import TYPE_NAME as NUMBER_TYPE
from schema.numbers import NumberType
from schema.operators import OperatorType
from schema.organizations import OrganizationType
from schema.series import SeriesType
from schema.tokens import TokenType
from schema.webhooks import WebhookDeliveryType, WebhookEndpointType


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
            if type_name == tokens.TYPE_NAME:
                token = await tokens.find_visible(session, ctx.viewer, id)
                return TokenType.from_row(token) if token is not None else None
            if type_name == operators.TYPE_NAME:
                operator_key = ids.decode_uuid(id, operators.TYPE_NAME)
                found = (
                    await operators.find(session, ctx.viewer, operator_key)
                    if operator_key
                    else None
                )
                return OperatorType.from_row(found) if found is not None else None
            if type_name == webhooks.TYPE_NAME:
                endpoint = await webhooks.find_visible(session, ctx.viewer, id)
                return WebhookEndpointType.from_row(endpoint) if endpoint is not None else None
            if type_name == webhooks.DELIVERY_TYPE:
                delivery = await webhooks.find_delivery(session, ctx.viewer, id)
                return WebhookDeliveryType.from_row(delivery) if delivery is not None else None
        return None


@strawberry.type
class AccessMutations:
    @strawberry.mutation
    async def create_token(self, info: Info, input: CreateTokenInput) -> TokenPayload:
        return await run(
            info,
            TokenPayload,
            lambda session, who: tokens.create(
                session,
                who.viewer,
                who.clock,
                org_id=input.organization_id,
                name=input.name,
                role=input.role,
                expires_at=input.expires_at,
            ),
        )
