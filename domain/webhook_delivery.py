"""Sending webhook deliveries: claim a batch, send each signed, record each result.

The claim is one guarded UPDATE: deliveries PENDING and due are pushed to the end of a
lease and their attempt counted; a delivery another worker claimed is no longer due,
so two workers never send one at the same moment. A worker killed mid-send leaves its
claim to run out; then the delivery is due again and sent again (at least once: the
receiver deduplicates on `webhook-id`). A result is recorded only by the claim that
made it (guarded by the attempt number).

Signing follows Standard Webhooks: `webhook-signature: v1,<base64 HMAC-SHA256(key,
"<id>.<timestamp>.<body>")>`, one signature per secret in use (two during a rotation).
"""

import asyncio
import base64
import hashlib
import hmac
import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from domain import ids, organizations
from domain.clock import Clock
from domain.mail import Mailer, MailError, compose_text, mail_address, one_line
from domain.webhooks import (
    PING,
    SECRET_PREFIX,
    WebhookRules,
    event_message_id,
    ping_message_id,
    target_refusal,
)
from models import (
    DeliveryStatus,
    Number,
    NumberEvent,
    Organization,
    WebhookDelivery,
    WebhookEndpoint,
)
from models.database import Database

log = logging.getLogger("numbra.webhooks")

MAX_ERROR = 500
USER_AGENT = "Numbra-Webhooks/1"


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    attempt: int
    endpoint_id: int
    url: str
    message_id: str
    body: bytes
    keys: tuple[bytes, ...]
    # Retries go on until the retry window from here has passed.
    retry_from: datetime


@dataclass(frozen=True)
class Result:
    claim: Claim
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def signature(keys: Sequence[bytes], message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        for key in keys
    )


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def _keys(endpoint: WebhookEndpoint, now: datetime) -> tuple[bytes, ...]:
    keys = [_key(endpoint.secret)]
    until = endpoint.previous_secret_until
    if endpoint.previous_secret and until is not None and until > now:
        keys.append(_key(endpoint.previous_secret))
    return tuple(keys)


def _dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


async def claim(
    session: AsyncSession, now: datetime, rules: WebhookRules, limit: int
) -> list[Claim]:
    """Claim up to `limit` due deliveries of enabled endpoints, oldest due first."""
    due = (
        sa.select(WebhookDelivery.id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= now,
            WebhookEndpoint.enabled,
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=WebhookDelivery)
    )
    due_ids = list(await session.scalars(due))
    if not due_ids:
        return []
    claimed = (
        await session.execute(
            sa.update(WebhookDelivery)
            .where(
                WebhookDelivery.id.in_(due_ids),
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at <= now,
            )
            .values(
                attempts=WebhookDelivery.attempts + 1,
                last_attempt_at=now,
                next_attempt_at=now + rules.lease,
            )
            .returning(
                WebhookDelivery.id,
                WebhookDelivery.attempts,
                WebhookDelivery.endpoint_id,
                WebhookDelivery.event_id,
                WebhookDelivery.uuid,
                WebhookDelivery.created_at,
                WebhookDelivery.retry_from,
            )
            .execution_options(synchronize_session=False)
        )
    ).all()
    if not claimed:
        return []
    endpoints = {
        row.id: row
        for row in await session.scalars(
            sa.select(WebhookEndpoint).where(
                WebhookEndpoint.id.in_({row.endpoint_id for row in claimed})
            )
        )
    }
    bodies = await _event_bodies(session, [row.event_id for row in claimed if row.event_id])
    orgs = await organizations.by_ids(session, [e.organization_id for e in endpoints.values()])
    claims = []
    for row in claimed:
        endpoint = endpoints[row.endpoint_id]
        if row.event_id is not None:
            message_id, body = event_message_id(row.event_id), bodies[row.event_id]
        else:
            message_id = ping_message_id(row.uuid)
            org = orgs[endpoint.organization_id]
            body = _dumps(
                {
                    "id": message_id,
                    "type": PING,
                    "occurredAt": row.created_at.isoformat(),
                    "organizationId": ids.encode(organizations.TYPE_NAME, org.uuid),
                    "number": None,
                    "event": None,
                }
            )
        claims.append(
            Claim(
                delivery_id=row.id,
                attempt=row.attempts,
                endpoint_id=endpoint.id,
                url=endpoint.url,
                message_id=message_id,
                body=body,
                keys=_keys(endpoint, now),
                retry_from=row.retry_from,
            )
        )
    return claims


