"""An import row's state and the columns that state needs, checked as the move into it.

An operator moving from another system brings numbers in every state: reserved for
someone until a time, assigned to a subscription and an owner, locked, deleted for a
reason. A row names its state and fills the columns of that state (the export's
names; `domain.lifecycle.FILLED_IN` says which state each belongs to) and no others.
Each is checked as the move into that state would check it: a reservation ends in
the future, a free one within the free period, a charged one names its DID
Reservation subscription, a hold names the subscription it is held for; an
assignment names its subscription; a deletion its reason. The organizations a row
names (the holder of a reservation, the owner of an assignment) are resolved per
chunk by `domain.csv.imports`, which refuses any outside the pool's subtree.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypeVar
from uuid import UUID

from domain import lifecycle, terms, times
from domain.csv import exports
from domain.details import MAX_CAPACITY
from domain.policy import Policy
from domain.text import refusal
from models import (
    BlockReason,
    DeletionReason,
    FeatureKind,
    FeatureStatus,
    Number,
    NumberState,
    RegistrationStatus,
    ReservationKind,
    ReservationReason,
)
from models.base import column_length

AVAILABLE, RESERVED, LOCKED, ASSIGNED, DELETED, BLOCKED = (
    NumberState.AVAILABLE,
    NumberState.RESERVED,
    NumberState.LOCKED,
    NumberState.ASSIGNED,
    NumberState.DELETED,
    NumberState.BLOCKED,
)

E = TypeVar(
    "E", ReservationKind, ReservationReason, DeletionReason, BlockReason, RegistrationStatus
)

# The file's column for each state column of a number.
CELL = {
    "expires_at": "expires_at",
    "reservation_kind": "reservation_kind",
    "reservation_reason": "reservation_reason",
    "reserved_for_id": "reserved_for",
    "reservation_tag": "reservation_tag",
    "reservation_remark": "reservation_remark",
    "reserved_at": "reservation_starts_at",
    "did_reservation_uuid": "did_reservation_uuid",
    "held_for_subscription_uuid": "held_for_subscription_uuid",
    "lock_remark": "lock_remark",
    "locked_at": "locked_at",
    "subscription_uuid": "subscription_uuid",
    "owner_id": "owner_uuid",
    "deletion_reason": "deletion_reason",
    "billing_period_months": "billing_period_months",
    "paid_until": "paid_until",
    "billing_cycles": "billing_cycles",
    "cancelled_at": "cancelled_at",
    "block_reason": "block_reason",
    "blocked_at": "blocked_at",
    "blocked_until": "blocked_until",
    "block_remark": "block_remark",
    # Facts of any state (they are not FILLED_IN's).
    "registration_status": "registration_status",
    "registration_identity_ref": "registration_identity_ref",
    "capacity": "capacity",
    "features": "features",
}
# Columns any state may fill.
ANY_STATE = ("registration_status", "registration_identity_ref", "capacity", "features")
COLUMNS = tuple(CELL.values())
_IDENTITY_LENGTH = column_length(Number.registration_identity_ref)
_TAG_LENGTH = column_length(Number.reservation_tag)
# The reservations that hold a number for a subscription that ended, and their periods.
_HOLDS = {
    ReservationReason.SUBSCRIPTION_EXPIRED: "expired_hold",
    ReservationReason.SUBSCRIPTION_TERMINATED: "terminated_hold",
    ReservationReason.SWAPPED_OUT: "swap_hold",
}


class Standing(NamedTuple):
    """A row's state columns as they are stored, but for organizations, still named."""

    values: dict[str, Any]
    # The organization references of the row, by column: reserved_for_id, owner_id.
    organizations: dict[str, str]


