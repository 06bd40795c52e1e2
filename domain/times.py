"""Times as input gives them: ISO-8601 with an offset, held in UTC.

A time is checked once where it enters (the DateTime scalar, the CSV routes' and the
CLI's filters): moved to UTC there, so one whose offset carries it past the years 1 to
9999 (9999-12-31T23:59:59-14:00) is refused as bad input, not found later by the
database driver or an export half written.
"""

from datetime import UTC, datetime

EXAMPLE = "2026-03-02T09:00:00Z"


def parse_aware(text: str) -> datetime:
    """The time `text` gives, in UTC. ValueError says why it is not one."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 time, e.g. {EXAMPLE}") from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no offset: give one, e.g. {EXAMPLE}")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"{text!r} is out of range: in UTC it falls outside the years 1 to 9999"
        ) from None
