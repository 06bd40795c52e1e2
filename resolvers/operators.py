"""Queries and mutations on operators."""

import strawberry

from domain import operators
from domain.pagination import page_request
from resolvers.mutation import run
from schema.context import Info
from schema.operators import (
    CreateOperatorInput,
    DeleteOperatorInput,
    OperatorConnection,
    OperatorFilter,
    OperatorPayload,
    UpdateOperatorInput,
)


@strawberry.type
class OperatorQueries:
    @strawberry.field(
        description="Operators of the resellers in the viewer's subtree and on its path to "
        "the root (the provider's own among them), by name."
    )
    async def operators(
        self,
        info: Info,
        filter: OperatorFilter | None = None,
        first: int | None = 100,
        after: str | None = None,
    ) -> OperatorConnection:
        ctx = info.context
        request = page_request(first, after, ctx.settings.max_page_size)
        spec = filter.to_domain() if filter is not None else operators.OperatorFilter()
        async with ctx.db.read_statements() as session:
            page, where = await operators.listed(session, ctx.viewer, spec, request)

        async def count() -> int:
            async with ctx.db.read_statements() as session:
                return await operators.count(session, where)

        return OperatorConnection.from_page(page, count)


@strawberry.type
class OperatorMutations:
    @strawberry.mutation
    async def create_operator(self, info: Info, input: CreateOperatorInput) -> OperatorPayload:
        return await run(
            info,
            OperatorPayload,
            lambda session, who: operators.create(
                session, who.viewer, who.clock, name=input.name, reseller_id=input.reseller_id
            ),
        )

    @strawberry.mutation(description="Renaming an operator renames its numbers' vendor.")
    async def update_operator(self, info: Info, input: UpdateOperatorInput) -> OperatorPayload:
        return await run(
            info,
            OperatorPayload,
            lambda session, who: operators.rename(session, who.viewer, input.id, input.name),
        )

    @strawberry.mutation(description="CONFLICT while any of its numbers is not DELETED.")
    async def delete_operator(self, info: Info, input: DeleteOperatorInput) -> OperatorPayload:
        return await run(
            info,
            OperatorPayload,
            lambda session, who: operators.delete(session, who.viewer, input.id),
        )
