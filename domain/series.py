"""Series: the provider's catalogue of E.164 prefixes, each in one country."""

import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol
from uuid import UUID

import phonenumbers
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain import phone, text
from domain.access import Viewer
from domain.clock import Clock
from domain.errors import DomainError, ErrorCode, Problems
from domain.pagination import Page, PageRequest, make_page
from models import Role, Series
from models.base import column_length
from models.database import Reads
from models.prepared import Prepared

TYPE_NAME = "Series"
MAX_NAME = column_length(Series.name)
_PREFIX = re.compile(r"\+[1-9][0-9]{0,14}")


async def create(
    session: AsyncSession, viewer: Viewer, clock: Clock, *, name: str, prefix: str, country: str
) -> Series:
    """Series are the provider's catalogue: only the root's admins define them."""
    viewer.require(Role.ADMIN)
    if not viewer.at_root:
        raise DomainError.one(ErrorCode.FORBIDDEN, "only the provider's admins define series")
    problems = Problems()
    text.check(problems, name, "name")
    # A prefix in other digits (full-width, ...) is its ASCII self, as numbers are.
    name, prefix = name.strip(), phone.ascii_digits(prefix.strip())
    country = country.strip().upper()
    if not name or len(name) > MAX_NAME:
        problems.add(
            ErrorCode.VALIDATION, f"name must be 1 to {MAX_NAME} characters", ["input", "name"]
        )
    if country not in phonenumbers.SUPPORTED_REGIONS:
        problems.add(
            ErrorCode.VALIDATION, f"{country!r} is not an ISO 3166-1 country", ["input", "country"]
        )
    if not _PREFIX.fullmatch(prefix):
        problems.add(
            ErrorCode.VALIDATION,
            "prefix must be '+' and 1 to 15 digits, e.g. +6531",
            ["input", "prefix"],
        )
    elif country in phonenumbers.SUPPORTED_REGIONS:
        calling_code = str(phonenumbers.country_code_for_region(country))
        if not prefix[1:].startswith(calling_code):
            problems.add(
                ErrorCode.VALIDATION,
                f"numbers of {country} begin +{calling_code}; {prefix} does not",
                ["input", "prefix"],
            )
    if not problems and await session.scalar(sa.select(Series.id).where(Series.prefix == prefix)):
        problems.add(
            ErrorCode.ALREADY_EXISTS, f"a series with prefix {prefix} exists", ["input", "prefix"]
        )
    problems.raise_if_any()
    series = Series(name=name, prefix=prefix, country=country, created_at=clock.now())
    session.add(series)
    await session.flush()
    return series


async def find(session: AsyncSession, key: UUID) -> Series | None:
    return (await session.scalars(sa.select(Series).where(Series.uuid == key))).one_or_none()


def matching(search: str | None, country: str | None) -> list[sa.ColumnElement[bool]]:
    """Series whose name or prefix holds `search` (any case), of `country`."""
    where: list[sa.ColumnElement[bool]] = []
    if search is not None and search.strip():
        folded = search.strip().lower()
        prefix = phone.ascii_digits(search.strip())
        where.append(
            sa.or_(
                sa.func.lower(Series.name).contains(folded, autoescape=True),
                Series.prefix.contains(prefix, autoescape=True),
            )
        )
    if country is not None:
        where.append(Series.country == country.strip().upper())
    return where


async def list_all(
    session: AsyncSession, page: PageRequest, where: Sequence[sa.ColumnElement[bool]] = ()
) -> Page[Series]:
    query = sa.select(Series).where(*where)
    if page.after is not None:
        query = query.where(Series.prefix > str(page.after[0]))
    rows = (await session.scalars(query.order_by(Series.prefix).limit(page.first + 1))).all()
    return make_page(rows, page)


async def count_all(session: AsyncSession, where: Sequence[sa.ColumnElement[bool]] = ()) -> int:
    query = sa.select(sa.func.count()).select_from(Series).where(*where)
    return (await session.execute(query)).scalar_one()


class Matcher:
    """The series of a number: the one with the longest prefix it starts with.

    Only the prefix lengths the catalogue has are tried, longest first: an import
    puts a million numbers through it.
    """

    def __init__(self, prefixes: Mapping[str, int]) -> None:
        self._prefixes = prefixes
        self._lengths = sorted({len(prefix) for prefix in prefixes}, reverse=True)

    def __call__(self, e164: str) -> int | None:
        for length in self._lengths:
            series_id = self._prefixes.get(e164[:length])
            if series_id is not None:
                return series_id
        return None


async def matcher(session: AsyncSession) -> Matcher:
    result = await session.execute(sa.select(Series.prefix, Series.id))
    return Matcher({prefix: series_id for prefix, series_id in result})


class SeriesFacts(Protocol):
    """What the API shows of a series: a Series row, or SeriesRead."""

    @property
    def uuid(self) -> UUID: ...
    @property
    def name(self) -> str: ...
    @property
    def prefix(self) -> str: ...
    @property
    def country(self) -> str: ...


class SeriesRead(NamedTuple):
    uuid: UUID
    name: str
    prefix: str
    country: str


# SeriesRead's columns, in its order.
SERIES_READ = (Series.uuid, Series.name, Series.prefix, Series.country)
_BY_IDS = Prepared(
    sa.select(Series.id, *SERIES_READ).where(
        Series.id.in_(sa.bindparam("series_ids", expanding=True))
    )
)


async def read_by_ids(reads: Reads, series_ids: Sequence[int]) -> dict[int, SeriesRead]:
    """Series by id, as plain rows of what the API shows (a page of numbers names a few
    series: ORM objects cost three times a plain row's time)."""
    rows = await _BY_IDS.rows(reads, {"series_ids": list(series_ids)})
    return {
        series_id: SeriesRead(uuid, name, prefix, country)
        for series_id, uuid, name, prefix, country in rows
    }
