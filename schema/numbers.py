"""Number, its reservation, lock and history; the number inputs and payload."""

import dataclasses
import enum
import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import strawberry

from domain import allowed, ids
from domain.events import LiveEvent
from domain.pagination import Page, encode_cursor, page_request
from domain.search import PAGE_KEY_COLUMNS
from models import Capability as CapabilityFlag
from models import DeletionReason as DeletionReasonModel
from models import NumberEvent as NumberEventRow
from models import NumberState as NumberStateModel
from models import ReservationKind as ReservationKindModel
from models import ReservationReason as ReservationReasonModel
from models.numbers import NUMBER_COLUMNS, NumberRecord
from schema.common import BY_ID_OR_UUID, OWNER_UUID, CountedConnection, Node, PageInfo, UserError
from schema.context import Info
from schema.customer import Block, NumberAction, NumberFeature, Registration
from schema.organizations import OrganizationType
from schema.policy import AfterHoldState
from schema.series import SeriesType
from schema.terms import BillingTerm, BillingTermInput

if TYPE_CHECKING:
    from schema.operators import OperatorType
    from schema.porting import PortOrderType

TYPE_NAME = "Number"
# The states of a number in an open port order.
PORTING = (NumberStateModel.PORTING_IN, NumberStateModel.PORTING_OUT)

NumberState = strawberry.enum(NumberStateModel, name="NumberState")
ReservationKind = strawberry.enum(ReservationKindModel, name="ReservationKind")
ReservationReason = strawberry.enum(
    ReservationReasonModel, name="ReservationReason", description="Why a number is reserved."
)
DeletionReason = strawberry.enum(DeletionReasonModel, name="DeletionReason")


@strawberry.enum
class Capability(enum.Enum):
    VOICE = "VOICE"
    FAX = "FAX"
    SMS = "SMS"

    @property
    def flag(self) -> CapabilityFlag:
        return CapabilityFlag[self.name]


@functools.cache
def capabilities_of(mask: int) -> list[Capability]:
    """One list per mask, shared by every number with it (never changed after)."""
    return [c for c in Capability if mask & c.flag]


async def _organization(info: Info, org_id: int | None) -> OrganizationType | None:
    if org_id is None:
        return None
    row = await info.context.loaders.organization.load(org_id)
    return OrganizationType.from_row(row) if row is not None else None


@strawberry.type
class Reservation:
    row: strawberry.Private[NumberRecord]
    kind: ReservationKind  # type: ignore[valid-type]
    reason: ReservationReason  # type: ignore[valid-type]
    tag: str | None
    remark: str | None
    starts_at: datetime
    expires_at: datetime | None = strawberry.field(
        description="Null only for reservations that never lapse."
    )
    did_reservation_uuid: UUID | None

    @strawberry.field(description="The organization the number is held for.")
    async def reserved_for(self, info: Info) -> OrganizationType | None:
        return await _organization(info, self.row.reserved_for_id)


@strawberry.type
class Lock:
    remark: str | None
    locked_at: datetime
    expires_at: datetime | None = strawberry.field(description="Null for a permanent lock.")


