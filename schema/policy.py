"""The number policy of an organization: effective values, its own overrides, and the input
that sets them."""

from typing import Any

import strawberry

from domain.number_policy import COLUMNS, Overrides, Periods
from models import AfterHold as AfterHoldModel
from schema.common import BY_ID_OR_UUID

AfterHoldState = strawberry.enum(
    AfterHoldModel,
    name="AfterHoldState",
    description="What becomes of a number when a hold after a subscription or service ends.",
)


@strawberry.type(
    description="Durations in days. Effective values: this organization's own, else its nearest "
    "ancestor's, else the settings."
)
class NumberPolicy:
    free_reservation_days: int
    expired_hold_days: int
    terminated_hold_days: int
    cancelled_hold_days: int
    swap_hold_days: int
    lock_days: int
    notice_days: int
    after_hold: AfterHoldState  # type: ignore[valid-type]

    @classmethod
    def of(cls, periods: Periods) -> "NumberPolicy":
        return cls(
            free_reservation_days=periods.free_reservation.days,
            expired_hold_days=periods.expired_hold.days,
            terminated_hold_days=periods.terminated_hold.days,
            cancelled_hold_days=periods.cancelled_hold.days,
            swap_hold_days=periods.swap_hold.days,
            lock_days=periods.lock.days,
            notice_days=periods.notice.days,
            after_hold=periods.after_hold,
        )


@strawberry.type(description="What one organization sets itself; null = inherited.")
class NumberPolicyOverrides:
    free_reservation_days: int | None
    expired_hold_days: int | None
    terminated_hold_days: int | None
    cancelled_hold_days: int | None
    swap_hold_days: int | None
    lock_days: int | None
    notice_days: int | None
    after_hold: AfterHoldState | None  # type: ignore[valid-type]

    @classmethod
    def of(cls, own: Overrides) -> "NumberPolicyOverrides":
        return cls(**{column: getattr(own, column) for column in COLUMNS})


@strawberry.input(
    description="Each field given sets the organization's own value; a field given as null "
    "returns it to inheriting; omitted fields stay."
)
class SetNumberPolicyInput:
    organization_id: strawberry.ID = strawberry.field(description=BY_ID_OR_UUID)
    free_reservation_days: int | None = strawberry.field(
        default=strawberry.UNSET, description="1 to 365, at most the parent's."
    )
    expired_hold_days: int | None = strawberry.field(
        default=strawberry.UNSET, description="1 to 365."
    )
    terminated_hold_days: int | None = strawberry.field(
        default=strawberry.UNSET, description="1 to 365."
    )
    cancelled_hold_days: int | None = strawberry.field(
        default=strawberry.UNSET, description="1 to 365."
    )
    swap_hold_days: int | None = strawberry.field(default=strawberry.UNSET, description="1 to 365.")
    lock_days: int | None = strawberry.field(default=strawberry.UNSET, description="1 to 3650.")
    notice_days: int | None = strawberry.field(default=strawberry.UNSET, description="1 to 30.")
    after_hold: AfterHoldState | None = strawberry.UNSET  # type: ignore[valid-type]

    def changes(self) -> dict[str, Any]:
        """The values given (None: clear), by model column."""
        given = {column: getattr(self, column) for column in COLUMNS}
        return {column: value for column, value in given.items() if value is not strawberry.UNSET}
