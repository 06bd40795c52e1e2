"""Numbers (DIDs) and their history."""

import enum
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, str_enum

# Search indexes made by migration 0003 in SQL of each database's own (FTS5 trigram
# on SQLite, pg_trgm on PostgreSQL); model/migration comparisons leave them out.
SEARCH_INDEX_OBJECTS = frozenset(
    {
        "numbers_fts",
        "numbers_fts_data",
        "numbers_fts_idx",
        "numbers_fts_docsize",
        "numbers_fts_config",
        "ix_numbers_e164_trgm",
    }
)


def is_mapped_object(_object: object, name: str | None, *_args: object) -> bool:
    """Alembic include_object hook: False for the hand-made search indexes."""
    return name not in SEARCH_INDEX_OBJECTS


class NumberState(enum.StrEnum):
    AVAILABLE = "AVAILABLE"
    RESERVED = "RESERVED"
    LOCKED = "LOCKED"
    ASSIGNED = "ASSIGNED"
    DELETED = "DELETED"
    # In a port order (models/porting.py): usable by nothing until the order closes.
    PORTING_IN = "PORTING_IN"
    PORTING_OUT = "PORTING_OUT"
    # Assigned, but kept from use for a while (non-payment, fraud, a regulator).
    BLOCKED = "BLOCKED"


class ReservationKind(enum.StrEnum):
    FREE = "FREE"
    CHARGED = "CHARGED"


class ReservationReason(enum.StrEnum):
    MANUAL = "MANUAL"
    SUBSCRIPTION_EXPIRED = "SUBSCRIPTION_EXPIRED"
    SUBSCRIPTION_TERMINATED = "SUBSCRIPTION_TERMINATED"
    SWAPPED_OUT = "SWAPPED_OUT"
    # The owner cancelled a paid term (cancelNumbers); held for it after the term ended.
    CANCELLED = "CANCELLED"


class DeletionReason(enum.StrEnum):
    PORTED_OUT = "PORTED_OUT"
    RETURNED_TO_VENDOR = "RETURNED_TO_VENDOR"
    FAULTY = "FAULTY"
    RETIRED = "RETIRED"
    # Its port-in order was cancelled or rejected.
    PORT_CANCELLED = "PORT_CANCELLED"


class AfterHold(enum.StrEnum):
    """What becomes of a number when a subscription, cancellation or swap hold ends."""

    AVAILABLE = "AVAILABLE"
    LOCKED = "LOCKED"
    DELETED = "DELETED"


class BlockReason(enum.StrEnum):
    NON_PAYMENT = "NON_PAYMENT"
    FRAUD = "FRAUD"
    REGULATORY = "REGULATORY"
    OTHER = "OTHER"


class RegistrationStatus(enum.StrEnum):
    NOT_REQUIRED = "NOT_REQUIRED"
    NOT_ASSIGNED = "NOT_ASSIGNED"
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class FeatureKind(enum.StrEnum):
    EMERGENCY = "EMERGENCY"
    A2P_SMS = "A2P_SMS"
    CNAM = "CNAM"


class FeatureStatus(enum.StrEnum):
    NOT_CONFIGURED = "NOT_CONFIGURED"
    NEW = "NEW"
    IN_PROCESS = "IN_PROCESS"
    ACTIVE = "ACTIVE"
    CHANGES_REQUIRED = "CHANGES_REQUIRED"
    PENDING = "PENDING"
    CANCELLATION_PENDING = "CANCELLATION_PENDING"


class QuickFilter(enum.StrEnum):
    """The customer's number tabs (DESIGN.md, "Quick filters"; domain/quick_filters.py)."""

    ALL = "ALL"
    ACTIVE = "ACTIVE"
    NOT_CONFIGURED = "NOT_CONFIGURED"
    AWAITING_REGISTRATION = "AWAITING_REGISTRATION"
    EXPIRING_SOON = "EXPIRING_SOON"
    TERMINATED = "TERMINATED"
    PORTING = "PORTING"
    BLOCKED = "BLOCKED"


class Capability(enum.IntFlag):
    """Stored as a bit set, so "has all of these" is one mask test."""

    VOICE = 1
    FAX = 2
    SMS = 4


# Indexed columns that most numbers leave null (Number.__table_args__).
_MOSTLY_NULL = (
    "paid_until",
    "blocked_until",
    "owner_id",
    "subscription_uuid",
    "held_for_subscription_uuid",
)