@strawberry.type
class NumberEvent:
    organization_id: strawberry.Private[int]
    at: datetime
    action: str = strawberry.field(
        description="What happened, e.g. ADDED, RESERVED, EXTENDED, RELEASED, ASSIGNED, LOCKED, "
        "UNLOCKED, DELETED, RECOVERED, ALLOCATED, WITHDRAWN, EXPIRED, LOCKED_AFTER_HOLD, "
        "RETIRED, EDITED, NOTIFIED, BLOCKED, UNBLOCKED, REGISTRATION_CHANGED, FEATURE_CHANGED."
    )
    from_state: NumberState | None  # type: ignore[valid-type]
    to_state: NumberState | None  # type: ignore[valid-type]
    actor: str = strawberry.field(description='Who did it: a token\'s name, or "system" for jobs.')
    remark: str | None
    e164: str = strawberry.field(description="The number the event happened to, in E.164.")

    @classmethod
    def from_row(cls, row: NumberEventRow | LiveEvent, e164: str) -> "NumberEvent":
        return cls(
            organization_id=row.organization_id,
            e164=e164,
            at=row.at,
            action=row.action,
            from_state=row.from_state,
            to_state=row.to_state,
            actor=row.actor,
            remark=row.remark,
        )

    @strawberry.field(
        description="The pool that held the number when it happened.",
        graphql_type=OrganizationType | None,
    )
    def organization(self, info: Info) -> Any:
        # Loaded already (numberEvents loads its page's pools first), it is answered at
        # once: a page's 50 nodes are not 50 tasks. Otherwise awaited, batched.
        loaded = info.context.loaders.organization.cache_map.get(self.organization_id)
        if loaded is None or loaded.cancelled() or not loaded.done():
            return _organization(info, self.organization_id)
        row = loaded.result()
        return OrganizationType.from_row(row) if row is not None else None


@strawberry.type
class NumberEventEdge:
    node: NumberEvent
    cursor: str


@strawberry.type
class NumberEventConnection(CountedConnection):
    edges: list[NumberEventEdge]
    page_info: PageInfo


@strawberry.type(name="Number")
class NumberType(Node):
    row: strawberry.Private[NumberRecord]
    e164: str
    state: NumberState  # type: ignore[valid-type]
    country: str
    sku: str
    vendor: str
    capabilities: list[Capability]
    routing: str | None
    golden: bool
    ported_in: bool
    visible_to_domain: str | None
    tag: str | None
    notes: str | None
    subscription_uuid: UUID | None
    deletion_reason: DeletionReason | None  # type: ignore[valid-type]
    after_hold: AfterHoldState | None = strawberry.field(  # type: ignore[valid-type]
        description="Overrides the policy's afterHold for this number; null = the policy's."
    )
    state_changed_at: datetime
    reservation: Reservation | None
    lock: Lock | None
    block: Block | None
    registration: Registration
    features: list[NumberFeature]
    capacity: int | None = strawberry.field(
        description="Channels the number may carry at once; null = not limited."
    )

    @classmethod
    def from_row(cls, row: NumberRecord, projection: "Projection | None" = None) -> "NumberType":
        """The number of a row, its fields made from the row when first read (`_FIELDS`):
        a page of 50 pays for the few fields its query selects, not for all 24.

        A row of some columns only comes with its projection. Its number serves only the
        fields made of those columns: any other, and `row` itself (what the resolvers
        read), raise NotSelected."""
        number = cls.__new__(cls)
        if projection is None or projection.columns is None:
            number.row = row
            number.__dict__["_made_from"] = (row, _FIELDS)
        else:
            made = number.__dict__
            made["_made_from"] = (row, projection.makers)
            if projection.copy is not None:
                made.update(zip(projection.copied, projection.copy(row), strict=True))
        return number

    @strawberry.field(description="The organization whose pool holds the number.")
    async def organization(self, info: Info) -> OrganizationType:
        org = await _organization(info, self.row.organization_id)
        assert org is not None
        return org

    @strawberry.field(
        description="What the viewer may do to this number now, given its state and the "
        "viewer's role."
    )
    def allowed_actions(self, info: Info) -> list[NumberAction]:  # type: ignore[valid-type]
        return allowed.allowed_actions(self.row, info.context.viewer)

    @strawberry.field
    def billing(self) -> BillingTerm | None:
        return BillingTerm.of(self.row)

    @strawberry.field
    async def series(self, info: Info) -> SeriesType | None:
        if self.row.series_id is None:
            return None
        row = await info.context.loaders.series.load(self.row.series_id)
        return SeriesType.from_row(row) if row is not None else None

    @strawberry.field
    async def operator(
        self, info: Info
    ) -> Annotated["OperatorType", strawberry.lazy("schema.operators")] | None:
        from schema.operators import OperatorType

        if self.row.operator_id is None:
            return None
        row = await info.context.loaders.operator.load(self.row.operator_id)
        return OperatorType.from_row(row) if row is not None else None

    @strawberry.field(description="The open port order this number is part of.")
    async def port_order(
        self, info: Info
    ) -> Annotated["PortOrderType", strawberry.lazy("schema.porting")] | None:
        from schema.porting import PortOrderType

        if self.row.state not in PORTING:
            return None
        row = await info.context.loaders.port_order.load(self.row.id)
        return PortOrderType.from_row(row) if row is not None else None

    @strawberry.field(description=f"{OWNER_UUID} Set while the number is ASSIGNED or BLOCKED.")
    async def owner_uuid(self, info: Info) -> UUID | None:
        owner = await _organization(info, self.row.owner_id)
        return owner.uuid if owner is not None else None

    @strawberry.field(description="Newest first.")
    async def history(
        self, info: Info, first: int | None = 50, after: str | None = None
    ) -> NumberEventConnection:
        request = page_request(first, after, info.context.settings.max_page_size, int)
        before = int(request.after[0]) if request.after else None
        rows = await info.context.loaders.history.load((self.row.id, request.first, before))
        page = Page(
            rows=rows[: request.first],
            has_next=len(rows) > request.first,
            has_previous=request.after is not None,
        )
        edges = [
            NumberEventEdge(node=NumberEvent.from_row(row, self.e164), cursor=encode_cursor(row.id))
            for row in page.rows
        ]
        number_id = self.row.id
        return NumberEventConnection(
            count=lambda: info.context.loaders.history_count.load(number_id),
            edges=edges,
            page_info=PageInfo.from_page(page, [e.cursor for e in edges]),  # type: ignore[arg-type]
        )


