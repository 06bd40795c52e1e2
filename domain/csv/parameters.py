"""The CSV routes' and the CLI's parameters as text: the export filter, flags and ids.

The filter arrives as `key=value` pairs (HTTP query parameters or the CLI's
`--filter`) and is parsed here, so both front ends accept the same language.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from domain import ids, organizations
from domain.errors import ErrorCode, Problems
from domain.operators import TYPE_NAME as OPERATOR_TYPE
from domain.search import NumberFilter
from domain.series import TYPE_NAME as SERIES_TYPE
from domain.times import parse_aware
from models import Capability, DeletionReason, NumberState, ReservationReason

_LIST_FIELDS = {
    "states",
    "numbers",
    "capabilities",
    "reservation_reasons",
    "deletion_reasons",
    "operator_ids",
}
_TEXT_FIELDS = {
    "pattern",
    "sku",
    "vendor",
    "country",
    "routing",
    "visible_to_domain",
    "tag",
    "notes",
}
_ENUM_LISTS: dict[str, Any] = {
    "states": NumberState,
    "capabilities": Capability,
    "reservation_reasons": ReservationReason,
    "deletion_reasons": DeletionReason,
}
_ORGANIZATION_FIELDS = {"organization_id", "reserved_for_id"}
_BOOL_FIELDS = {"golden", "ported_in", "include_descendants"}
_UUID_FIELDS = {"subscription_uuid", "owner_uuid"}
_ID_FIELDS = {
    "series_id": SERIES_TYPE,
    "organization_id": organizations.TYPE_NAME,
    "reserved_for_id": organizations.TYPE_NAME,
}
FILTER_FIELDS = frozenset(
    _LIST_FIELDS | _TEXT_FIELDS | _BOOL_FIELDS | _UUID_FIELDS | set(_ID_FIELDS) | {"expires_before"}
)
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}


def parse_bool(text: str) -> bool | None:
    lowered = text.strip().lower()
    return True if lowered in _TRUE else False if lowered in _FALSE else None


def filter_from_params(pairs: Iterable[tuple[str, str]], problems: Problems) -> NumberFilter:
    """A NumberFilter from `key=value` pairs, e.g. states=AVAILABLE,RESERVED&golden=true.

    Lists are comma-separated, or the key is repeated. Ids may be global ids or
    bare UUIDs. Every problem is reported, each naming its field.
    """
    values: dict[str, Any] = {}
    for key, text in pairs:
        if "\x00" in text:
            # Refused as GraphQL refuses it: PostgreSQL cannot take it even in a comparison.
            message = f"{key} may not contain NUL (\\u0000) characters"
            problems.add(ErrorCode.VALIDATION, message, ["filter", key])
        elif key not in FILTER_FIELDS:
            problems.add(
                ErrorCode.VALIDATION,
                f"{key!r} is not a filter field; use one of {', '.join(sorted(FILTER_FIELDS))}",
                ["filter", key],
            )
        elif key in _LIST_FIELDS:
            items = [item.strip() for item in text.split(",") if item.strip()]
            values.setdefault(key, []).extend(_list_items(key, items, problems))
        elif key in values:
            problems.add(ErrorCode.VALIDATION, f"{key} is given twice", ["filter", key])
        else:
            value = _scalar(key, text, problems)
            if value is not None:
                values[key] = value
    return NumberFilter(**values)


def _scalar(key: str, text: str, problems: Problems) -> Any:
    """The value of a one-valued filter field, or None (and a problem) if it is not one."""
    field = ["filter", key]
    if key in _TEXT_FIELDS:
        return text
    if key in _BOOL_FIELDS:
        flag = parse_bool(text)
        if flag is None:
            problems.add(ErrorCode.VALIDATION, f"{key} must be true or false", field)
        return flag
    if key in _UUID_FIELDS:
        key_uuid = _uuid(text)
        if key_uuid is None:
            problems.add(ErrorCode.VALIDATION, f"{text!r} is not a UUID", field)
        return key_uuid
    if key in _ORGANIZATION_FIELDS and organizations.key_of(text) is None:
        problems.add(ErrorCode.VALIDATION, organizations.not_a_reference(text), field)
        return None
    if key in _ID_FIELDS:
        return global_id(text, _ID_FIELDS[key])
    return _aware_time(text, field, problems)


def _list_items(key: str, items: list[str], problems: Problems) -> list[Any]:
    if key == "numbers":
        return items
    if key == "operator_ids":
        return [global_id(item, OPERATOR_TYPE) for item in items]
    names = _ENUM_LISTS[key]
    found = []
    for item in items:
        member = names.__members__.get(item.upper())
        if member is None:
            choices = ", ".join(names.__members__)
            problems.add(ErrorCode.VALIDATION, f"{item!r} is not one of {choices}", ["filter", key])
        else:
            found.append(member)
    return found


def global_id(text: str, type_name: str) -> str:
    """The global id `text` is, or the one of a bare UUID (easier to type on a command line)."""
    key = _uuid(text)
    return ids.encode(type_name, key) if key is not None else text.strip()


def _uuid(text: str) -> UUID | None:
    try:
        return UUID(text.strip())
    except ValueError:
        return None


def _aware_time(text: str, field: list[str], problems: Problems) -> datetime | None:
    try:
        return parse_aware(text)
    except ValueError as error:
        problems.add(ErrorCode.VALIDATION, str(error), field)
        return None
