"""Number mutations through the API, for tests: the payload, or the success or refusal
a test expects. Each test module asks for the number fields it compares, as a
fragment `N on Number`."""

from dataclasses import dataclass
from typing import Any

from tests.support.api import Api

INPUT_TYPES = {
    "addNumbers": "AddNumbersInput",
    "allocateNumbers": "AllocateNumbersInput",
    "withdrawNumbers": "WithdrawNumbersInput",
    "reserveNumbers": "ReserveNumbersInput",
    "extendReservation": "ExtendReservationInput",
    "releaseNumbers": "ReleaseNumbersInput",
    "assignNumbers": "AssignNumbersInput",
    "lockNumbers": "LockNumbersInput",
    "unlockNumbers": "UnlockNumbersInput",
    "deleteNumbers": "DeleteNumbersInput",
    "recoverNumbers": "RecoverNumbersInput",
    "editNumbers": "EditNumbersInput",
    "subscriptionExpired": "SubscriptionEventInput",
    "subscriptionTerminated": "SubscriptionEventInput",
    "subscriptionReactivated": "SubscriptionEventInput",
    "swapNumber": "SwapNumberInput",
}


@dataclass(frozen=True)
class NumberMutations:
    fragment: str  # `fragment N on Number { … }`: what the payload's numbers show

    async def call(
        self, api: Api, mutation: str, input: dict[str, Any], token: str | None = None
    ) -> dict[str, Any]:
        """Run a number mutation; return its payload (numbers and userErrors)."""
        query = (
            self.fragment
            + f"mutation($input: {INPUT_TYPES[mutation]}!) {{ {mutation}(input: $input) "
            + "{ numbers { ...N } userErrors { code message field number } } }"
        )
        payload: dict[str, Any] = (await api.gql(query, {"input": input}, token=token))[mutation]
        return payload

    async def ok(
        self, api: Api, mutation: str, input: dict[str, Any], token: str | None = None
    ) -> list[dict[str, Any]]:
        """A mutation that must succeed; its numbers."""
        payload = await self.call(api, mutation, input, token)
        assert payload["userErrors"] == [], payload["userErrors"]
        numbers: list[dict[str, Any]] = payload["numbers"]
        return numbers

    async def refused(
        self, api: Api, mutation: str, input: dict[str, Any], token: str | None = None
    ) -> list[dict[str, Any]]:
        """A mutation that must change nothing; its userErrors."""
        payload = await self.call(api, mutation, input, token)
        assert payload["numbers"] == [], payload
        errors: list[dict[str, Any]] = payload["userErrors"]
        assert errors
        return errors


def codes(errors: list[dict[str, Any]]) -> set[tuple[str, tuple[str, ...] | None, str | None]]:
    """(code, field path, number) of each userError."""
    return {(e["code"], tuple(e["field"]) if e["field"] else None, e["number"]) for e in errors}
