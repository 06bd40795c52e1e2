"""Webhook deliveries go out right after the commit that wrote them, not at the next
sweep: the sweep interval is an hour here, so only the kick can have sent what arrives.
In-process jobs (no Redis) through the app's lifespan, and a real `numbra serve` with a
real worker on Redis; a rolled-back change kicks nothing; a burst kicks once."""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from domain import lifecycle, live, webhooks
from domain.clock import ManualClock
from jobs import context, runner
from jobs.kick import Kicker
from models import Number, WebhookDelivery
from models.database import Database
from settings import Settings
from tests.support.job_processes import job_environment, processes, redis_database
from tests.support.mail import Inbox, smtp_server
from tests.support.processes import Server, run_cli, serving
from tests.support.receiver import Receiver, receiver
from tests.support.world import World
from web.app import create_app

# "Within a second or two of the commit", with room for a busy 2-CPU machine.
WITHIN_SECONDS = 10.0
AN_HOUR = 3600


async def _arrive(target: Receiver, check: Callable[[Receiver], bool], what: str) -> None:
    """Wait, with a deadline, until what the receiver got satisfies `check`."""
    deadline = time.monotonic() + WITHIN_SECONDS
    while not check(target):
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"not within {WITHIN_SECONDS:.0f} s: {what}; got {target.ids()}")
        target.arrived.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(target.arrived.wait(), min(left, 0.2))


def _types(target: Receiver) -> list[str]:
    return [json.loads(got.body)["type"] for got in target.received]


class Counted:
    """Kicks seen on the database, counted."""

    def __init__(self, db: Database) -> None:
        self.count = 0
        self.detach = live.on_outbox(db, self._kicked)

    def _kicked(self) -> None:
        self.count += 1


@pytest.fixture
def inbox_and_port() -> Any:
    with smtp_server() as found:
        yield found


async def _change_then_fail(db: Database, number_id: int, clock: ManualClock) -> None:
    async with db.write() as session:
        await lifecycle.record_each(
            session, [number_id], "EDITED", actor="t", at=clock.now(), remark=None
        )
        raise RuntimeError("the change rolls back")


@contextlib.asynccontextmanager
async def _serving_in_process(world: World, settings: Settings) -> AsyncIterator[None]:
    """The app's lifespan (its in-process jobs and kicker) around the test's world."""
    app = create_app(settings, db=world.db, clock=world.clock)
    async with app.router.lifespan_context(app):
        yield


