"""CSV export: exactly the numbers a filter selects, every contract field a column.

The rows are read in keyset pages ordered by e164 and written a page at a time, so
an export of any size holds one page in memory. The filter is parsed from text by
`domain.csv.parameters`.
"""

import csv
import io
import json
import unicodedata
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute, aliased

from domain import search
from models import Capability, FeatureKind, Number, Organization, Series

PAGE_SIZE = 5_000

COLUMNS = (
    "number",
    "state",
    "country",
    "sku",
    "vendor",
    "capabilities",
    "routing",
    "golden",
    "ported_in",
    "visible_to_domain",
    "tag",
    "notes",
    "organization",
    "series",
    "reservation_kind",
    "reservation_reason",
    "reserved_for",
    "reservation_tag",
    "reservation_remark",
    "reservation_starts_at",
    "expires_at",
    "did_reservation_uuid",
    "locked_at",
    "lock_remark",
    "subscription_uuid",
    "owner_uuid",
    "deletion_reason",
    "state_changed_at",
    "held_for_subscription_uuid",
    "billing_period_months",
    "paid_until",
    "billing_cycles",
    "cancelled_at",
    "block_reason",
    "blocked_at",
    "blocked_until",
    "block_remark",
    "registration_status",
    "registration_identity_ref",
    "capacity",
    "features",
)

# Free text a person typed. A spreadsheet runs a cell that begins with a formula's sign
# (OWASP's = + - @, tab and carriage return), or may once it trims the start or folds
# full-width and small forms to ASCII; so a cell that begins with a sign in any form
# (U+FF1D, U+FE66, U+2212...), white space or a line break is written behind a "'" (and
# a text that itself begins with "'" gets a second one, so the import can undo it exactly).
TEXT_COLUMNS = frozenset(
    {
        "sku",
        "vendor",
        "routing",
        "visible_to_domain",
        "tag",
        "notes",
        "reservation_tag",
        "reservation_remark",
        "lock_remark",
        "block_remark",
        "registration_identity_ref",
    }
)
_SIGNS = frozenset("=+-@")
# Signs whose compatibility form (NFKC) is not ASCII: the minus sign.
_OTHER_SIGNS = frozenset("\u2212")


def _needs_guard(value: str) -> bool:
    if not value:
        return False
    first = value[0]
    if first.isascii():
        return first in _SIGNS or first == "'" or first.isspace()
    return (
        first.isspace() or first in _OTHER_SIGNS or unicodedata.normalize("NFKC", first) in _SIGNS
    )


def guard_text(value: str) -> str:
    return "'" + value if _needs_guard(value) else value


def unguard_text(value: str) -> str:
    """The text `guard_text` was given."""
    if value.startswith("'") and _needs_guard(value[1:]):
        return value[1:]
    return value


def capability_names(mask: int) -> str:
    return "|".join(name for name, flag in Capability.__members__.items() if mask & flag)


# Cells that need more than csv's own str() (None is written empty, a StrEnum as
# its value), found by position once rather than by type for every cell.
_CAPABILITIES_AT = COLUMNS.index("capabilities")
_CAPABILITY_NAMES = tuple(capability_names(mask) for mask in range(2 ** len(Capability)))
_FLAGS_AT = tuple(COLUMNS.index(name) for name in ("golden", "ported_in"))
_TIMES_AT = tuple(
    COLUMNS.index(name)
    for name in (
        "reservation_starts_at",
        "expires_at",
        "locked_at",
        "state_changed_at",
        "paid_until",
        "cancelled_at",
        "blocked_at",
        "blocked_until",
    )
)
_FEATURES_AT = COLUMNS.index("features")
_TEXTS_AT = tuple(index for index, name in enumerate(COLUMNS) if name in TEXT_COLUMNS)
_UUIDS_AT = tuple(
    COLUMNS.index(name)
    for name in (
        "organization",
        "reserved_for",
        "did_reservation_uuid",
        "subscription_uuid",
        "owner_uuid",
        "held_for_subscription_uuid",
    )
)


def _raw(column: Any) -> Any:
    """The column as the driver gives it.

    SQLAlchemy's conversions to UUID, enum and datetime objects, value by value,
    cost more than the rest of an export together; the few cells that need it are
    formatted from the driver's values in `_format`.
    """
    return sa.type_coerce(column, sa.String())


def _time_text(value: datetime | str) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    # SQLite keeps UTC times as SQLAlchemy writes them, "2026-03-02 09:00:00.000000";
    # written as datetime.isoformat() writes them, as they are from PostgreSQL.
    text = value.replace(" ", "T", 1)
    return (text[:-7] if text.endswith(".000000") else text) + "+00:00"


def _uuid_text(value: UUID | str) -> str:
    text = str(value)
    if len(text) == 32:
        # SQLite keeps a UUID as its 32 hex digits.
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return text


