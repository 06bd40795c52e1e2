"""Webhook endpoints: registered by an organization's ADMINs, seen by its subtree's tokens.

An endpoint receives the events of numbers whose pool (at the event) is in its
organization's subtree, filtered by its actions (none: all). The deliveries themselves
are written by the database with each event (migration 0015) and sent by
domain/webhook_delivery.py. A URL is checked here at creation and update, and again
before each delivery (`target_refusal`), so a name that later resolves to a private
address is refused then too.
"""

import asyncio
import base64
import ipaddress
import re
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain import ids, live, organizations
from domain.access import Viewer
from domain.clock import Clock
from domain.errors import DomainError, ErrorCode, Problems
from domain.organizations import subtree_clause
from domain.pagination import Page, PageRequest, make_page
from models import (
    DeliveryStatus,
    Organization,
    Role,
    WebhookDelivery,
    WebhookEndpoint,
)
from models.base import column_length
from settings import Settings

TYPE_NAME = "WebhookEndpoint"
DELIVERY_TYPE = "WebhookDelivery"
EVENT_TYPE = "NumberEvent"
PING_TYPE = "Ping"
PING = "PING"
SECRET_PREFIX = "whsec_"
MAX_URL = column_length(WebhookEndpoint.url)
MAX_ACTIONS = 100
ACTION = re.compile(r"[A-Z][A-Z0-9_]{0,39}")
# A rotated secret signs too for this long, so receivers can switch without a gap.
ROTATION_OVERLAP = timedelta(hours=24)
DNS_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class WebhookRules:
    allow_private: bool
    retry_window: timedelta
    timeout_seconds: float
    disable_after: int
    lease: timedelta
    batch_size: int
    concurrency: int
    max_endpoints: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "WebhookRules":
        return cls(
            allow_private=settings.webhook_allow_private,
            retry_window=timedelta(hours=settings.webhook_retry_hours),
            timeout_seconds=settings.webhook_timeout_seconds,
            disable_after=settings.webhook_disable_after_failures,
            lease=timedelta(seconds=settings.webhook_lease_seconds),
            batch_size=settings.webhook_batch_size,
            concurrency=settings.webhook_concurrency,
            max_endpoints=settings.max_webhook_endpoints,
        )

    def backoff(self, attempt: int) -> timedelta:
        """The wait after failed attempt `attempt` (1, 2, …): 1 min doubling, at most 1 h."""
        return timedelta(seconds=min(60 * 2 ** min(attempt - 1, 6), 3600))


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def event_message_id(event_id: int) -> str:
    """The id a receiver deduplicates on: the same on every attempt at the event."""
    return ids.encode(EVENT_TYPE, str(event_id))


def ping_message_id(delivery_uuid: UUID) -> str:
    return ids.encode(PING_TYPE, str(delivery_uuid))


# ---- where a URL may point ----


def address_refusal(address: str, allow_private: bool) -> str | None:
    """Why a delivery may not go to this IP address, or None."""
    if allow_private:
        return None
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_multicast or not ip.is_global:
        return (
            f"it resolves to {ip}, a loopback, private, link-local, multicast or reserved address"
        )
    return None


def url_refusal(url: str, allow_private: bool) -> str | None:
    """What is wrong with the URL as text (scheme, host, size), or None."""
    if not url or len(url) > MAX_URL:
        return f"url must be 1 to {MAX_URL} characters"
    if any(char.isspace() or ord(char) < 32 for char in url):
        return "url must not hold spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return "url is not a URL"
    schemes = {"https", "http"} if allow_private else {"https"}
    if parts.scheme not in schemes:
        return "url must be https" if not allow_private else "url must be http or https"
    if not parts.hostname:
        return "url has no host"
    if parts.username is not None or parts.password is not None:
        return "url must not carry a user name or password"
    return None


async def target_refusal(url: str, allow_private: bool) -> str | None:
    """Why nothing may be sent to `url` now: its text, or any address its host resolves
    to (every DNS answer is checked). None when it may."""
    refused = url_refusal(url, allow_private)
    if refused is not None or allow_private:
        return refused
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        answers = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(
                host, parts.port or 443, type=socket.SOCK_STREAM
            ),
            DNS_TIMEOUT_SECONDS,
        )
    # UnicodeError: a name IDNA cannot encode (a label too long, say).
    except (OSError, TimeoutError, UnicodeError) as exc:
        return f"{host[:100]} does not resolve ({exc})"
    for *_, sockaddr in answers:
        refused = address_refusal(str(sockaddr[0]), allow_private)
        if refused is not None:
            return refused
    return None


# ---- endpoints ----


def actions_text(actions: Sequence[str]) -> str:
    unique = list(dict.fromkeys(actions))
    return f",{','.join(unique)}," if unique else ""


def actions_of(stored: str) -> list[str]:
    return [action for action in stored.split(",") if action]


