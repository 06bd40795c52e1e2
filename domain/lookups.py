"""The number filter's lookups across numbers: notes, reservation reasons and holder,
deletion reasons, operators (version 2's fields, kept apart from search's core)."""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain import ids, operators, organizations
from domain.access import Viewer
from domain.errors import ErrorCode, Problems
from models import DeletionReason, Number, ReservationReason
from models.operators import Operator

MAX_FILTER_OPERATORS = 100


async def clauses(
    session: AsyncSession,
    viewer: Viewer,
    problems: Problems,
    *,
    notes: str | None,
    reservation_reasons: Sequence[ReservationReason] | None,
    reserved_for_id: str | None,
    deletion_reasons: Sequence[DeletionReason] | None,
    operator_ids: Sequence[str] | None,
) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if notes is not None:
        # Case-insensitive on both databases (SQLite's LIKE folds ASCII only).
        folded = sa.func.lower(Number.notes)
        where.append(folded.contains(notes.lower(), autoescape=True))
    if reservation_reasons:
        where.append(Number.reservation_reason.in_(reservation_reasons))
    if deletion_reasons:
        where.append(Number.deletion_reason.in_(deletion_reasons))
    if reserved_for_id is not None:
        field = ["filter", "reservedForId"]
        if organizations.key_of(reserved_for_id) is None:
            problems.add(
                ErrorCode.VALIDATION, organizations.not_a_reference(reserved_for_id), field
            )
        holder = await organizations.find_visible(session, viewer, reserved_for_id)
        where.append(Number.reserved_for_id == (holder.id if holder is not None else -1))
    if operator_ids is not None:
        where.append(await _of_operators(session, viewer, operator_ids, problems))
    return where


async def _of_operators(
    session: AsyncSession, viewer: Viewer, refs: Sequence[str], problems: Problems
) -> sa.ColumnElement[bool]:
    field = ["filter", "operatorIds"]
    if len(refs) > MAX_FILTER_OPERATORS:
        problems.add(
            ErrorCode.LIMIT_EXCEEDED, f"at most {MAX_FILTER_OPERATORS} operators a filter", field
        )
        return sa.false()
    keys = []
    for index, ref in enumerate(refs):
        key = ids.decode_uuid(ref, operators.TYPE_NAME)
        if key is None:
            problems.add(
                ErrorCode.VALIDATION, f"{ref[:60]!r} is not an operator's ID", [*field, str(index)]
            )
        else:
            keys.append(key)
    # Operators the viewer cannot see select nothing, as made-up ones do.
    found = sa.select(Operator.id).where(Operator.uuid.in_(keys), operators.visible_clause(viewer))
    return Number.operator_id.in_(found.scalar_subquery())
