"""Queries and mutations on webhook endpoints and their deliveries."""

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from domain import webhooks
from domain.access import Caller
from domain.pagination import page_request
from domain.webhooks import WebhookRules
from models import WebhookEndpoint
from resolvers.mutation import run
from schema.context import Info
from schema.webhooks import (
    CreateWebhookEndpointInput,
    DeleteWebhookEndpointInput,
    PingWebhookEndpointInput,
    RedeliverWebhookInput,
    UpdateWebhookEndpointInput,
    WebhookDeliveryPayload,
    WebhookEndpointConnection,
    WebhookEndpointPayload,
)


@strawberry.type
class WebhookQueries:
    @strawberry.field(description="Webhook endpoints of the viewer's subtree, oldest first.")
    async def webhook_endpoints(
        self, info: Info, first: int | None = 50, after: str | None = None
    ) -> WebhookEndpointConnection:
        ctx = info.context
        request = page_request(first, after, ctx.settings.max_page_size)
        async with ctx.db.read_statements() as session:
            page = await webhooks.listed(session, ctx.viewer, request)

        async def count() -> int:
            async with ctx.db.read_statements() as session:
                return await webhooks.count(session, ctx.viewer)

        return WebhookEndpointConnection.from_page(page, count)


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(
        description="An ADMIN registers an https endpoint for an organization of its subtree."
    )
    async def create_webhook_endpoint(
        self, info: Info, input: CreateWebhookEndpointInput
    ) -> WebhookEndpointPayload:
        rules = WebhookRules.from_settings(info.context.settings)
        return await run(
            info,
            WebhookEndpointPayload,
            lambda session, who: webhooks.create(
                session,
                who.viewer,
                who.clock,
                rules,
                organization_id=input.organization_id,
                url=input.url,
                actions=input.actions,
            ),
        )

    @strawberry.mutation
    async def update_webhook_endpoint(
        self, info: Info, input: UpdateWebhookEndpointInput
    ) -> WebhookEndpointPayload:
        rules = WebhookRules.from_settings(info.context.settings)
        return await run(
            info,
            WebhookEndpointPayload,
            lambda session, who: webhooks.update(
                session,
                who.viewer,
                who.clock,
                rules,
                input.id,
                url=input.url,
                actions=input.actions,
                enabled=input.enabled,
                rotate_secret=bool(input.rotate_secret),
            ),
        )

    @strawberry.mutation
    async def delete_webhook_endpoint(
        self, info: Info, input: DeleteWebhookEndpointInput
    ) -> WebhookEndpointPayload:
        async def delete(session: AsyncSession, who: Caller) -> tuple[WebhookEndpoint, str | None]:
            return await webhooks.delete(session, who.viewer, input.id), None

        return await run(info, WebhookEndpointPayload, delete)

    @strawberry.mutation(description="Sends a PING event to the endpoint now.")
    async def ping_webhook_endpoint(
        self, info: Info, input: PingWebhookEndpointInput
    ) -> WebhookDeliveryPayload:
        return await run(
            info,
            WebhookDeliveryPayload,
            lambda session, who: webhooks.ping(session, who.viewer, who.clock, input.id),
        )

    @strawberry.mutation(description="Sends the delivery again now, with a fresh retry window.")
    async def redeliver_webhook(
        self, info: Info, input: RedeliverWebhookInput
    ) -> WebhookDeliveryPayload:
        return await run(
            info,
            WebhookDeliveryPayload,
            lambda session, who: webhooks.redeliver(
                session, who.viewer, who.clock, input.delivery_id
            ),
        )
