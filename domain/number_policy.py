"""The number policy per organization: periods and the after-hold state, inherited down the tree.

An organization sets some values itself (a `number_policies` row, null columns unset);
every value it does not set is its nearest ancestor's, else the settings' (`Policy`).
A free reservation period may not exceed the parent's: setting a larger one is refused,
and when a parent later lowers its own below a child's, the child's own value is kept
(its `policyOverrides` still shows it) but its effective period is the parent's, so the
ceiling always holds.

A period is read when the move that starts it happens, from the policy of the
organization whose pool holds the number then, and written into the number's end:
changing a policy later moves no running end.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain import organizations
from domain.access import Viewer
from domain.errors import ErrorCode, Problems
from domain.policy import Policy
from models import AfterHold, NumberPolicy, Organization, Role

# Each period a policy may set: (column, input field, least, most days, the default in Policy).
DAYS: tuple[tuple[str, str, int, int, str], ...] = (
    ("free_reservation_days", "freeReservationDays", 1, 365, "free_reservation"),
    ("expired_hold_days", "expiredHoldDays", 1, 365, "expired_hold"),
    ("terminated_hold_days", "terminatedHoldDays", 1, 365, "terminated_hold"),
    ("cancelled_hold_days", "cancelledHoldDays", 1, 365, "cancelled_hold"),
    ("swap_hold_days", "swapHoldDays", 1, 365, "swap_hold"),
    ("lock_days", "lockDays", 1, 3650, "lock"),
    ("notice_days", "noticeDays", 1, 30, "notice"),
)
COLUMNS = (*(column for column, *_ in DAYS), "after_hold")
# Policy rows per statement, well under the bind-parameter limits.
CHUNK = 5_000


@dataclass(frozen=True)
class Periods:
    """The effective policy of one organization."""

    free_reservation: timedelta
    expired_hold: timedelta
    terminated_hold: timedelta
    cancelled_hold: timedelta
    swap_hold: timedelta
    lock: timedelta
    notice: timedelta
    after_hold: AfterHold

    @classmethod
    def defaults(cls, policy: Policy) -> "Periods":
        return cls(
            **{default: getattr(policy, default) for *_, default in DAYS},
            after_hold=policy.after_hold,
        )


@dataclass(frozen=True)
class Overrides:
    """What one organization sets itself; None: inherited."""

    free_reservation_days: int | None = None
    expired_hold_days: int | None = None
    terminated_hold_days: int | None = None
    cancelled_hold_days: int | None = None
    swap_hold_days: int | None = None
    lock_days: int | None = None
    notice_days: int | None = None
    after_hold: AfterHold | None = None

    @classmethod
    def of(cls, row: NumberPolicy | None) -> "Overrides":
        if row is None:
            return cls()
        return cls(**{column: getattr(row, column) for column in COLUMNS})


def lineage(path: str) -> list[int]:
    """Ids from the root down to the organization the path names."""
    return [int(segment) for segment in path.strip("/").split("/")]


def parent_path(path: str) -> str | None:
    segments = path.strip("/").split("/")
    return "/" + "".join(f"{s}/" for s in segments[:-1]) if len(segments) > 1 else None


def resolve(path: str, rows: Mapping[int, Overrides], defaults: Periods) -> Periods:
    """The effective policy at `path`, from the overrides of it and its ancestors."""
    values: dict[str, Any] = {}
    chain = [rows.get(org_id, Overrides()) for org_id in lineage(path)]
    for column, _field, _least, _most, default in DAYS:
        days = None
        for own in reversed(chain):
            if (days := getattr(own, column)) is not None:
                break
        values[default] = timedelta(days=days) if days is not None else getattr(defaults, default)
    # The parent ceiling: no level's free period exceeds the one above it.
    ceiling = defaults.free_reservation
    for level, own in enumerate(chain):
        if own.free_reservation_days is not None:
            days = timedelta(days=own.free_reservation_days)
            ceiling = days if level == 0 else min(ceiling, days)
    values["free_reservation"] = ceiling
    after = next((o.after_hold for o in reversed(chain) if o.after_hold is not None), None)
    return Periods(**values, after_hold=after or defaults.after_hold)


async def overrides(session: AsyncSession, org_ids: Iterable[int]) -> dict[int, Overrides]:
    """The overrides the organizations set themselves; those that set none are absent."""
    wanted = sorted(set(org_ids))
    found: dict[int, Overrides] = {}
    for start in range(0, len(wanted), CHUNK):
        rows = await session.scalars(
            sa.select(NumberPolicy).where(
                NumberPolicy.organization_id.in_(wanted[start : start + CHUNK])
            )
        )
        found.update({row.organization_id: Overrides.of(row) for row in rows})
    return found


async def for_paths(
    session: AsyncSession, paths: Iterable[str], defaults: Policy
) -> dict[str, Periods]:
    """The effective policy of each organization by its path: one query for them all."""
    paths = set(paths)
    rows = await overrides(session, {org_id for path in paths for org_id in lineage(path)})
    base = Periods.defaults(defaults)
    return {path: resolve(path, rows, base) for path in paths}


async def of(session: AsyncSession, path: str, defaults: Policy) -> Periods:
    return (await for_paths(session, [path], defaults))[path]


async def set_policy(
    session: AsyncSession,
    viewer: Viewer,
    defaults: Policy,
    org_ref: str,
    changes: Mapping[str, Any],
) -> Organization:
    """Set (a value) or clear (None) the organization's own values named in `changes`
    (model column names); those not named stay. An ADMIN of it or above it sets them."""
    viewer.require(Role.ADMIN)
    problems = Problems()
    org = await organizations.named(session, viewer, org_ref, ["input", "organizationId"], problems)
    for column, field, least, most, _default in DAYS:
        days = changes.get(column)
        if days is not None and not least <= days <= most:
            problems.add(
                ErrorCode.VALIDATION, f"{field} must be {least} to {most} days", ["input", field]
            )
    free = changes.get("free_reservation_days")
    if org is not None and free is not None and (above := parent_path(org.path)) is not None:
        ceiling = (await of(session, above, defaults)).free_reservation.days
        if free > ceiling:
            problems.add(
                ErrorCode.VALIDATION,
                f"freeReservationDays may not exceed the parent's ({ceiling} days)",
                ["input", "freeReservationDays"],
            )
    problems.raise_if_any()
    assert org is not None
    given = {column: changes[column] for column in COLUMNS if column in changes}
    if given:
        dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
        await session.execute(
            dialect.insert(NumberPolicy)
            .values(organization_id=org.id)
            .on_conflict_do_nothing(index_elements=["organization_id"])
        )
        await session.execute(
            sa.update(NumberPolicy)
            .where(NumberPolicy.organization_id == org.id)
            .values(given)
            .execution_options(synchronize_session=False)
        )
    return org