def _check_actions(problems: Problems, actions: Sequence[str] | None) -> None:
    if actions is None:
        return
    field = ["input", "actions"]
    if len(actions) > MAX_ACTIONS:
        problems.add(ErrorCode.LIMIT_EXCEEDED, f"at most {MAX_ACTIONS} actions", field)
        return
    for action in actions:
        if not ACTION.fullmatch(action):
            problems.add(
                ErrorCode.VALIDATION,
                f"{action[:40]!r} is not an action (capitals, digits and _, e.g. RESERVED)",
                field,
            )


async def _check_url(problems: Problems, url: str | None, allow_private: bool) -> None:
    if url is None:
        return
    refused = await target_refusal(url, allow_private)
    if refused is not None:
        problems.add(ErrorCode.VALIDATION, refused, ["input", "url"])


async def create(
    session: AsyncSession,
    viewer: Viewer,
    clock: Clock,
    rules: WebhookRules,
    *,
    organization_id: str | None,
    url: str,
    actions: Sequence[str] | None,
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its secret (the only time it is shown)."""
    viewer.require(Role.ADMIN)
    problems = Problems()
    await _check_url(problems, url, rules.allow_private)
    _check_actions(problems, actions)
    org_id: int | None = viewer.org_id
    if organization_id is not None:
        org = await organizations.named(
            session, viewer, organization_id, ["input", "organizationId"], problems
        )
        org_id = org.id if org is not None else None
    if org_id is not None:
        held = await session.scalar(
            sa.select(sa.func.count())
            .select_from(WebhookEndpoint)
            .where(WebhookEndpoint.organization_id == org_id)
        )
        if (held or 0) >= rules.max_endpoints:
            problems.add(
                ErrorCode.LIMIT_EXCEEDED,
                f"an organization may have at most {rules.max_endpoints} webhook endpoints",
                ["input", "organizationId"],
            )
    problems.raise_if_any()
    assert org_id is not None
    secret = new_secret()
    row = WebhookEndpoint(
        organization_id=org_id,
        url=url,
        actions=actions_text(actions or []),
        enabled=True,
        secret=secret,
        consecutive_failures=0,
        created_at=clock.now(),
    )
    session.add(row)
    await session.flush()
    return row, secret


def _visible(viewer: Viewer) -> sa.ColumnElement[bool]:
    return subtree_clause(viewer.org_path)


async def find_visible(session: AsyncSession, viewer: Viewer, ref: str) -> WebhookEndpoint | None:
    """The endpoint `ref` names if it belongs to the viewer's subtree; else None, exactly
    as for one that does not exist."""
    key = ids.uuid_named(ref, TYPE_NAME)
    if key is None:
        return None
    query = (
        sa.select(WebhookEndpoint)
        .join(Organization, Organization.id == WebhookEndpoint.organization_id)
        .where(WebhookEndpoint.uuid == key, _visible(viewer))
    )
    return (await session.scalars(query)).one_or_none()


async def _managed(session: AsyncSession, viewer: Viewer, ref: str) -> WebhookEndpoint:
    viewer.require(Role.ADMIN)
    found = await find_visible(session, viewer, ref)
    if found is None:
        raise DomainError.one(ErrorCode.NOT_FOUND, "no such webhook endpoint", ["input", "id"])
    return found


async def update(
    session: AsyncSession,
    viewer: Viewer,
    clock: Clock,
    rules: WebhookRules,
    ref: str,
    *,
    url: str | None = None,
    actions: Sequence[str] | None = None,
    enabled: bool | None = None,
    rotate_secret: bool = False,
) -> tuple[WebhookEndpoint, str | None]:
    """Change an endpoint; returns it and, when rotated, its new secret. Enabling one
    Numbra disabled starts its count of failures afresh. The secret it replaces signs
    too for ROTATION_OVERLAP."""
    row = await _managed(session, viewer, ref)
    problems = Problems()
    await _check_url(problems, url, rules.allow_private)
    _check_actions(problems, actions)
    problems.raise_if_any()
    if url is not None:
        row.url = url
    if actions is not None:
        row.actions = actions_text(actions)
    if enabled is not None:
        if enabled and not row.enabled:
            row.disabled_reason = None
            row.consecutive_failures = 0
        row.enabled = enabled
    secret = None
    if rotate_secret:
        secret = new_secret()
        row.previous_secret, row.previous_secret_until = row.secret, clock.now() + ROTATION_OVERLAP
        row.secret = secret
    await session.flush()
    return row, secret


async def delete(session: AsyncSession, viewer: Viewer, ref: str) -> WebhookEndpoint:
    """Delete an endpoint and its delivery log."""
    row = await _managed(session, viewer, ref)
    await session.execute(sa.delete(WebhookEndpoint).where(WebhookEndpoint.id == row.id))
    return row


async def ping(session: AsyncSession, viewer: Viewer, clock: Clock, ref: str) -> WebhookDelivery:
    """A PING delivery to the endpoint, due now."""
    row = await _managed(session, viewer, ref)
    _require_enabled(row)
    now = clock.now()
    delivery = WebhookDelivery(
        endpoint_id=row.id,
        event_id=None,
        action=PING,
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        retry_from=now,
        created_at=now,
    )
    session.add(delivery)
    await session.flush()
    live.outbox_written(session)
    return delivery


def _require_enabled(row: WebhookEndpoint) -> None:
    if not row.enabled:
        raise DomainError.one(
            ErrorCode.CONFLICT, "the endpoint is disabled; enable it first", ["input", "id"]
        )


async def find_delivery(session: AsyncSession, viewer: Viewer, ref: str) -> WebhookDelivery | None:
    key = ids.uuid_named(ref, DELIVERY_TYPE)
    if key is None:
        return None
    query = (
        sa.select(WebhookDelivery)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .join(Organization, Organization.id == WebhookEndpoint.organization_id)
        .where(WebhookDelivery.uuid == key, _visible(viewer))
    )
    return (await session.scalars(query)).one_or_none()


async def redeliver(
    session: AsyncSession, viewer: Viewer, clock: Clock, ref: str
) -> WebhookDelivery:
    """Send a delivery again now, whatever became of it, with a fresh retry window."""
    viewer.require(Role.ADMIN)
    field = ["input", "deliveryId"]
    delivery = await find_delivery(session, viewer, ref)
    if delivery is None:
        raise DomainError.one(ErrorCode.NOT_FOUND, "no such webhook delivery", field)
    endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id)
    assert endpoint is not None
    if not endpoint.enabled:
        raise DomainError.one(
            ErrorCode.CONFLICT, "the endpoint is disabled; enable it first", field
        )
    now = clock.now()
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = now
    delivery.retry_from = now
    await session.flush()
    live.outbox_written(session)
    return delivery


# ---- lists ----


async def listed(
    session: AsyncSession, viewer: Viewer, request: PageRequest
) -> Page[WebhookEndpoint]:
    """The subtree's endpoints, oldest first, keyed by id."""
    query = (
        sa.select(WebhookEndpoint)
        .join(Organization, Organization.id == WebhookEndpoint.organization_id)
        .where(_visible(viewer))
    )
    if request.after is not None:
        query = query.where(WebhookEndpoint.id > _position(request.after))
    query = query.order_by(WebhookEndpoint.id).limit(request.first + 1)
    return make_page((await session.scalars(query)).all(), request)


async def count(session: AsyncSession, viewer: Viewer) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(WebhookEndpoint)
        .join(Organization, Organization.id == WebhookEndpoint.organization_id)
        .where(_visible(viewer))
    )
    return int(await session.scalar(query) or 0)


