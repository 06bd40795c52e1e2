"""Webhooks: the endpoints an organization registers, and the outbox of deliveries to them."""

import enum
from datetime import datetime
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, str_enum


class DeliveryStatus(enum.StrEnum):
    # To be sent at `next_attempt_at` (while a worker holds it, that is the claim's end).
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    # Not delivered within the retry window; redeliverWebhook may send it again.
    FAILED = "FAILED"


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[UUID] = mapped_column(sa.Uuid, unique=True, default=uuid4)
    # Events of numbers whose pool is in this organization's subtree are sent.
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    url: Mapped[str] = mapped_column(sa.String(2000))
    # The actions sent, as ",RESERVED,ASSIGNED,"; "" for all. The outbox trigger of
    # migration 0015 matches an event's action inside it.
    actions: Mapped[str] = mapped_column(sa.Text)
    enabled: Mapped[bool] = mapped_column(sa.Boolean)
    disabled_reason: Mapped[str | None] = mapped_column(sa.Text)
    # `whsec_<base64 key>`: kept as it is, since signing needs the key itself. Shown once.
    secret: Mapped[str] = mapped_column(sa.String(100))
    # The secret before the last rotation, signing too until `previous_secret_until`.
    previous_secret: Mapped[str | None] = mapped_column(sa.String(100))
    previous_secret_until: Mapped[datetime | None]
    # Attempts that failed in a row; at the limit the endpoint is disabled.
    consecutive_failures: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime]


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    uuid: Mapped[UUID] = mapped_column(sa.Uuid, unique=True, default=uuid4)
    endpoint_id: Mapped[int] = mapped_column(
        sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    # The event sent; null for a PING.
    event_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("number_events.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[DeliveryStatus] = mapped_column(str_enum(DeliveryStatus, "delivery_status"))
    attempts: Mapped[int] = mapped_column(sa.Integer)
    last_attempt_at: Mapped[datetime | None]
    last_response_status: Mapped[int | None] = mapped_column(sa.Integer)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    # When it may next be claimed: a retry's time, or the end of a worker's claim.
    next_attempt_at: Mapped[datetime | None]
    # Start of the current series of attempts (creation, or the last redelivery): retries
    # go on for the retry window from here.
    retry_from: Mapped[datetime]
    created_at: Mapped[datetime]

    __table_args__ = (
        sa.UniqueConstraint("endpoint_id", "event_id"),
        sa.Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        # An endpoint's delivery log, newest first.
        sa.Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
    )
