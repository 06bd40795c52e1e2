"""An import row's cells other than its number: checked as addNumbers checks them."""

from dataclasses import dataclass
from typing import NamedTuple

from domain import phone
from domain.csv import exports, parameters
from domain.csv.states import Rules, Standing
from domain.details import NumberDetails, capability_mask
from domain.errors import DomainError, Problems
from domain.text import refusal
from models import Capability, Number, NumberState
from models.base import column_length

# A number enters PORTING_IN or PORTING_OUT only through a port order (domain/porting.py).
IMPORTABLE_STATES = tuple(
    state for state in NumberState if state not in (NumberState.PORTING_IN, NumberState.PORTING_OUT)
)
# Columns narrower than the API's rule for text.
_COLUMN_LENGTH = {"vendor": column_length(Number.vendor), "sku": column_length(Number.sku)}


class Fields(NamedTuple):
    """A row's columns other than its number, as they are stored."""

    state: NumberState
    country: str
    sku: str
    vendor: str
    capabilities: int
    routing: str | None
    golden: bool
    ported_in: bool
    visible_to_domain: str | None
    tag: str | None
    notes: str | None


@dataclass(frozen=True)
class Checked:
    """What the cells other than the number come to: fields, or reasons they are wrong."""

    fields: Fields | None
    # The country numbers are checked against, if it is one.
    country: str | None
    reasons: tuple[str, ...]
    # The columns of the row's state, if it is not AVAILABLE.
    standing: Standing | None = None


def check(cell: dict[str, str], rules: Rules) -> Checked:
    reasons: list[str] = []

    def text(name: str) -> str | None:
        return exports.unguard_text(cell.get(name, "")) or None

    country = cell["country"].strip().upper()
    if not phone.is_country(country):
        reasons.append(f"{country!r} is not an ISO 3166-1 country")
    given = {name: text(name) or "" for name in ("vendor", "sku")}
    vendor, sku = given["vendor"].strip(), given["sku"].strip()
    for name, value in (("vendor", vendor), ("sku", sku)):
        if not value or len(value) > _COLUMN_LENGTH[name]:
            reasons.append(f"{name} must be 1 to {_COLUMN_LENGTH[name]} characters")
        if (refused := refusal(given[name], name)) is not None:
            reasons.append(refused)
    capabilities = _capabilities(cell.get("capabilities", ""), reasons)
    golden = _flag(cell, "golden", reasons)
    ported_in = _flag(cell, "ported_in", reasons)
    state = _state(cell.get("state", ""), reasons)
    standing = rules.check(state, cell, reasons)
    # The remaining text rules are addNumbers' own (sku and vendor: their columns').
    details = NumberDetails(
        capabilities=capabilities,
        routing=text("routing"),
        visible_to_domain=text("visible_to_domain"),
        tag=text("tag"),
        notes=text("notes"),
    )
    add_reasons(details, reasons)
    if reasons:
        return Checked(None, country if phone.is_country(country) else None, tuple(reasons))
    fields = Fields(
        state=state,
        country=country,
        sku=sku,
        vendor=vendor,
        capabilities=int(capability_mask(capabilities or [Capability.VOICE])),
        routing=details.routing,
        golden=golden,
        ported_in=ported_in,
        visible_to_domain=details.visible_to_domain,
        tag=details.tag,
        notes=details.notes,
    )
    return Checked(fields, country, (), standing)


def add_reasons(details: NumberDetails, reasons: list[str]) -> None:
    """What addNumbers' rules say is wrong with `details`."""
    problems = Problems()
    details.check(problems)
    try:
        problems.raise_if_any()
    except DomainError as error:
        reasons.extend(problem.message for problem in error.problems)


def _capabilities(text: str, reasons: list[str]) -> list[Capability] | None:
    if not text.strip():
        return None
    found = []
    for name in text.split("|"):
        member = Capability.__members__.get(name.strip().upper())
        if member is None:
            reasons.append(f"{name.strip()!r} is not a capability: VOICE, FAX or SMS")
            return None
        found.append(member)
    return found


def _flag(cell: dict[str, str], name: str, reasons: list[str]) -> bool:
    text = cell.get(name, "")
    if not text.strip():
        return False
    flag = parameters.parse_bool(text)
    if flag is None:
        reasons.append(f"{name} must be true or false, not {text!r}")
    return bool(flag)


def _state(text: str, reasons: list[str]) -> NumberState:
    if not text.strip():
        return NumberState.AVAILABLE
    state = NumberState.__members__.get(text.strip().upper())
    if state is None or state not in IMPORTABLE_STATES:
        reasons.append(f"state must be one of {', '.join(IMPORTABLE_STATES)}, not {text!r}")
        return NumberState.AVAILABLE
    return state