def _position(after: tuple[object, ...]) -> int:
    text = str(after[0])
    if len(after) != 1 or not text.isdigit() or len(text) > 18:
        raise DomainError.one(ErrorCode.VALIDATION, "after is not a cursor of this list", ["after"])
    return int(text)


@dataclass(frozen=True)
class DeliveryPageKey:
    status: DeliveryStatus | None
    first: int
    after: int | None


async def delivery_pages(
    session: AsyncSession, endpoint_ids: Sequence[int], key: DeliveryPageKey
) -> dict[int, Page[WebhookDelivery]]:
    """A page of each endpoint's delivery log, newest first, in one query."""
    where: list[sa.ColumnElement[bool]] = [WebhookDelivery.endpoint_id.in_(endpoint_ids)]
    if key.status is not None:
        where.append(WebhookDelivery.status == key.status)
    if key.after is not None:
        where.append(WebhookDelivery.id < key.after)
    rank = (
        sa.func.row_number()
        .over(partition_by=WebhookDelivery.endpoint_id, order_by=WebhookDelivery.id.desc())
        .label("rank")
    )
    ranked = sa.select(WebhookDelivery.id, rank).where(*where).subquery()
    query = (
        sa.select(WebhookDelivery)
        .join(ranked, ranked.c.id == WebhookDelivery.id)
        .where(ranked.c.rank <= key.first + 1)
        .order_by(WebhookDelivery.endpoint_id, WebhookDelivery.id.desc())
    )
    found: dict[int, list[WebhookDelivery]] = {endpoint_id: [] for endpoint_id in endpoint_ids}
    for row in await session.scalars(query):
        found[row.endpoint_id].append(row)
    request = PageRequest(key.first, (key.after,) if key.after is not None else None)
    return {endpoint_id: make_page(rows, request) for endpoint_id, rows in found.items()}


async def delivery_counts(
    session: AsyncSession, endpoint_ids: Sequence[int], status: DeliveryStatus | None
) -> dict[int, int]:
    query = (
        sa.select(WebhookDelivery.endpoint_id, sa.func.count())
        .where(WebhookDelivery.endpoint_id.in_(endpoint_ids))
        .group_by(WebhookDelivery.endpoint_id)
    )
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    counts = {endpoint_id: 0 for endpoint_id in endpoint_ids}
    counts.update({endpoint_id: int(n) for endpoint_id, n in await session.execute(query)})
    return counts


async def endpoints_by_ids(
    session: AsyncSession, endpoint_ids: Sequence[int]
) -> dict[int, WebhookEndpoint]:
    query = sa.select(WebhookEndpoint).where(WebhookEndpoint.id.in_(endpoint_ids))
    return {row.id: row for row in await session.scalars(query)}