def features_text(stored: str | dict[str, Any]) -> str:
    """A number's features as "KIND:STATUS|…", in the kinds' order (the raw column is
    JSON text on either database)."""
    found = json.loads(stored) if isinstance(stored, str) else stored
    return "|".join(
        f"{kind}:{found[kind.value]['status']}" for kind in FeatureKind if kind.value in found
    )


def page_statement(
    dialect: str, where: Sequence[sa.ColumnElement[bool]], after: str | None, limit: int
) -> sa.Select[*tuple[Any, ...]]:
    """A page of the export: the next `limit` numbers after `after`, in e164 order.

    Numbers alone in FROM, walked in e164 order whatever the statistics say (the
    filter's low-cardinality columns kept off their indexes, as a search's prefix walk
    does), their pool, holder, owner and series read by a subquery each: every page reads
    on from where the last stopped, so an export reads each number once. Joined
    instead, SQLite's planner started from the organizations (a handful of rows), read
    the whole pool through its index and sorted it for every page of 5,000: a million
    numbers took 78 s, most of it sorting the same rows again.
    """
    where = search.walk_in_order(dialect, where)
    query = sa.select(*_CELLS).where(*where)
    if after is not None:
        query = query.where(Number.e164 > after)
    return query.order_by(Number.e164).limit(limit)


def _organization_uuid(column: QueryableAttribute[Any]) -> Any:
    # Aliased: the filter's subqueries select from `organizations` too.
    organization = aliased(Organization)
    return sa.select(organization.uuid).where(organization.id == column).scalar_subquery()


# What an export selects, in the order of its columns (COLUMNS), each as the driver
# gives it (`_raw`): the columns of numbers, and the subqueries their pool's, series',
# holder's and owner's come from.
_CELLS = tuple(
    _raw(cell)
    for cell in (
        Number.e164,
        Number.state,
        Number.country,
        Number.sku,
        Number.vendor,
        Number.capabilities,
        Number.routing,
        Number.golden,
        Number.ported_in,
        Number.visible_to_domain,
        Number.tag,
        Number.notes,
        _organization_uuid(Number.organization_id),
        sa.select(Series.prefix).where(Series.id == Number.series_id).scalar_subquery(),
        Number.reservation_kind,
        Number.reservation_reason,
        _organization_uuid(Number.reserved_for_id),
        Number.reservation_tag,
        Number.reservation_remark,
        Number.reserved_at,
        Number.expires_at,
        Number.did_reservation_uuid,
        Number.locked_at,
        Number.lock_remark,
        Number.subscription_uuid,
        _organization_uuid(Number.owner_id),
        Number.deletion_reason,
        Number.state_changed_at,
        Number.held_for_subscription_uuid,
        Number.billing_period_months,
        Number.paid_until,
        Number.billing_cycles,
        Number.cancelled_at,
        Number.block_reason,
        Number.blocked_at,
        Number.blocked_until,
        Number.block_remark,
        Number.registration_status,
        Number.registration_identity_ref,
        Number.capacity,
        Number.features,
    )
)
if len(_CELLS) != len(COLUMNS):
    raise TypeError("domain/csv/exports.py: _CELLS must select every column of COLUMNS")


def _format(rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        cells = list(row)
        cells[_CAPABILITIES_AT] = _CAPABILITY_NAMES[cells[_CAPABILITIES_AT]]
        for index in _FLAGS_AT:
            cells[index] = "true" if cells[index] else "false"
        for index in _TIMES_AT:
            if cells[index] is not None:
                cells[index] = _time_text(cells[index])
        for index in _UUIDS_AT:
            if cells[index] is not None:
                cells[index] = _uuid_text(cells[index])
        for index in _TEXTS_AT:
            if cells[index]:
                cells[index] = guard_text(cells[index])
        if cells[_FEATURES_AT] is not None:
            cells[_FEATURES_AT] = features_text(cells[_FEATURES_AT])
        writer.writerow(cells)
    return buffer.getvalue()


def header() -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(COLUMNS)
    return buffer.getvalue()


async def csv_chunks(
    session: AsyncSession, where: Sequence[sa.ColumnElement[bool]]
) -> AsyncIterator[str]:
    """The CSV text, header first, one chunk per page of PAGE_SIZE rows."""
    page_size = PAGE_SIZE
    # Core rows, not the ORM's: the ORM's bookkeeping per row would double the cost.
    connection = await session.connection()
    dialect = connection.dialect.name
    yield header()
    after: str | None = None
    while True:
        rows = (await connection.execute(page_statement(dialect, where, after, page_size))).all()
        if not rows:
            return
        yield _format(rows)
        if len(rows) < page_size:
            return
        after = rows[-1][0]