async def _event_bodies(session: AsyncSession, event_ids: Sequence[int]) -> dict[int, bytes]:
    """Each event's payload (DESIGN.md, "Webhooks"), the same on every attempt."""
    if not event_ids:
        return {}
    query = (
        sa.select(NumberEvent, Number.e164, Number.state, Organization.uuid)
        .join(Number, Number.id == NumberEvent.number_id)
        .join(Organization, Organization.id == NumberEvent.organization_id)
        .where(NumberEvent.id.in_(set(event_ids)))
    )
    bodies = {}
    for event, e164, state_now, org_uuid in await session.execute(query):
        state = event.to_state or state_now
        bodies[event.id] = _dumps(
            {
                "id": event_message_id(event.id),
                "type": event.action,
                "occurredAt": event.at.isoformat(),
                "organizationId": ids.encode(organizations.TYPE_NAME, org_uuid),
                "number": {"e164": e164, "state": state.value},
                "event": {
                    "action": event.action,
                    "fromState": event.from_state.value if event.from_state else None,
                    "toState": event.to_state.value if event.to_state else None,
                    "actor": event.actor,
                    "remark": event.remark,
                },
            }
        )
    return bodies


async def send(
    client: httpx.AsyncClient, claim: Claim, now: datetime, rules: WebhookRules
) -> Result:
    """POST one claimed delivery: refused before sending if its URL now resolves where
    deliveries may not go."""
    refused = await target_refusal(claim.url, rules.allow_private)
    if refused is not None:
        return Result(claim, None, f"refused: {refused}")
    timestamp = int(now.timestamp())
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": claim.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(claim.keys, claim.message_id, timestamp, claim.body),
    }
    try:
        response = await client.post(
            claim.url, content=claim.body, headers=headers, timeout=rules.timeout_seconds
        )
    except httpx.TimeoutException:
        return Result(claim, None, f"no answer within {rules.timeout_seconds:g} s")
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return Result(claim, None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR] or "no answer")
    if 200 <= response.status_code < 300:
        return Result(claim, response.status_code, None)
    return Result(claim, response.status_code, f"answered HTTP {response.status_code}")


async def record(
    session: AsyncSession, results: Sequence[Result], now: datetime, rules: WebhookRules
) -> list[int]:
    """Write each result its claim made; count failures in a row per endpoint and
    disable those that reach the limit. Returns the endpoints disabled now."""
    delivered: set[int] = set()
    failures: Counter[int] = Counter()
    recorded = await _record_delivered(session, [r for r in results if r.delivered])
    for result in sorted(results, key=lambda r: r.claim.delivery_id):
        if result.delivered:
            if result.claim.delivery_id not in recorded:
                continue
        elif not await _record_failed(session, result, now, rules):
            continue
        endpoint_id = result.claim.endpoint_id
        if result.delivered:
            delivered.add(endpoint_id)
            failures.pop(endpoint_id, None)
        else:
            failures[endpoint_id] += 1
    if delivered:
        await session.execute(
            sa.update(WebhookEndpoint)
            .where(WebhookEndpoint.id.in_(delivered))
            .values(consecutive_failures=0)
            .execution_options(synchronize_session=False)
        )
    for endpoint_id, failed in failures.items():
        await session.execute(
            sa.update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id)
            .values(consecutive_failures=WebhookEndpoint.consecutive_failures + failed)
            .execution_options(synchronize_session=False)
        )
    if not failures:
        return []
    reason = f"{rules.disable_after} deliveries in a row failed (the last at {now.isoformat()})"
    disabled = await session.scalars(
        sa.update(WebhookEndpoint)
        .where(
            WebhookEndpoint.id.in_(list(failures)),
            WebhookEndpoint.enabled,
            WebhookEndpoint.consecutive_failures >= rules.disable_after,
        )
        .values(enabled=False, disabled_reason=reason)
        .returning(WebhookEndpoint.id)
        .execution_options(synchronize_session=False)
    )
    return list(disabled)


def _claimed_by(result: Result) -> sa.ColumnElement[bool]:
    """The delivery as this claim left it: a later claim's result is not this one's."""
    return sa.and_(
        WebhookDelivery.id == result.claim.delivery_id,
        WebhookDelivery.attempts == result.claim.attempt,
        WebhookDelivery.status == DeliveryStatus.PENDING,
    )


async def _record_delivered(session: AsyncSession, results: Sequence[Result]) -> set[int]:
    """Mark delivered ones, one statement per HTTP status, each guarded by its claim (id
    and attempt); returns the ids marked."""
    by_status: dict[int | None, list[Result]] = {}
    for result in results:
        by_status.setdefault(result.status_code, []).append(result)
    marked: set[int] = set()
    for status_code, group in by_status.items():
        for start in range(0, len(group), 500):
            chunk = group[start : start + 500]
            query = (
                sa.update(WebhookDelivery)
                .where(
                    sa.tuple_(WebhookDelivery.id, WebhookDelivery.attempts).in_(
                        [(result.claim.delivery_id, result.claim.attempt) for result in chunk]
                    ),
                    WebhookDelivery.status == DeliveryStatus.PENDING,
                )
                .values(
                    status=DeliveryStatus.DELIVERED,
                    last_response_status=status_code,
                    last_error=None,
                    next_attempt_at=None,
                )
                .returning(WebhookDelivery.id)
                .execution_options(synchronize_session=False)
            )
            marked.update(await session.scalars(query))
    return marked


