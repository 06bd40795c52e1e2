"""WebhookEndpoint, WebhookDelivery, their connections, inputs and payloads."""

from collections.abc import Awaitable, Callable
from datetime import datetime

import strawberry

from domain import ids, webhooks
from domain.pagination import Page, encode_cursor, page_request
from domain.webhooks import DeliveryPageKey
from models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
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

WebhookDeliveryStatus = strawberry.enum(DeliveryStatus, name="WebhookDeliveryStatus")


@strawberry.type(name="WebhookEndpoint")
class WebhookEndpointType(Node):
    row: strawberry.Private[WebhookEndpoint]
    url: str
    actions: list[str] = strawberry.field(
        description="NumberEvent actions sent (e.g. RESERVED, ASSIGNED); empty = all."
    )
    enabled: bool
    disabled_reason: str | None = strawberry.field(
        description="Why it was disabled, when Numbra disabled it after failing deliveries."
    )
    created_at: datetime

    @classmethod
    def from_row(cls, row: WebhookEndpoint) -> "WebhookEndpointType":
        return cls(
            row=row,
            id=strawberry.ID(ids.encode(webhooks.TYPE_NAME, row.uuid)),
            url=row.url,
            actions=webhooks.actions_of(row.actions),
            enabled=row.enabled,
            disabled_reason=row.disabled_reason,
            created_at=row.created_at,
        )

    @strawberry.field(description="Events of numbers in this organization's subtree are sent.")
    async def organization(self, info: Info) -> OrganizationType:
        org = await info.context.loaders.organization.load(self.row.organization_id)
        assert org is not None
        return OrganizationType.from_row(org)

    @strawberry.field(description="The delivery log, newest first.")
    async def deliveries(
        self,
        info: Info,
        first: int | None = 50,
        after: str | None = None,
        status: WebhookDeliveryStatus | None = None,  # type: ignore[valid-type]
    ) -> "WebhookDeliveryConnection":
        ctx = info.context
        request = page_request(first, after, ctx.settings.max_page_size, key_type=int)
        start = int(request.after[0]) if request.after is not None else None
        key = DeliveryPageKey(status, request.first, start)
        page = await ctx.loaders.delivery_page.load((self.row.id, key))
        endpoint_id = self.row.id

        async def count() -> int:
            return await ctx.loaders.delivery_count.load((endpoint_id, status))

        return WebhookDeliveryConnection.from_page(page, count)


@strawberry.type(name="WebhookDelivery")
class WebhookDeliveryType(Node):
    row: strawberry.Private[WebhookDelivery]
    event_id: strawberry.ID = strawberry.field(
        description="The event's id, also sent as the payload's id: receivers deduplicate on it."
    )
    action: str
    status: WebhookDeliveryStatus  # type: ignore[valid-type]
    attempts: int
    last_attempt_at: datetime | None
    last_response_status: int | None = strawberry.field(
        description="HTTP status of the last attempt; null when it got no answer."
    )
    last_error: str | None
    next_attempt_at: datetime | None

    @classmethod
    def from_row(cls, row: WebhookDelivery) -> "WebhookDeliveryType":
        message_id = (
            webhooks.event_message_id(row.event_id)
            if row.event_id is not None
            else webhooks.ping_message_id(row.uuid)
        )
        return cls(
            row=row,
            id=strawberry.ID(ids.encode(webhooks.DELIVERY_TYPE, row.uuid)),
            event_id=strawberry.ID(message_id),
            action=row.action,
            status=row.status,
            attempts=row.attempts,
            last_attempt_at=row.last_attempt_at,
            last_response_status=row.last_response_status,
            last_error=row.last_error,
            next_attempt_at=row.next_attempt_at,
        )

    @strawberry.field
    async def endpoint(self, info: Info) -> WebhookEndpointType:
        endpoint = await info.context.loaders.webhook_endpoint.load(self.row.endpoint_id)
        assert endpoint is not None
        return WebhookEndpointType.from_row(endpoint)


@strawberry.type
class WebhookDeliveryEdge:
    node: WebhookDeliveryType
    cursor: str


@strawberry.type
class WebhookDeliveryConnection(CountedConnection):
    edges: list[WebhookDeliveryEdge]
    page_info: PageInfo

    @classmethod
    def from_page(
        cls, page: Page[WebhookDelivery], count: Callable[[], Awaitable[int]]
    ) -> "WebhookDeliveryConnection":
        edges, page_info = edges_and_page_info(
            page,
            lambda row: WebhookDeliveryEdge(
                node=WebhookDeliveryType.from_row(row), cursor=encode_cursor(row.id)
            ),
        )
        return cls(edges=edges, page_info=page_info, count=count)


@strawberry.type
class WebhookEndpointEdge:
    node: WebhookEndpointType
    cursor: str


@strawberry.type
class WebhookEndpointConnection(CountedConnection):
    edges: list[WebhookEndpointEdge]
    page_info: PageInfo

    @classmethod
    def from_page(
        cls, page: Page[WebhookEndpoint], count: Callable[[], Awaitable[int]]
    ) -> "WebhookEndpointConnection":
        edges, page_info = edges_and_page_info(
            page,
            lambda row: WebhookEndpointEdge(
                node=WebhookEndpointType.from_row(row), cursor=encode_cursor(str(row.id))
            ),
        )
        return cls(edges=edges, page_info=page_info, count=count)


@strawberry.input
class CreateWebhookEndpointInput:
    organization_id: strawberry.ID | None = strawberry.field(
        default=None, description=f"Defaults to the viewer's organization. {BY_ID_OR_UUID}"
    )
    url: str
    actions: list[str] | None = strawberry.field(default_factory=list)


@strawberry.input
class UpdateWebhookEndpointInput:
    id: strawberry.ID
    url: str | None = None
    actions: list[str] | None = None
    enabled: bool | None = None
    rotate_secret: bool | None = strawberry.field(
        default=False,
        description="Issue a new secret (returned once); the old one still signs for 24 hours.",
    )


@strawberry.input
class DeleteWebhookEndpointInput:
    id: strawberry.ID


@strawberry.input
class PingWebhookEndpointInput:
    id: strawberry.ID


@strawberry.input
class RedeliverWebhookInput:
    delivery_id: strawberry.ID


@strawberry.type
class WebhookEndpointPayload:
    endpoint: WebhookEndpointType | None
    secret: str | None = strawberry.field(
        description="The signing secret: shown once, on creation and on rotation."
    )
    user_errors: list[UserError]

    @classmethod
    def of(cls, result: tuple[WebhookEndpoint, str | None]) -> "WebhookEndpointPayload":
        row, secret = result
        return cls(endpoint=WebhookEndpointType.from_row(row), secret=secret, user_errors=[])

    @classmethod
    def refused(cls, errors: list[UserError]) -> "WebhookEndpointPayload":
        return cls(endpoint=None, secret=None, user_errors=errors)


@strawberry.type
class WebhookDeliveryPayload:
    delivery: WebhookDeliveryType | None
    user_errors: list[UserError]

    @classmethod
    def of(cls, row: WebhookDelivery) -> "WebhookDeliveryPayload":
        return cls(delivery=WebhookDeliveryType.from_row(row), user_errors=[])

    @classmethod
    def refused(cls, errors: list[UserError]) -> "WebhookDeliveryPayload":
        return cls(delivery=None, user_errors=errors)