@dataclass(frozen=True)
class Rules:
    """What the moves into each state allow, at the time of the import."""

    now: datetime
    policy: Policy

    def check(
        self, state: NumberState, cell: dict[str, str], reasons: list[str]
    ) -> Standing | None:
        """The row's state columns, or None with the reasons they are wrong."""
        given = {column: text for column, name in CELL.items() if (text := cell.get(name, ""))}
        before = len(reasons)
        for column in given:
            if column not in ANY_STATE and state not in lifecycle.FILLED_IN[column]:
                states = " or ".join(lifecycle.FILLED_IN[column])
                reasons.append(f"{CELL[column]} is for {states} numbers, not {state}")
        if len(reasons) > before:
            return None
        read = _Reader(given, reasons)
        values: dict[str, Any] = {}
        organizations: dict[str, str] = {}
        if state is RESERVED:
            self._reservation(read, values, organizations, reasons)
        elif state in (ASSIGNED, BLOCKED):
            values["subscription_uuid"] = read.uuid("subscription_uuid", required=True)
            if (owner := read.text("owner_id")) is not None:
                organizations["owner_id"] = owner
            self._term(read, values, reasons)
            if state is BLOCKED:
                self._block(read, values, reasons)
        elif state is LOCKED:
            values["locked_at"] = read.time("locked_at") or self.now
            values["lock_remark"] = read.free_text("lock_remark")
            values["expires_at"] = read.time("expires_at")
            if values["locked_at"] > self.now:
                reasons.append("locked_at is in the future")
            if values["expires_at"] is not None and values["expires_at"] <= self.now:
                reasons.append("expires_at has passed: the lock would have lapsed")
        elif state is DELETED:
            values["deletion_reason"] = read.member("deletion_reason", DeletionReason, True)
        _facts(read, values, reasons, self.now)
        if len(reasons) > before:
            return None
        return Standing(values, organizations)

    def _block(self, read: "_Reader", values: dict[str, Any], reasons: list[str]) -> None:
        values["block_reason"] = read.member("block_reason", BlockReason, True)
        values["blocked_at"] = read.time("blocked_at") or self.now
        values["blocked_until"] = read.time("blocked_until")
        values["block_remark"] = read.free_text("block_remark")
        if values["blocked_at"] > self.now:
            reasons.append("blocked_at is in the future")
        if values["blocked_until"] is not None and values["blocked_until"] <= self.now:
            reasons.append("blocked_until has passed: the block would have ended")

    def _reservation(
        self,
        read: "_Reader",
        values: dict[str, Any],
        organizations: dict[str, str],
        reasons: list[str],
    ) -> None:
        kind = read.member("reservation_kind", ReservationKind) or ReservationKind.FREE
        reason = read.member("reservation_reason", ReservationReason) or ReservationReason.MANUAL
        expires_at = read.time("expires_at", required=True)
        reserved_at = read.time("reserved_at") or self.now
        did = read.uuid("did_reservation_uuid")
        held_for = read.uuid("held_for_subscription_uuid")
        values.update(
            reservation_kind=kind,
            reservation_reason=reason,
            expires_at=expires_at,
            reserved_at=reserved_at,
            did_reservation_uuid=did,
            held_for_subscription_uuid=held_for,
            reservation_tag=read.line("reservation_tag", _TAG_LENGTH),
            reservation_remark=read.free_text("reservation_remark"),
        )
        if (holder := read.text("reserved_for_id")) is not None:
            organizations["reserved_for_id"] = holder
        # A number held after its term ended keeps the term's period and cycles.
        values["billing_period_months"] = read.period()
        values["billing_cycles"] = read.cycles()
        if values["billing_period_months"] is not None and reason not in terms.ENDED:
            names = " or ".join(terms.ENDED)
            reasons.append(f"billing_period_months is for numbers held for {names}")
        if values["billing_cycles"] is not None and values["billing_period_months"] is None:
            reasons.append("billing_cycles needs billing_period_months")
        if reserved_at > self.now:
            reasons.append("reservation_starts_at is in the future")
        if kind is ReservationKind.CHARGED and did is None and "did_reservation_uuid" in read.ok:
            reasons.append("a CHARGED reservation needs its did_reservation_uuid")
        if kind is ReservationKind.FREE and did is not None:
            reasons.append("did_reservation_uuid is for CHARGED reservations")
        hold = _HOLDS.get(reason)
        if hold is not None and kind is ReservationKind.CHARGED:
            reasons.append(f"a reservation for {reason} is FREE")
        if hold is not None and held_for is None and "held_for_subscription_uuid" in read.ok:
            reasons.append(f"a reservation for {reason} needs its held_for_subscription_uuid")
        if hold is None and held_for is not None:
            reasons.append("held_for_subscription_uuid is for numbers held after a subscription")
        if expires_at is None:
            return
        if expires_at <= self.now:
            reasons.append("expires_at has passed: the reservation would have lapsed")
        period = self.policy.free_reservation if hold is None else getattr(self.policy, hold)
        if kind is ReservationKind.FREE and expires_at > self.now + period:
            reasons.append(
                f"expires_at is more than {period.days} days away, the most a FREE "
                f"reservation for {reason} may be"
            )

    def _term(self, read: "_Reader", values: dict[str, Any], reasons: list[str]) -> None:
        """An assignment's billing term: none, or a period and what is paid, as
        assignNumbers checks it (a cancellation already made may come with it)."""
        period, paid_until = read.period(), read.time("paid_until")
        cycles, cancelled_at = read.cycles(), read.time("cancelled_at")
        if period is None and paid_until is None:
            if cycles is not None or cancelled_at is not None:
                reasons.append("billing_cycles and cancelled_at need a billing term")
            return
        if period is None or paid_until is None:
            reasons.append("a billing term needs both billing_period_months and paid_until")
            return
        if paid_until <= self.now:
            reasons.append("paid_until has passed: the term would have renewed or ended")
        if cancelled_at is not None and cancelled_at > self.now:
            reasons.append("cancelled_at is in the future")
        values.update(
            billing_period_months=period,
            paid_until=paid_until,
            billing_cycles=cycles,
            cancelled_at=cancelled_at,
        )


