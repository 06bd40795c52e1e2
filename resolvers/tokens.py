"""Listing and revoking tokens."""

import strawberry

from domain import tokens
from domain.pagination import page_request
from resolvers.mutation import run
from schema.context import Info
from schema.tokens import RevokeTokenInput, RevokeTokenPayload, TokenConnection


@strawberry.type
class TokenQueries:
    @strawberry.field(description="Tokens of the viewer's subtree (ADMIN only), newest first.")
    async def tokens(
        self,
        info: Info,
        first: int | None = 100,
        after: str | None = None,
        include_revoked: bool | None = False,
    ) -> TokenConnection:
        ctx = info.context
        with_revoked = bool(include_revoked)
        request = page_request(first, after, ctx.settings.max_page_size)
        async with ctx.db.read() as session:
            page = await tokens.list_subtree(session, ctx.viewer, request, with_revoked)

        async def count() -> int:
            async with ctx.db.read() as session:
                return await tokens.count_subtree(session, ctx.viewer, with_revoked)

        return TokenConnection.from_page(page, count)


@strawberry.type
class TokenMutations:
    @strawberry.mutation(
        description="An ADMIN revokes a token of its subtree; any token may revoke itself. "
        "From the next request on the token is refused (401)."
    )
    async def revoke_token(self, info: Info, input: RevokeTokenInput) -> RevokeTokenPayload:
        return await run(
            info,
            RevokeTokenPayload,
            lambda session, who: tokens.revoke(session, who.viewer, who.clock, input.id),
        )
