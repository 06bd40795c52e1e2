"""Token (never its secret), its connection, and revoking one."""

from collections.abc import Awaitable, Callable
from datetime import datetime

import strawberry

from domain import ids
from domain.pagination import Page, encode_cursor
from domain.tokens import TYPE_NAME, cursor_key
from models import Token as TokenRow
from schema.common import CountedConnection, Node, PageInfo, Role, UserError, edges_and_page_info
from schema.context import Info
from schema.organizations import OrganizationType


@strawberry.type(name="Token")
class TokenType(Node):
    row: strawberry.Private[TokenRow]
    name: str
    role: Role  # type: ignore[valid-type]
    created_at: datetime
    expires_at: datetime | None = strawberry.field(description="Null: never expires.")
    last_used_at: datetime | None = strawberry.field(description="To the minute; null: never used.")
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: TokenRow) -> "TokenType":
        return cls(
            row=row,
            id=strawberry.ID(ids.encode(TYPE_NAME, row.uuid)),
            name=row.name,
            role=row.role,
            created_at=row.created_at,
            expires_at=row.expires_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )

    @strawberry.field
    async def organization(self, info: Info) -> OrganizationType:
        org = await info.context.loaders.organization.load(self.row.organization_id)
        assert org is not None
        return OrganizationType.from_row(org)


@strawberry.type
class TokenEdge:
    node: TokenType
    cursor: str


@strawberry.type
class TokenConnection(CountedConnection):
    edges: list[TokenEdge]
    page_info: PageInfo

    @classmethod
    def from_page(
        cls, page: Page[TokenRow], count: Callable[[], Awaitable[int]]
    ) -> "TokenConnection":
        edges, page_info = edges_and_page_info(
            page,
            lambda row: TokenEdge(
                node=TokenType.from_row(row), cursor=encode_cursor(*cursor_key(row))
            ),
        )
        return cls(edges=edges, page_info=page_info, count=count)


@strawberry.input
class RevokeTokenInput:
    id: strawberry.ID = strawberry.field(description="The token's ID or its UUID.")


@strawberry.type
class RevokeTokenPayload:
    token: TokenType | None
    user_errors: list[UserError]

    @classmethod
    def of(cls, row: TokenRow) -> "RevokeTokenPayload":
        return cls(token=TokenType.from_row(row), user_errors=[])

    @classmethod
    def refused(cls, errors: list[UserError]) -> "RevokeTokenPayload":
        return cls(token=None, user_errors=errors)