def _facts(read: "_Reader", values: dict[str, Any], reasons: list[str], now: datetime) -> None:
    """Registration, capacity and features: given, they are set in any state."""
    if (status := read.member("registration_status", RegistrationStatus)) is not None:
        values["registration_status"] = status
        values["registration_updated_at"] = now
        values["registration_identity_ref"] = read.line(
            "registration_identity_ref", _IDENTITY_LENGTH
        )
    elif read.text("registration_identity_ref") is not None:
        reasons.append("registration_identity_ref needs its registration_status")
    if (capacity := read.text("capacity")) is not None:
        if not capacity.isdigit() or int(capacity) > MAX_CAPACITY:
            reasons.append(f"capacity must be 0 to {MAX_CAPACITY}, not {capacity!r}")
        else:
            values["capacity"] = int(capacity)
    if (features := read.text("features")) is not None:
        found = parse_features(features)
        if isinstance(found, str):
            reasons.append(found)
        else:
            values["features"] = {
                kind: {"status": status, "updatedAt": now.isoformat(), "remark": None}
                for kind, status in found.items()
            }


def parse_features(text: str) -> dict[str, str] | str:
    """ "EMERGENCY:ACTIVE|CNAM:NEW" as kind -> status, or what is wrong with it."""
    found: dict[str, str] = {}
    for part in text.split("|"):
        kind, _, status = part.strip().partition(":")
        kind, status = kind.strip().upper(), status.strip().upper()
        if kind not in FeatureKind.__members__ or status not in FeatureStatus.__members__:
            kinds, statuses = ", ".join(FeatureKind), ", ".join(FeatureStatus)
            return f"features: {part.strip()!r} is not KIND:STATUS ({kinds}; {statuses})"
        found[kind] = status
    return found


class _Reader:
    """The given cells of a row, read as their types; each problem added to `reasons`."""

    def __init__(self, given: dict[str, str], reasons: list[str]) -> None:
        self.given = given
        self.reasons = reasons
        # Columns given well, or not given: a rule about a missing one is said once.
        self.ok = set(CELL) - set(given)

    def text(self, column: str) -> str | None:
        text = exports.unguard_text(self.given.get(column, "")).strip() or None
        if text is not None:
            self.ok.add(column)
        return text

    def line(self, column: str, length: int) -> str | None:
        text = self.text(column)
        if text is None:
            return None
        refused = refusal(text, CELL[column])
        if refused is not None:
            self.reasons.append(refused)
        if len(text) > length:
            self.reasons.append(f"{CELL[column]} must be at most {length} characters")
        return text

    def free_text(self, column: str) -> str | None:
        text = exports.unguard_text(self.given.get(column, "")) or None
        if text is not None and (refused := refusal(text, CELL[column], free_text=True)):
            self.reasons.append(refused)
        return text

    def time(self, column: str, required: bool = False) -> datetime | None:
        text = self.given.get(column, "").strip()
        if not text:
            self._missing(column, required)
            return None
        try:
            moment = times.parse_aware(text)
        except ValueError as exc:
            self.reasons.append(f"{CELL[column]}: {exc}")
            self.ok.discard(column)
            return None
        return moment

    def uuid(self, column: str, required: bool = False) -> UUID | None:
        text = self.given.get(column, "").strip()
        if not text:
            self._missing(column, required)
            return None
        try:
            return UUID(text)
        except ValueError:
            self.reasons.append(f"{CELL[column]} {text!r} is not a UUID")
            self.ok.discard(column)
            return None

    def integer(self, column: str, allowed: range | tuple[int, ...], says: str) -> int | None:
        text = self.given.get(column, "").strip()
        if not text:
            return None
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value not in allowed:
            self.reasons.append(f"{CELL[column]} must be {says}, not {text!r}")
            self.ok.discard(column)
            return None
        return value

    def period(self) -> int | None:
        return self.integer("billing_period_months", terms.PERIODS, "1, 3, 6 or 12")

    def cycles(self) -> int | None:
        maximum = terms.MAX_CYCLES
        return self.integer(
            "billing_cycles", range(maximum + 1), f"0 to {maximum} (empty: unlimited)"
        )

    def member(self, column: str, kind: type[E], required: bool = False) -> E | None:
        text = self.given.get(column, "").strip()
        if not text:
            self._missing(column, required)
            return None
        member = kind.__members__.get(text.upper())
        if member is None:
            names = ", ".join(kind.__members__)
            self.reasons.append(f"{CELL[column]} must be one of {names}, not {text!r}")
            self.ok.discard(column)
        return member

    def _missing(self, column: str, required: bool) -> None:
        if required:
            self.reasons.append(f"{CELL[column]} is needed for this state")
            self.ok.discard(column)
