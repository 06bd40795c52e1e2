"""The paid service term: BillingTerm on Number, its input on assign, the term inputs."""

from datetime import datetime

import strawberry

from domain import terms
from models.numbers import NumberRecord


@strawberry.type(
    description="The paid period of an ASSIGNED or BLOCKED number that Numbra renews itself."
)
class BillingTerm:
    period_months: int = strawberry.field(
        description="Length of one billing period in months: 1, 3, 6 or 12."
    )
    paid_until: datetime = strawberry.field(description="End of the period paid so far.")
    billing_cycles_left: int | None = strawberry.field(
        description="Renewals still to come; null = unlimited; 0 = the service ends at paidUntil."
    )
    cancelled_at: datetime | None = strawberry.field(
        description="Set by cancelNumbers: the service then ends at paidUntil and is not renewed."
    )
    renews: bool = strawberry.field(description="False when cancelled or no cycles are left.")

    @classmethod
    def of(cls, row: NumberRecord) -> "BillingTerm | None":
        if row.billing_period_months is None or row.paid_until is None:
            return None
        return cls(
            period_months=row.billing_period_months,
            paid_until=row.paid_until,
            billing_cycles_left=row.billing_cycles,
            cancelled_at=row.cancelled_at,
            renews=terms.renews(row),  # type: ignore[arg-type]
        )


@strawberry.input
class BillingTermInput:
    period_months: int | None = 1
    paid_until: datetime | None = strawberry.field(
        default=None, description="Defaults to now plus one period."
    )
    billing_cycles: int | None = strawberry.field(
        default=None, description="Null = unlimited; 0 to 999."
    )

    def term(self) -> terms.TermInput:
        return terms.TermInput(self.period_months, self.paid_until, self.billing_cycles)


@strawberry.input
class CancelNumbersInput:
    numbers: list[str]
    remark: str | None = None


@strawberry.input
class RestoreNumbersInput:
    numbers: list[str]
    remark: str | None = None


@strawberry.input
class RenewNumbersInput:
    numbers: list[str]
    periods: int | None = strawberry.field(
        default=1, description="Billing periods to add, 1 to 12."
    )
    remark: str | None = None


@strawberry.input
class SetBillingCyclesInput:
    numbers: list[str]
    cycles: int | None = strawberry.field(default=None, description="Null = unlimited; 0 to 999.")
    remark: str | None = None