def _reservation(row: NumberRecord) -> Reservation | None:
    if row.state is not NumberStateModel.RESERVED:
        return None
    assert row.reservation_kind is not None
    assert row.reservation_reason is not None
    assert row.reserved_at is not None
    return Reservation(
        row=row,
        kind=row.reservation_kind,
        reason=row.reservation_reason,
        tag=row.reservation_tag,
        remark=row.reservation_remark,
        starts_at=row.reserved_at,
        expires_at=row.expires_at,
        did_reservation_uuid=row.did_reservation_uuid,
    )


def _lock(row: NumberRecord) -> Lock | None:
    if row.state is not NumberStateModel.LOCKED:
        return None
    assert row.locked_at is not None
    return Lock(remark=row.lock_remark, locked_at=row.locked_at, expires_at=row.expires_at)


# Fields of Number that are a column of numbers of their name, read as is.
_COLUMN_FIELDS = (
    "e164",
    "state",
    "country",
    "sku",
    "vendor",
    "routing",
    "golden",
    "ported_in",
    "visible_to_domain",
    "tag",
    "notes",
    "subscription_uuid",
    "deletion_reason",
    "after_hold",
    "state_changed_at",
    "capacity",
)

# Every field of Number (but `row`), made from the row.
_FIELDS: dict[str, Callable[[NumberRecord], object]] = {
    "id": lambda row: strawberry.ID(ids.encode(TYPE_NAME, row.e164)),
    "capabilities": lambda row: capabilities_of(row.capabilities),
    "reservation": _reservation,
    "lock": _lock,
    "block": Block.of,
    "registration": Registration.of,
    "features": NumberFeature.all_of,
    **{name: operator.attrgetter(name) for name in _COLUMN_FIELDS},
}
if set(_FIELDS) != {f.name for f in dataclasses.fields(NumberType) if f.init} - {"row"}:
    raise TypeError("schema/numbers.py: _FIELDS must make every field of Number")


