"""Setting an organization's number policy."""

import strawberry

from domain import number_policy
from resolvers.mutation import run
from schema.context import Info
from schema.organizations import OrganizationPayload
from schema.policy import SetNumberPolicyInput


@strawberry.type
class PolicyMutations:
    @strawberry.mutation
    async def set_number_policy(
        self, info: Info, input: SetNumberPolicyInput
    ) -> OrganizationPayload:
        changes = input.changes()
        return await run(
            info,
            OrganizationPayload,
            lambda session, who: number_policy.set_policy(
                session, who.viewer, who.policy, input.organization_id, changes
            ),
        )
