"""Viewer and tokens."""

from datetime import datetime

import strawberry

from schema.common import BY_ID_OR_UUID, Role, UserError
from schema.organizations import OrganizationType


@strawberry.type
class Viewer:
    organization: OrganizationType
    role: Role  # type: ignore[valid-type]
    token_name: str


@strawberry.input
class CreateTokenInput:
    name: str
    organization_id: strawberry.ID = strawberry.field(
        description=f"The organization the token acts for. {BY_ID_OR_UUID}"
    )
    role: Role  # type: ignore[valid-type]
    expires_at: datetime | None = strawberry.field(default=None, description="Null: never expires.")


@strawberry.type
class TokenPayload:
    token: str | None = strawberry.field(description="Shown once; only a hash is stored.")
    user_errors: list[UserError]

    @classmethod
    def of(cls, token: str) -> "TokenPayload":
        return cls(token=token, user_errors=[])

    @classmethod
    def refused(cls, errors: list[UserError]) -> "TokenPayload":
        return cls(token=None, user_errors=errors)
