"""SQLAlchemy models: the tables Numbra keeps. Import from here."""

from models.base import Base
from models.intake import IntakeRefusal
from models.notices import Notice, NoticeKind, NoticeStatus
from models.numbers import (
    Capability,
    DeletionReason,
    Number,
    NumberEvent,
    NumberState,
    ReservationKind,
    ReservationReason,
)
from models.organizations import Organization, OrganizationKind
from models.persisted import PersistedQuery
from models.series import Series
from models.tokens import Role, Token

__all__ = [
    "Base",
    "Capability",
    "DeletionReason",
    "IntakeRefusal",
    "Notice",
    "NoticeKind",
    "NoticeStatus",
    "Number",
    "NumberEvent",
    "NumberState",
    "Organization",
    "OrganizationKind",
    "PersistedQuery",
    "ReservationKind",
    "ReservationReason",
    "Role",
    "Series",
    "Token",
]
from models.numbers import (
    AfterHold,
    BlockReason,
    FeatureKind,
    FeatureStatus,
    QuickFilter,
    RegistrationStatus,
)
from models.operators import Operator
from models.policy import NumberPolicy
from models.porting import PortDirection, PortOrder, PortOrderNumber, PortOrderStatus
from models.webhooks import DeliveryStatus, WebhookDelivery, WebhookEndpoint

__all__ += [
    "AfterHold",
    "BlockReason",
    "DeliveryStatus",
    "FeatureKind",
    "FeatureStatus",
    "NumberPolicy",
    "Operator",
    "PortDirection",
    "PortOrder",
    "PortOrderNumber",
    "PortOrderStatus",
    "QuickFilter",
    "RegistrationStatus",
    "WebhookDelivery",
    "WebhookEndpoint",
]
