"""A number cell written as a range: its two ends in any notation, and its size.

A range is two numbers, each in any notation a single number may be written in, joined
by a dash with space on both sides, or by a dash just before the second's "+":
"+6561000000-+6561000999", "+65 6100 0000 - +65 6100 0999", "6100 0000 - 6100 0999".
"""

import re

from domain import phone

MAX_RANGE = 100_000
DASHES = "-\u2013\uff0d"  # hyphen-minus, en dash, full-width hyphen-minus
_RANGE_DASH = re.compile(rf"\s+[{DASHES}]\s+|\s*[{DASHES}]\s*(?=[+\uff0b])")


def ends(text: str, country: str) -> tuple[str, str] | None:
    """The first and last number of a cell written as a range, in E.164; None if it is not.

    An end in international notation is taken as written ("+", "00" and digits between
    separators), unchecked: the range's numbers are checked one by one. An end in
    national notation must be a valid number of `country`. A cell that is not two
    such ends joined by a range's dash is a single number, or no number at all.
    """
    if _RANGE_DASH.search(text) is None:
        return None
    parts = _RANGE_DASH.split(text)
    if len(parts) != 2:
        return None
    first, last = (
        phone.as_written(part) or phone.normalise_for_country(part, country) for part in parts
    )
    if first is None or last is None:
        return None
    return first, last


def span(first: str, last: str) -> tuple[int, int] | str:
    """A range's first and last number as integers, or why it is not one to expand."""
    start, end = int(first[1:]), int(last[1:])
    if len(first) != len(last):
        return f"range ends {first} and {last} differ in length"
    if end < start:
        return f"range runs backwards: {first} is after {last}"
    if end - start >= MAX_RANGE:
        return f"range of {end - start + 1} numbers; at most {MAX_RANGE} a row"
    return start, end


def count(cell: str, country: str) -> int:
    """How many numbers a number cell names: a range's, if it is one to expand, else 1."""
    written = ends(cell, country)
    found = span(*written) if written is not None else None
    if found is None or isinstance(found, str):
        return 1
    return found[1] - found[0] + 1