class _Made:
    """A field of a number made from its row when first read, then kept in the number's
    own attributes (which a non-data descriptor's class attribute gives way to). One per
    field, on the class: an attribute lookup that misses (the awaitable checks' `__await__`,
    say) fails in C, as on any object, rather than in a Python `__getattr__`."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, number: object, owner: type | None = None) -> object:
        if number is None:
            return self
        made = number.__dict__
        made_from = made.get("_made_from")
        if made_from is None:
            raise AttributeError(self.name)
        row, makers = made_from
        make = makers.get(self.name)
        if make is None:
            raise AttributeError(self.name)
        value = make(row)
        made[self.name] = value
        return value


for _name in (*_FIELDS, "row"):
    setattr(NumberType, _name, _Made(_name))

# The columns each field made from a few of them reads. A page whose selection asks for
# none but these fields selects just their columns (schema/number_columns.py); any field
# not named here (the objects made of many columns, the resolvers that read the row, a
# field added later) needs the whole row.
FIELD_COLUMNS: dict[str, frozenset[str]] = {
    "id": frozenset({"e164"}),
    "capabilities": frozenset({"capabilities"}),
    **{name: frozenset({name}) for name in _COLUMN_FIELDS},
}
_EVERY_COLUMN = frozenset(column.name for column in NUMBER_COLUMNS)
if not set(FIELD_COLUMNS) <= set(_FIELDS) or any(
    not columns <= _EVERY_COLUMN for columns in FIELD_COLUMNS.values()
):
    raise TypeError("schema/numbers.py: FIELD_COLUMNS must name fields of Number and columns")


class NotSelected(RuntimeError):
    """A field of Number read from a row that lacks its columns, or the row itself read
    from a number of some columns: the selection's analysis (schema/number_columns.py)
    let a page select too few. Not an AttributeError, which a getattr with a default or
    a hasattr would take for a field that is not there."""


@dataclasses.dataclass(frozen=True, eq=False)
class Projection:
    """The columns a page of numbers selects (None: all of them), and how its rows make
    the fields of Number: those whose columns they lack raise NotSelected."""

    columns: frozenset[str] | None
    makers: Mapping[str, Callable[[NumberRecord], object]]
    # The fields that are a column of the projection's as it is, and how to read them
    # from a row at once: set on each number as it is made (a dict read each, then,
    # rather than a descriptor's call; the selection asked for them).
    copied: tuple[str, ...] = ()
    copy: Callable[[NumberRecord], tuple[object, ...]] | None = None


FULL_ROW = Projection(None, _FIELDS)


@functools.lru_cache(maxsize=1024)
def projection(columns: frozenset[str]) -> Projection:
    """The projection of rows of these columns and the page's own (PAGE_KEY_COLUMNS)."""
    columns = columns | PAGE_KEY_COLUMNS
    makers = {
        name: make if FIELD_COLUMNS.get(name, _EVERY_COLUMN) <= columns else _refusal(name, columns)
        for name, make in _FIELDS.items()
    }
    makers["row"] = _refusal("row", columns)
    copied = tuple(name for name in _COLUMN_FIELDS if name in columns)
    read = operator.attrgetter(*copied)
    copy = read if len(copied) > 1 else lambda row: (read(row),)
    return Projection(columns, makers, copied, copy)


def _refusal(name: str, columns: frozenset[str]) -> Callable[[NumberRecord], object]:
    def refuse(_row: NumberRecord) -> object:
        raise NotSelected(f"Number.{name} read from a row of the columns {sorted(columns)}")

    return refuse


@strawberry.type
class NumbersPayload:
    numbers: list[NumberType]
    user_errors: list[UserError]

    @classmethod
    def of(cls, rows: Sequence[NumberRecord]) -> "NumbersPayload":
        return cls(numbers=[NumberType.from_row(row) for row in rows], user_errors=[])

    @classmethod
    def refused(cls, errors: list[UserError]) -> "NumbersPayload":
        return cls(numbers=[], user_errors=errors)