async def _record_failed(
    session: AsyncSession, result: Result, now: datetime, rules: WebhookRules
) -> bool:
    claim = result.claim
    retry_at = now + rules.backoff(claim.attempt)
    values: dict[str, Any] = {
        "last_response_status": result.status_code,
        "last_error": result.error,
        "next_attempt_at": retry_at,
    }
    if retry_at > claim.retry_from + rules.retry_window:
        values.update(status=DeliveryStatus.FAILED, next_attempt_at=None)
    query = sa.update(WebhookDelivery).where(_claimed_by(result)).values(values)
    done = await session.execute(query.execution_options(synchronize_session=False))
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class DeliveryReport:
    delivered: int = 0
    failed_attempts: int = 0
    disabled: tuple[int, ...] = ()


async def deliver_due(
    db: Database,
    *,
    clock: Clock,
    rules: WebhookRules,
    mailer: Mailer,
    sender: str,
    client: httpx.AsyncClient | None = None,
    rounds: int | None = None,
) -> DeliveryReport:
    """Send whatever is due, batch by batch, until nothing is (or `rounds` batches)."""
    own_client = client is None
    limits = httpx.Limits(
        max_connections=rules.concurrency, max_keepalive_connections=rules.concurrency
    )
    client = client or httpx.AsyncClient(follow_redirects=False, trust_env=False, limits=limits)
    delivered = failed = 0
    disabled: list[int] = []
    gate = asyncio.Semaphore(rules.concurrency)

    async def send_one(claim: Claim) -> Result:
        async with gate:
            return await send(client, claim, clock.now(), rules)

    try:
        done = 0
        while rounds is None or done < rounds:
            done += 1
            async with db.write() as session:
                claims = await claim(session, clock.now(), rules, rules.batch_size)
            if not claims:
                break
            results = await asyncio.gather(*(send_one(c) for c in claims))
            async with db.write() as session:
                now_disabled = await record(session, results, clock.now(), rules)
            delivered += sum(result.delivered for result in results)
            failed += sum(not result.delivered for result in results)
            for result in results:
                if not result.delivered:
                    log.warning(
                        "webhook delivery %s: attempt %s failed: %s",
                        result.claim.delivery_id,
                        result.claim.attempt,
                        result.error,
                    )
            for endpoint_id in now_disabled:
                await _tell_owner(db, endpoint_id, mailer, sender, clock)
            disabled += now_disabled
    finally:
        if own_client:
            await client.aclose()
    return DeliveryReport(delivered, failed, tuple(disabled))


async def _tell_owner(
    db: Database, endpoint_id: int, mailer: Mailer, sender: str, clock: Clock
) -> None:
    """E-mail the owner of the endpoint's organization that Numbra disabled it."""
    async with db.read() as session:
        found = (
            await session.execute(
                sa.select(WebhookEndpoint, Organization)
                .join(Organization, Organization.id == WebhookEndpoint.organization_id)
                .where(WebhookEndpoint.id == endpoint_id)
            )
        ).one_or_none()
    if found is None:
        return
    endpoint, org = found
    name = one_line(org.name)
    log.error(
        "webhook endpoint %s of %s disabled: %s", endpoint.uuid, name, endpoint.disabled_reason
    )
    if not org.owner_email or mail_address(org.owner_email) is None:
        log.error("webhook endpoint %s: %s has no owner e-mail to tell", endpoint.uuid, name)
        return
    message = compose_text(
        subject=f"A webhook endpoint of {name} was disabled",
        lead=(
            f"Numbra stopped sending events to the webhook endpoint {one_line(endpoint.url)} "
            f"of {name}: {endpoint.disabled_reason}. Events that happen while it is "
            f"disabled are not queued for it."
        ),
        steps=[
            "Check that the receiver answers 2xx within 10 seconds.",
            "Then enable the endpoint again (updateWebhookEndpoint, enabled: true) and "
            "redeliver the failed deliveries you need (redeliverWebhook).",
        ],
        recipients=[org.owner_email],
        reference=f"webhook-disabled.{endpoint.uuid}.{endpoint.consecutive_failures}",
        sender=sender,
        now=clock.now(),
    )
    try:
        await mailer.send(message)
    except MailError as exc:
        log.error("webhook endpoint %s: could not tell %s (%s)", endpoint.uuid, name, exc)
