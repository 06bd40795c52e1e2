"""The customer's number tabs (DESIGN.md, "Quick filters"): which numbers each holds, and
how many, for all eight at once.

Counts of a filter that names only pools are read from number_quick_filter_counts, which
triggers on numbers keep per pool and tab (migration 0015 states the same conditions in
SQL; the count-table test checks they agree with these). Any other filter is counted over
the numbers it selects, every tab in one scan.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from domain import terms
from models import Number, NumberState, QuickFilter, RegistrationStatus, ReservationReason

# Compared as text: states another part of the lifecycle may add (porting) are named here
# before the enum has them.
_STATE = sa.type_coerce(Number.state, sa.String())


def _states(*names: str) -> sa.ColumnElement[bool]:
    return _STATE.in_(names)


def condition(tab: QuickFilter) -> sa.ColumnElement[bool]:
    """Whether a number is in `tab`."""
    in_service = _states(NumberState.ASSIGNED, NumberState.BLOCKED)
    assigned = Number.state == NumberState.ASSIGNED
    conditions: dict[QuickFilter, sa.ColumnElement[bool]] = {
        QuickFilter.ALL: Number.state != NumberState.DELETED,
        QuickFilter.ACTIVE: sa.and_(
            assigned,
            Number.routing.is_not(None),
            Number.registration_status.in_(
                [RegistrationStatus.NOT_REQUIRED, RegistrationStatus.APPROVED]
            ),
        ),
        QuickFilter.NOT_CONFIGURED: sa.and_(assigned, Number.routing.is_(None)),
        QuickFilter.AWAITING_REGISTRATION: sa.and_(
            in_service,
            Number.registration_status.in_(
                [
                    RegistrationStatus.NOT_ASSIGNED,
                    RegistrationStatus.PENDING,
                    RegistrationStatus.REJECTED,
                ]
            ),
        ),
        QuickFilter.EXPIRING_SOON: sa.and_(
            in_service, Number.paid_until.is_not(None), sa.not_(renewing())
        ),
        QuickFilter.TERMINATED: sa.and_(
            Number.state == NumberState.RESERVED,
            Number.reservation_reason.in_(
                [
                    ReservationReason.CANCELLED,
                    ReservationReason.SUBSCRIPTION_EXPIRED,
                    ReservationReason.SUBSCRIPTION_TERMINATED,
                ]
            ),
        ),
        QuickFilter.PORTING: _states("PORTING_IN", "PORTING_OUT"),
        QuickFilter.BLOCKED: Number.state == NumberState.BLOCKED,
    }
    return conditions[tab]


def renewing() -> sa.ColumnElement[bool]:
    """A term that renews (terms.renews, in SQL): not cancelled, cycles left."""
    return sa.and_(
        Number.cancelled_at.is_(None),
        sa.or_(Number.billing_cycles.is_(None), Number.billing_cycles > 0),
    )


def renews_clause(renews: bool) -> sa.ColumnElement[bool]:
    """NumberFilter.renews: numbers with a term in service that renews (or will not)."""
    has_term = sa.and_(_states(*terms.IN_SERVICE), Number.paid_until.is_not(None))
    return sa.and_(has_term, renewing() if renews else sa.not_(renewing()))


def tab_sums() -> list[Any]:
    """One column per tab: how many of the selected numbers are in it."""
    return [
        sa.func.coalesce(sa.func.sum(sa.case((condition(tab), 1), else_=0)), 0)
        for tab in QuickFilter
    ]


def as_counts(values: Sequence[int]) -> dict[QuickFilter, int]:
    return {tab: int(n) for tab, n in zip(QuickFilter, values, strict=True)}
