"""The one way a mutation runs: one transaction, expected failures as the payload's userErrors."""

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from domain import transactions
from domain.access import Caller
from domain.errors import DomainError
from schema.common import UserError, user_errors
from schema.context import Info

R = TypeVar("R")
R_contra = TypeVar("R_contra", contravariant=True)
P_co = TypeVar("P_co", covariant=True)
P = TypeVar("P")


class Payload(Protocol[R_contra, P_co]):
    """A payload type: made of what the operation returned, or of the errors that refused it."""

    def of(self, result: R_contra, /) -> P_co: ...

    def refused(self, errors: list[UserError], /) -> P_co: ...


async def run(
    info: Info,
    payload: Payload[R, P],
    operation: Callable[[AsyncSession, Caller], Awaitable[R]],
) -> P:
    """Apply the operation as the request's caller, in one transaction, committed or not
    at all; the domain's refusal becomes userErrors, anything else an error of the request."""
    ctx = info.context
    try:
        async with transactions.write(ctx.db) as session:
            result = await operation(session, ctx.caller)
    except DomainError as error:
        return payload.refused(user_errors(error))
    return payload.of(result)
