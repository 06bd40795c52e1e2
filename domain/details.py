"""A number's descriptive fields (sku, capabilities, routing, tags, notes) and their rules.

addNumbers, editNumbers and the CSV import check these fields by the same rules.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from domain import text
from domain.errors import ErrorCode, Problems
from models import AfterHold, Capability, Number
from models.base import column_length

# Text bounds are the columns' sizes, read from the model (PostgreSQL refuses more).
MAX_SKU = column_length(Number.sku)
MAX_VENDOR = column_length(Number.vendor)
MAX_ROUTING = column_length(Number.routing)
MAX_DOMAIN = column_length(Number.visible_to_domain)
MAX_TAG = column_length(Number.tag)
MAX_RESERVATION_TAG = column_length(Number.reservation_tag)
# Notes are TEXT: this bound is the API's own.
MAX_NOTES = 4000
MAX_CAPACITY = 9999


def capability_mask(capabilities: Sequence[Capability]) -> int:
    mask = 0
    for capability in capabilities:
        mask |= capability
    return mask


def check_text(
    problems: Problems,
    value: str | None,
    field: str,
    *,
    limit: int,
    required: bool = False,
) -> None:
    """Report a text longer than `limit` (its column's size), or blank where required."""
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
    # What becomes of the number when a hold ends; None: its pool's policy decides. Set
    # (to a state, or back to None) only when `after_hold_given`.
    after_hold: AfterHold | None = None
    after_hold_given: bool = False
    # Channels at once (0 to MAX_CAPACITY); None: not limited. Set only when `capacity_given`.
    capacity: int | None = None
    capacity_given: bool = False

    def check(self, problems: Problems, *, creating: bool = False) -> None:
        check_text(problems, self.sku, "sku", required=creating, limit=MAX_SKU)
        if not creating and self.sku is not None and not self.sku.strip():
            problems.add(ErrorCode.VALIDATION, "sku must not be blank", ["input", "sku"])
        if self.capabilities is not None and not self.capabilities:
            problems.add(
                ErrorCode.VALIDATION, "give at least one capability", ["input", "capabilities"]
            )
        check_text(problems, self.routing, "routing", limit=MAX_ROUTING)
        check_text(problems, self.visible_to_domain, "visibleToDomain", limit=MAX_DOMAIN)
        check_text(problems, self.tag, "tag", limit=MAX_TAG)
        if self.notes is not None and len(self.notes) > MAX_NOTES:
            problems.add(
                ErrorCode.VALIDATION,
                f"notes are at most {MAX_NOTES} characters",
                ["input", "notes"],
            )
        text.check(problems, self.notes, "notes", free_text=True)
        capacity = self.capacity if self.capacity_given else None
        if capacity is not None and not 0 <= capacity <= MAX_CAPACITY:
            problems.add(
                ErrorCode.VALIDATION,
                f"capacity must be 0 to {MAX_CAPACITY}, or null (not limited)",
                ["input", "capacity"],
            )

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
        if self.after_hold_given:
            values["after_hold"] = self.after_hold
        if self.capacity_given:
            values["capacity"] = self.capacity
        return values
