"""Expected failures, as data: a mutation reports every problem, then changes nothing."""

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

# Work a refused request keeps: done in a transaction of its own once the request's is
# rolled back (the count of intake answers about numbers held elsewhere).
Kept = Callable[["AsyncSession"], Awaitable[None]]


class ErrorCode(enum.StrEnum):
    VALIDATION = "VALIDATION"
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    QUANTITY_EXCEEDS_AVAILABLE = "QUANTITY_EXCEEDS_AVAILABLE"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    CONFLICT = "CONFLICT"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    # The token's allowance is spent for now; retry after it resets.
    RATE_LIMITED = "RATE_LIMITED"


@dataclass(frozen=True)
class Problem:
    code: ErrorCode
    message: str
    field: tuple[str, ...] | None = None
    number: str | None = None


class DomainError(Exception):
    """The input or the current state refuses the request; nothing was changed."""

    def __init__(self, problems: Sequence[Problem], keep: Kept | None = None) -> None:
        if not problems:
            raise ValueError("a DomainError needs at least one problem")
        self.problems = tuple(problems)
        # Run by `domain.transactions.write` after the rollback, in a transaction of its own.
        self.keep = keep
        super().__init__("; ".join(p.message for p in self.problems))

    @classmethod
    def one(
        cls,
        code: ErrorCode,
        message: str,
        field: Sequence[str] | None = None,
        number: str | None = None,
        keep: Kept | None = None,
    ) -> "DomainError":
        return cls([Problem(code, message, tuple(field) if field else None, number)], keep)


class Problems:
    """Collects every problem of one request before anything is applied."""

    def __init__(self) -> None:
        self._items: list[Problem] = []

    def add(
        self,
        code: ErrorCode,
        message: str,
        field: Sequence[str] | None = None,
        number: str | None = None,
    ) -> None:
        self._items.append(Problem(code, message, tuple(field) if field else None, number))

    def extend(self, error: DomainError) -> None:
        self._items.extend(error.problems)

    def __bool__(self) -> bool:
        return bool(self._items)

    def raise_if_any(self, keep: Kept | None = None) -> None:
        if self._items:
            raise DomainError(self._items, keep)