def _where_set(name: str, *columns: str) -> sa.Index:
    """An index of `columns` holding only the rows where the last of them is set."""
    where = sa.text(f"{columns[-1]} IS NOT NULL")
    return sa.Index(name, *columns, postgresql_where=where, sqlite_where=where)


class Number(Base):
    __tablename__ = "numbers"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    e164: Mapped[str] = mapped_column(
        sa.String(16).with_variant(sa.String(16, collation="C"), "postgresql"), unique=True
    )
    state: Mapped[NumberState] = mapped_column(str_enum(NumberState, "number_state"))
    country: Mapped[str] = mapped_column(sa.String(2))
    sku: Mapped[str] = mapped_column(sa.String(100))
    vendor: Mapped[str] = mapped_column(sa.String(100))
    # The operator named `vendor` (migration 0010 linked every number it found).
    operator_id: Mapped[int | None] = mapped_column(sa.ForeignKey("operators.id"), index=True)
    capabilities: Mapped[int] = mapped_column(sa.Integer)
    routing: Mapped[str | None] = mapped_column(sa.String(200))
    golden: Mapped[bool] = mapped_column(sa.Boolean)
    ported_in: Mapped[bool] = mapped_column(sa.Boolean)
    visible_to_domain: Mapped[str | None] = mapped_column(sa.String(200))
    tag: Mapped[str | None] = mapped_column(sa.String(200))
    notes: Mapped[str | None] = mapped_column(sa.Text)
    # The pool that holds the number.
    # Indexed first in ix_numbers_organization_id_state (migration 0021).
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"))
    series_id: Mapped[int | None] = mapped_column(sa.ForeignKey("series.id"), index=True)
    state_changed_at: Mapped[datetime]
    # When a reservation or lock lapses; null for ones that never do.
    expires_at: Mapped[datetime | None]

    reservation_kind: Mapped[ReservationKind | None] = mapped_column(
        str_enum(ReservationKind, "reservation_kind")
    )
    reservation_reason: Mapped[ReservationReason | None] = mapped_column(
        str_enum(ReservationReason, "reservation_reason")
    )
    reserved_for_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organizations.id"))
    reservation_tag: Mapped[str | None] = mapped_column(sa.String(200))
    reservation_remark: Mapped[str | None] = mapped_column(sa.Text)
    reserved_at: Mapped[datetime | None]
    did_reservation_uuid: Mapped[UUID | None] = mapped_column(sa.Uuid)
    # The subscription an automatic reservation holds the number for (reactivation).
    held_for_subscription_uuid: Mapped[UUID | None] = mapped_column(sa.Uuid)

    lock_remark: Mapped[str | None] = mapped_column(sa.Text)
    locked_at: Mapped[datetime | None]

    subscription_uuid: Mapped[UUID | None] = mapped_column(sa.Uuid)
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organizations.id"))

    deletion_reason: Mapped[DeletionReason | None] = mapped_column(
        str_enum(DeletionReason, "deletion_reason")
    )
    # Overrides the pool's policy when a hold ends; null: the policy's.
    after_hold: Mapped[AfterHold | None] = mapped_column(str_enum(AfterHold, "after_hold"))

    # The paid service term Numbra renews itself (domain/terms.py); null period: no term.
    billing_period_months: Mapped[int | None] = mapped_column(sa.Integer)
    paid_until: Mapped[datetime | None]
    # Renewals still to come; null: unlimited.
    billing_cycles: Mapped[int | None] = mapped_column(sa.Integer)
    cancelled_at: Mapped[datetime | None]

    # A block (BLOCKED only); the sweep unblocks at `blocked_until`, if set.
    block_reason: Mapped[BlockReason | None] = mapped_column(str_enum(BlockReason, "block_reason"))
    blocked_at: Mapped[datetime | None]
    blocked_until: Mapped[datetime | None]
    block_remark: Mapped[str | None] = mapped_column(sa.Text)

    # Facts integrations set (domain/customer.py): registration, features, capacity.
    registration_status: Mapped[RegistrationStatus] = mapped_column(
        str_enum(RegistrationStatus, "registration_status"), server_default="NOT_REQUIRED"
    )
    registration_identity_ref: Mapped[str | None] = mapped_column(sa.String(200))
    registration_updated_at: Mapped[datetime | None]
    registration_remark: Mapped[str | None] = mapped_column(sa.Text)
    # Feature kind -> {"status", "updatedAt" (ISO 8601), "remark"}; null: none set.
    features: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON(none_as_null=True))
    # Channels at once; null: not limited.
    capacity: Mapped[int | None] = mapped_column(sa.Integer)

    __table_args__ = (
        # Only reserved and held numbers expire (migration 0021).
        _where_set("ix_numbers_state_expires_at", "state", "expires_at"),
        sa.Index("ix_numbers_organization_id_state", "organization_id", "state"),
        # Columns most numbers leave null, indexed where set: every lookup is by value,
        # and a number added or moved without one writes no entry (migration 0020).
        *(_where_set(f"ix_numbers_{column}", column) for column in _MOSTLY_NULL),
    )


