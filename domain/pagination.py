"""Keyset pagination: a cursor is the sort key of the last row seen, never an offset."""

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from domain.errors import DomainError, ErrorCode

T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    first: int
    after: tuple[Any, ...] | None


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: Sequence[T]
    has_next: bool
    has_previous: bool


def encode_cursor(*key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def page_request(
    first: int | None, after: str | None, max_page_size: int, key_type: type = str
) -> PageRequest:
    """Validate `first` and `after` (a cursor whose key is of `key_type`)."""
    if first is None:
        first = max_page_size
    if first < 0 or first > max_page_size:
        raise DomainError.one(
            ErrorCode.VALIDATION, f"first must be between 0 and {max_page_size}", ["first"]
        )
    if after is None:
        return PageRequest(first, None)
    try:
        key = json.loads(base64.urlsafe_b64decode(after.encode()))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        key = None
    if not isinstance(key, list) or not key or not all(type(part) is key_type for part in key):
        raise DomainError.one(ErrorCode.VALIDATION, "after is not a cursor of this list", ["after"])
    return PageRequest(first, tuple(key))


def make_page(rows: Sequence[T], request: PageRequest) -> Page[T]:
    """`rows` were fetched with limit first + 1: the extra row only says there is more."""
    return Page(
        rows=rows[: request.first],
        has_next=len(rows) > request.first,
        has_previous=request.after is not None,
    )