@strawberry.input
class AddNumbersInput:
    numbers: list[str] = strawberry.field(description="1 to 50 numbers.")
    vendor: str
    country: str
    sku: str
    capabilities: list[Capability] | None = strawberry.field(
        default_factory=lambda: [Capability.VOICE]
    )
    organization_id: strawberry.ID | None = strawberry.field(
        default=None, description=f"Defaults to the viewer's organization. {BY_ID_OR_UUID}"
    )
    routing: str | None = None
    golden: bool | None = False
    ported_in: bool | None = False
    visible_to_domain: str | None = None
    tag: str | None = None
    notes: str | None = None
    after_hold: AfterHoldState | None = None  # type: ignore[valid-type]
    capacity: int | None = None


@strawberry.input
class ReserveNumbersInput:
    numbers: list[str]
    reserved_for_id: strawberry.ID = strawberry.field(
        description=f"The organization the numbers are held for. {BY_ID_OR_UUID}"
    )
    remark: str | None = None
    tag: str | None = strawberry.field(default=None, description="For an individual or a role.")
    expires_at: datetime | None = strawberry.field(
        default=None, description="At most the free reservation period from now; defaults to it."
    )


@strawberry.input
class ExtendReservationInput:
    numbers: list[str]
    did_reservation_uuid: UUID = strawberry.field(
        description="The DID Reservation subscription that pays for the extension."
    )
    expires_at: datetime = strawberry.field(description="End of the paid period.")
    remark: str | None = None


@strawberry.input
class ReleaseNumbersInput:
    numbers: list[str]
    remark: str | None = None


@strawberry.input
class AssignNumbersInput:
    numbers: list[str]
    subscription_uuid: UUID
    owner_uuid: UUID | None = strawberry.field(
        default=None,
        description=f"{OWNER_UUID} A reserved number goes only to the organization it is held "
        "for or one below it. Defaults to the pool's organization.",
    )
    remark: str | None = None
    billing: BillingTermInput | None = strawberry.field(
        default=None,
        description="Numbra renews the service itself when given; without it billing drives "
        "the subscription events.",
    )


@strawberry.input
class LockNumbersInput:
    numbers: list[str]
    remark: str | None = None
    expires_at: datetime | None = strawberry.field(
        default=None, description="Defaults to the lock period of policy from now."
    )


@strawberry.input
class UnlockNumbersInput:
    numbers: list[str]
    remark: str | None = None


@strawberry.input
class DeleteNumbersInput:
    numbers: list[str]
    reason: DeletionReason  # type: ignore[valid-type]
    remark: str | None = None


@strawberry.input
class RecoverNumbersInput:
    numbers: list[str]
    remark: str | None = None


@strawberry.input(
    description="Mass edit: each field given is set on every number; omitted fields stay."
)
class EditNumbersInput:
    numbers: list[str]
    sku: str | None = None
    capabilities: list[Capability] | None = None
    routing: str | None = None
    golden: bool | None = None
    ported_in: bool | None = None
    visible_to_domain: str | None = None
    tag: str | None = None
    notes: str | None = None
    after_hold: AfterHoldState | None = strawberry.field(  # type: ignore[valid-type]
        default=strawberry.UNSET, description="Given as null, the policy's decides again."
    )
    capacity: int | None = strawberry.field(
        default=strawberry.UNSET, description="0 to 9999; given as null, not limited."
    )


@strawberry.input
class SubscriptionEventInput:
    subscription_uuid: UUID
    remark: str | None = None


@strawberry.input
class SwapNumberInput:
    subscription_uuid: UUID
    old_number: str = strawberry.field(
        description="The number leaving the subscription; it is reserved for the swap period."
    )
    new_number: str = strawberry.field(
        description="The number joining it; AVAILABLE or RESERVED for the owner."
    )
    remark: str | None = None