# A number as read: an ORM entity, or a Core row of the numbers table (same attribute
# names, a third cheaper to load; search pages read those).
NumberRecord = Number | sa.Row[Any]
NUMBER_COLUMNS = tuple(Number.__table__.c)


class NumberEvent(Base):
    __tablename__ = "number_events"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    number_id: Mapped[int] = mapped_column(sa.ForeignKey("numbers.id", ondelete="CASCADE"))
    # The pool the number was in once this happened: viewers read their pools' events.
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"))
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(sa.String(40))
    from_state: Mapped[NumberState | None] = mapped_column(str_enum(NumberState, "from_state"))
    to_state: Mapped[NumberState | None] = mapped_column(str_enum(NumberState, "to_state"))
    actor: Mapped[str] = mapped_column(sa.String(200))
    remark: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (
        sa.Index("ix_number_events_number_id_id", "number_id", "id"),
        # numberEvents: a pool's events, newest first (migration 0012), and of one action
        # (0018); one action's events across pools, newest first (0018).
        sa.Index("ix_number_events_organization_id_id", "organization_id", "id"),
        sa.Index("ix_number_events_organization_id_action_id", "organization_id", "action", "id"),
        sa.Index("ix_number_events_action_id", "action", "id"),
    )


class NumberStateCount(Base):
    """How many numbers each pool holds in each state, kept by triggers on numbers.

    The quick-filter tabs count a whole inventory on every page view; summing these
    rows costs a millisecond where counting a million numbers costs 170 (migration
    0005 makes the triggers). A count is the sum over its slots: SQLite keeps slot 0
    only; PostgreSQL writers each add a slot of their own, so no writer ever waits
    for another's counter, and the slots are folded back into slot 0 as they go.
    """

    __tablename__ = "number_state_counts"

    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id"), primary_key=True
    )
    state: Mapped[NumberState] = mapped_column(
        str_enum(NumberState, "number_state"), primary_key=True
    )
    slot: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(sa.BigInteger)

    # On SQLite a row trigger bumps a counter per number written: keyed by its primary
    # key alone, a bump reads one b-tree instead of two (~7 µs a number, not ~20).
    __table_args__ = {"sqlite_with_rowid": False}

    @classmethod
    def total(cls) -> sa.ColumnElement[int]:
        """The sum of `count`, as an integer (PostgreSQL sums bigints into numerics)."""
        return sa.cast(sa.func.sum(cls.count), sa.BigInteger)


class NumberSeriesCount(Base):
    """Per pool and series, its numbers not DELETED (allocated) and of those the AVAILABLE
    (unused), kept by triggers on numbers (migration 0019) the way NumberStateCount's
    are: slot 0 on SQLite, a slot per writing statement on PostgreSQL, folded back into
    slot 0 as they go. Numbers of no series are not counted."""

    __tablename__ = "number_series_counts"

    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id"), primary_key=True
    )
    series_id: Mapped[int] = mapped_column(primary_key=True)
    slot: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    allocated: Mapped[int] = mapped_column(sa.BigInteger)
    unused: Mapped[int] = mapped_column(sa.BigInteger)

    __table_args__ = {"sqlite_with_rowid": False}


class NumberQuickFilterCount(Base):
    """How many numbers each pool holds in each quick-filter tab, kept by triggers on numbers
    (migration 0015) the way NumberStateCount's are: slot 0 on SQLite, a slot per writing
    statement on PostgreSQL, folded back into slot 0 as they go."""

    __tablename__ = "number_quick_filter_counts"

    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id"), primary_key=True
    )
    quick_filter: Mapped[QuickFilter] = mapped_column(
        str_enum(QuickFilter, "quick_filter"), primary_key=True
    )
    slot: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(sa.BigInteger)

    __table_args__ = {"sqlite_with_rowid": False}

    @classmethod
    def total(cls) -> sa.ColumnElement[int]:
        return sa.cast(sa.func.sum(cls.count), sa.BigInteger)
