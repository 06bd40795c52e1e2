"""Expected failures, as data: a mutation reports every problem, then changes nothing."""

import enum
from collections.abc import Sequence
from dataclasses import dataclass


class ErrorCode(enum.StrEnum):
    VALIDATION = "VALIDATION"
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    QUANTITY_EXCEEDS_AVAILABLE = "QUANTITY_EXCEEDS_AVAILABLE"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    CONFLICT = "CONFLICT"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"


@dataclass(frozen=True)
class Problem:
    code: ErrorCode
    message: str
    field: tuple[str, ...] | None = None
    number: str | None = None


class DomainError(Exception):
    """The input or the current state refuses the request; nothing was changed."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        if not problems:
            raise ValueError("a DomainError needs at least one problem")
        self.problems = tuple(problems)
        super().__init__("; ".join(p.message for p in self.problems))

    @classmethod
    def one(
        cls,
        code: ErrorCode,
        message: str,
        field: Sequence[str] | None = None,
        number: str | None = None,
    ) -> "DomainError":
        return cls([Problem(code, message, tuple(field) if field else None, number)])


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

    def raise_if_any(self) -> None:
        if self._items:
            raise DomainError(self._items)
