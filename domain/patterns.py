"""The pattern language of a number filter (`+6561*`, `*4567*`, `4567`), as SQL."""

import re

import sqlalchemy as sa

from domain import phone
from domain.errors import ErrorCode, Problems
from models import Number

_PATTERN = re.compile(r"\+?[0-9*]+")
_STARS = re.compile(r"\*+")
MAX_DIGITS = 15  # in an E.164 number


def _upper(prefix: str) -> str:
    """The least string above every string that starts with `prefix` (digits only follow)."""
    return prefix + ":"


# SQLite's FTS5 trigram index over e164 (migration 0003); PostgreSQL's pg_trgm index
# serves LIKE '%…%' by itself.
_FTS = sa.table("numbers_fts", sa.column("rowid"), sa.column("numbers_fts"))
_TRIGRAM = 3


def _substring_prefilter(digits: str) -> sa.ColumnElement[bool]:
    """Numbers whose e164 contains `digits`, found through the FTS5 trigram index."""
    matches = sa.select(_FTS.c.rowid).where(_FTS.c.numbers_fts.op("MATCH")(f'"{digits}"'))
    return Number.id.in_(matches.scalar_subquery())


def clause(
    pattern: str, problems: Problems, trigram_table: bool = False
) -> sa.ColumnElement[bool] | None:
    """The pattern language of the contract's NumberFilter, as SQL.

    Digits of other scripts (and a full-width plus) stand for their ASCII selves, as
    in numbers: a pattern finds what its ASCII spelling finds. With `trigram_table`
    (SQLite), searches without a literal head are narrowed by the FTS5 index first,
    so they read a few rows instead of the whole table.
    """
    written = pattern
    pattern = phone.ascii_digits(pattern)
    if not _PATTERN.fullmatch(pattern):
        problems.add(
            ErrorCode.VALIDATION,
            f"{written!r} is not a pattern: digits, an optional leading '+', and '*'",
            ["filter", "pattern"],
        )
        return None
    pattern = _STARS.sub("*", pattern)
    if sum(c in "0123456789" for c in pattern) > MAX_DIGITS:
        # Valid, but no number has that many digits (and SQLite refuses LIKE patterns
        # over 50,000 bytes): nothing matches.
        return sa.false()
    if "*" not in pattern:
        if pattern.startswith("+"):
            return sa.and_(Number.e164 >= pattern, Number.e164 < _upper(pattern))
        contains = Number.e164.contains(pattern, autoescape=True)
        if trigram_table and len(pattern) >= _TRIGRAM:
            return sa.and_(_substring_prefilter(pattern), contains)
        return contains
    whole = pattern if pattern.startswith(("+", "*")) else "+" + pattern
    clauses: list[sa.ColumnElement[bool]] = [Number.e164.like(whole.replace("*", "%"))]
    literal_prefix = whole.split("*", 1)[0]
    if len(literal_prefix) > 1:
        # The literal head of the pattern lets the e164 index narrow the scan.
        clauses += [Number.e164 >= literal_prefix, Number.e164 < _upper(literal_prefix)]
    elif trigram_table:
        longest = max(whole.replace("+", "").split("*"), key=len)
        if len(longest) >= _TRIGRAM:
            clauses.append(_substring_prefilter(longest))
    return sa.and_(*clauses)
