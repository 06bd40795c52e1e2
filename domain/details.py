"""A number's descriptive fields (sku, capabilities, routing, tags, notes) and their rules.

addNumbers, editNumbers and the CSV import check these fields by the same rules.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from domain import text
from domain.errors import ErrorCode, Problems
from models import Capability

MAX_TEXT = 200
MAX_CODE = 100  # sku and vendor columns


def capability_mask(capabilities: Sequence[Capability]) -> int:
    mask = 0
    for capability in capabilities:
        mask |= capability
    return mask


def check_text(
    problems: Problems,
    value: str | None,
    field: str,
    required: bool = False,
    limit: int = MAX_TEXT,
) -> None:
    if value is None:
        if required:
            problems.add(ErrorCode.VALIDATION, f"{field} is required", ["input", field])
        return
    if (required and not value.strip()) or len(value) > limit:
        problems.add(
            ErrorCode.VALIDATION, f"{field} must be 1 to {limit} characters", ["input", field]
        )
    text.check(problems, value, field)


@dataclass(frozen=True)
class NumberDetails:
    """Descriptive fields of a number; None means "leave as it is"."""

    sku: str | None = None
    capabilities: Sequence[Capability] | None = None
    routing: str | None = None
    golden: bool | None = None
    ported_in: bool | None = None
    visible_to_domain: str | None = None
    tag: str | None = None
    notes: str | None = None

    def check(self, problems: Problems, *, creating: bool = False) -> None:
        check_text(problems, self.sku, "sku", required=creating, limit=MAX_CODE)
        if not creating and self.sku is not None and not self.sku.strip():
            problems.add(ErrorCode.VALIDATION, "sku must not be blank", ["input", "sku"])
        if self.capabilities is not None and not self.capabilities:
            problems.add(
                ErrorCode.VALIDATION, "give at least one capability", ["input", "capabilities"]
            )
        check_text(problems, self.routing, "routing")
        check_text(problems, self.visible_to_domain, "visibleToDomain")
        check_text(problems, self.tag, "tag")
        if self.notes is not None and len(self.notes) > 4000:
            problems.add(
                ErrorCode.VALIDATION, "notes are at most 4000 characters", ["input", "notes"]
            )
        text.check(problems, self.notes, "notes", free_text=True)

    def values(self) -> dict[str, Any]:
        given = {
            "sku": self.sku.strip() if self.sku is not None else None,
            "capabilities": capability_mask(self.capabilities) if self.capabilities else None,
            "routing": self.routing,
            "golden": self.golden,
            "ported_in": self.ported_in,
            "visible_to_domain": self.visible_to_domain,
            "tag": self.tag,
            "notes": self.notes,
        }
        values: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        # An empty text clears an optional field.
        for column in ("routing", "visible_to_domain", "tag", "notes"):
            if values.get(column) == "":
                values[column] = None
        return values
