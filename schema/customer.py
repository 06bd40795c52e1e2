"""Blocks, registration, features and the quick-filter tabs: their types and inputs."""

from datetime import datetime

import strawberry

from domain.allowed import NumberAction as NumberActionModel
from models import BlockReason as BlockReasonModel
from models import FeatureKind as FeatureKindModel
from models import FeatureStatus as FeatureStatusModel
from models import NumberState as NumberStateModel
from models import QuickFilter as QuickFilterModel
from models import RegistrationStatus as RegistrationStatusModel
from models.numbers import NumberRecord

BlockReason = strawberry.enum(BlockReasonModel, name="BlockReason")
RegistrationStatus = strawberry.enum(RegistrationStatusModel, name="RegistrationStatus")
FeatureKind = strawberry.enum(FeatureKindModel, name="FeatureKind")
FeatureStatus = strawberry.enum(FeatureStatusModel, name="FeatureStatus")
QuickFilter = strawberry.enum(
    QuickFilterModel,
    name="QuickFilter",
    description="The customer-facing tabs of a number list (DESIGN.md defines each).",
)
NumberAction = strawberry.enum(
    NumberActionModel,
    name="NumberAction",
    description="Everything a client may ask Numbra to do to one number.",
)


@strawberry.type
class Block:
    reason: BlockReason  # type: ignore[valid-type]
    blocked_at: datetime
    until: datetime | None = strawberry.field(description="Null: until someone unblocks it.")
    remark: str | None

    @classmethod
    def of(cls, row: NumberRecord) -> "Block | None":
        if row.state is not NumberStateModel.BLOCKED:
            return None
        assert row.block_reason is not None
        assert row.blocked_at is not None
        return cls(
            reason=row.block_reason,
            blocked_at=row.blocked_at,
            until=row.blocked_until,
            remark=row.block_remark,
        )


@strawberry.type
class Registration:
    status: RegistrationStatus  # type: ignore[valid-type]
    identity_ref: str | None = strawberry.field(
        description="The end-user identity or address the number is registered to, as the "
        "regulator's system names it."
    )
    updated_at: datetime | None
    remark: str | None

    @classmethod
    def of(cls, row: NumberRecord) -> "Registration":
        return cls(
            status=row.registration_status,
            identity_ref=row.registration_identity_ref,
            updated_at=row.registration_updated_at,
            remark=row.registration_remark,
        )


@strawberry.type
class NumberFeature:
    kind: FeatureKind  # type: ignore[valid-type]
    status: FeatureStatus  # type: ignore[valid-type]
    updated_at: datetime
    remark: str | None

    @classmethod
    def all_of(cls, row: NumberRecord) -> list["NumberFeature"]:
        """The features set on the number, in the enum's order."""
        found = row.features
        if not found:
            return []
        return [
            cls(
                kind=kind,
                status=FeatureStatusModel(entry["status"]),
                updated_at=datetime.fromisoformat(entry["updatedAt"]),
                remark=entry.get("remark"),
            )
            for kind in FeatureKindModel
            if (entry := found.get(kind.value)) is not None
        ]


@strawberry.type
class QuickFilterCount:
    quick_filter: QuickFilter  # type: ignore[valid-type]
    count: int


@strawberry.input
class BlockNumbersInput:
    numbers: list[str]
    reason: BlockReason  # type: ignore[valid-type]
    until: datetime | None = strawberry.field(default=None, description="Null: until unblocked.")
    remark: str | None = None


@strawberry.input
class UnblockNumbersInput:
    numbers: list[str]
    remark: str | None = None


@strawberry.input
class SetRegistrationInput:
    numbers: list[str]
    status: RegistrationStatus  # type: ignore[valid-type]
    identity_ref: str | None = None
    remark: str | None = None


@strawberry.input
class SetFeatureStatusInput:
    numbers: list[str]
    kind: FeatureKind  # type: ignore[valid-type]
    status: FeatureStatus  # type: ignore[valid-type]
    remark: str | None = None