async def test_in_process_a_mutation_ping_and_redelivery_arrive_at_once(
    db: Database,
    clock: ManualClock,
    database_url: str,
    inbox_and_port: tuple[Inbox, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(context, "_context", None)  # the jobs set their own; put back after
    # Not even the jobs' first sweep: whatever arrives, the kick sent.
    monkeypatch.setattr(runner, "enqueue_sweep", lambda: True)
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        smtp_host="127.0.0.1",
        smtp_port=inbox_and_port[1],
        webhook_allow_private=True,
        sweep_interval_seconds=AN_HOUR,
    )
    rules = webhooks.WebhookRules.from_settings(settings)
    world = await World.create(db, clock)
    [before] = await world.add(1)  # no endpoint yet: no delivery
    number = await world.row(before)
    async with receiver() as target, _serving_in_process(world, settings):
        endpoint, _ = await world.run(
            lambda session, who: webhooks.create(
                session,
                who.viewer,
                who.clock,
                rules,
                organization_id=None,
                url=target.url,
                actions=None,
            )
        )
        with pytest.raises(RuntimeError, match="rolls back"):
            await _change_then_fail(db, number.id, clock)
        await world.add(1)
        # The rolled-back EDITED never comes: the first to arrive is the committed ADDED.
        await _arrive(target, lambda t: _types(t) == ["ADDED"], "the mutation's event")

        await world.run(
            lambda session, who: webhooks.ping(session, who.viewer, who.clock, str(endpoint.uuid))
        )
        await _arrive(target, lambda t: _types(t) == ["ADDED", "PING"], "the ping")

        async with db.read() as session:
            first = await session.scalar(
                sa.select(WebhookDelivery).where(WebhookDelivery.event_id.is_not(None))
            )
        assert first is not None
        await world.run(
            lambda session, who: webhooks.redeliver(session, who.viewer, who.clock, str(first.uuid))
        )
        await _arrive(target, lambda t: _types(t) == ["ADDED", "PING", "ADDED"], "redelivery")
        assert target.ids()[0] == target.ids()[2]


async def test_a_rolled_back_change_kicks_nothing_and_a_burst_kicks_once(
    db: Database, clock: ManualClock
) -> None:
    world = await World.create(db, clock)
    [e164] = await world.add(1)
    number = await world.row(e164)
    counted = Counted(db)
    started = time.monotonic()
    enqueued: list[float] = []
    first_sent = asyncio.Event()
    loop = asyncio.get_running_loop()

    def enqueue() -> None:
        enqueued.append(time.monotonic())
        loop.call_soon_threadsafe(first_sent.set)

    kicker = Kicker(enqueue, delay=0.2)
    unkick = kicker.attach(db)
    try:
        with pytest.raises(RuntimeError, match="rolls back"):
            await _change_then_fail(db, number.id, clock)
        assert counted.count == 0

        added = await world.add(2_000)  # in 40 transactions: 40 kicks
        assert counted.count == 40
        async with db.write() as session:  # one transaction of 2,000 events: one kick
            numbers = sa.select(Number.id).where(Number.e164.in_(added))
            await lifecycle.record_each(
                session,
                list(await session.scalars(numbers)),
                "EDITED",
                actor="t",
                at=clock.now(),
                remark=None,
            )
        assert counted.count == 41
        await asyncio.wait_for(first_sent.wait(), WITHIN_SECONDS)
        # 41 commits in a few seconds: a few messages, one per 0.2 s at most.
        assert 1 <= len(enqueued) <= 1 + (time.monotonic() - started) / 0.2
        assert len(enqueued) < 41
    finally:
        unkick()
        kicker.cancel()
        counted.detach()


ROOT_ID = "{ viewer { organization { id } } }"
CREATE = """
mutation ($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { endpoint { id } userErrors { code message } }
}"""
ADD = """
mutation ($input: AddNumbersInput!) {
  addNumbers(input: $input) { numbers { e164 } userErrors { code message } }
}"""
PING = """
mutation ($input: PingWebhookEndpointInput!) {
  pingWebhookEndpoint(input: $input) { delivery { id } userErrors { code message } }
}"""
DELIVERIES = """
query { webhookEndpoints(first: 1) { edges { node {
  deliveries(first: 10) { edges { node { id action status } } }
} } } }"""
REDELIVER = """
mutation ($input: RedeliverWebhookInput!) {
  redeliverWebhook(input: $input) { delivery { id } userErrors { code message } }
}"""


async def _gql(server: Server, token: str, query: str, values: dict[str, Any] | None) -> Any:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{server.base_url}/graphql",
            json={"query": query, "variables": {"input": values} if values else {}},
            headers={"Authorization": f"Bearer {token}"},
        )
    body = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body
    for payload in body["data"].values():
        assert not (payload or {}).get("userErrors"), body
    return body["data"]


@pytest.mark.slow
async def test_with_a_worker_on_redis_a_mutation_ping_and_redelivery_arrive_at_once(
    db: Database, database_url: str, tmp_path: Path, inbox_and_port: tuple[Inbox, int]
) -> None:
    """`db`, unused, empties PostgreSQL after: no delivery is left for the next test."""
    root = run_cli(["migrate"], database_url, tmp_path).splitlines()[-1]
    with redis_database() as redis_url:
        env = job_environment(database_url, redis_url, inbox_and_port[1])
        env.update(NUMBRA_WEBHOOK_ALLOW_PRIVATE="true", NUMBRA_SWEEP_INTERVAL_SECONDS="3600")
        serve_settings = {k: v for k, v in env.items() if k.startswith("NUMBRA_")}
        async with receiver() as target:
            with (
                processes(tmp_path, env) as running,
                serving(database_url, 1, tmp_path, settings=serve_settings) as (server,),
            ):
                # No scheduler: nothing but the kick enqueues deliveries.
                running.worker("worker")
                org = (await _gql(server, root, ROOT_ID, None))["viewer"]["organization"]["id"]
                created = await _gql(server, root, CREATE, {"url": target.url})
                endpoint = created["createWebhookEndpoint"]["endpoint"]["id"]
                values = {"numbers": ["+6561234567"], "vendor": "V", "country": "SG"}
                await _gql(server, root, ADD, values | {"sku": "s", "organizationId": org})
                await _arrive(target, lambda t: _types(t) == ["ADDED"], "the mutation's event")

                await _gql(server, root, PING, {"id": endpoint})
                await _arrive(target, lambda t: _types(t) == ["ADDED", "PING"], "the ping")

                listed = await _gql(server, root, DELIVERIES, None)
                [node] = listed["webhookEndpoints"]["edges"]
                [added] = [
                    edge["node"]
                    for edge in node["node"]["deliveries"]["edges"]
                    if edge["node"]["action"] == "ADDED"
                ]
                await _gql(server, root, REDELIVER, {"deliveryId": added["id"]})
                await _arrive(
                    target, lambda t: _types(t) == ["ADDED", "PING", "ADDED"], "the redelivery"
                )
    assert target.ids()[0] == target.ids()[2]
