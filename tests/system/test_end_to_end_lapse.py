"""End to end: `numbra serve` without Redis runs the jobs itself. A reservation made over
HTTP to end a few seconds ahead is noticed at once and lapses on time, by the served app.
"""

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain import tokens
from domain.clock import ManualClock
from models import OrganizationKind, Role
from models.database import Database
from tests.support.api import gid
from tests.support.job_processes import job_environment, processes
from tests.support.mail import Inbox, plain_text, smtp_server
from tests.support.processes import READY_WITHIN_SECONDS, free_port
from tests.support.world import World

pytestmark = pytest.mark.slow

ENDS_IN = timedelta(seconds=3)
LAPSED_WITHIN_SECONDS = 30.0
RESERVE = """mutation($numbers: [String!]!, $holder: ID!, $ends: DateTime) {
  reserveNumbers(input: {numbers: $numbers, reservedForId: $holder, expiresAt: $ends}) {
    userErrors { code message }
  }
}"""
READ = """query($e164: String!) {
  number(e164: $e164) { state history { edges { node { action actor } } } }
}"""


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with smtp_server() as server:
        yield server


async def _post(client: httpx.AsyncClient, token: str, query: str, **variables: Any) -> Any:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    body = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body
    return body["data"]


async def _ready(client: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    while True:
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "numbra serve did not come up"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_served_app_lapses_a_reservation_a_few_seconds_after_it_ends(
    db: Database, database_url: str, smtp: tuple[Inbox, int], tmp_path: Path
) -> None:
    inbox, smtp_port = smtp
    inventory = await World.create(db, ManualClock(datetime.now(UTC)))
    customer = await inventory.org(
        "Acme", OrganizationKind.CUSTOMER, billing_email="billing@acme.test"
    )
    [e164] = await inventory.add(1, pool=customer)
    async with db.write() as session:
        token = await tokens.issue(session, inventory.root, "ops", Role.ADMIN, inventory.clock)
    port = free_port()
    env = job_environment(database_url, None, smtp_port)

    with processes(tmp_path, env) as running:
        running.start("serve", ["serve", "--host", "127.0.0.1", "--port", str(port)])
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            await _ready(client)
            ends = datetime.now(UTC) + ENDS_IN
            data = await _post(
                client, token, RESERVE, numbers=[e164], holder=gid(customer), ends=ends.isoformat()
            )
            assert data["reserveNumbers"]["userErrors"] == []

            async def lapsed() -> bool:
                number = (await _post(client, token, READ, e164=e164))["number"]
                return bool(number["state"] == "AVAILABLE")

            await running.wait_for("the reservation to lapse", lapsed)
            number = (await _post(client, token, READ, e164=e164))["number"]

    assert datetime.now(UTC) - ends < timedelta(seconds=LAPSED_WITHIN_SECONDS)
    history = [(e["node"]["action"], e["node"]["actor"]) for e in number["history"]["edges"]]
    assert history[:3] == [("EXPIRED", "system"), ("NOTIFIED", "system"), ("RESERVED", "ops")]
    [mail] = inbox.messages
    assert mail["To"] == "billing@acme.test"
    assert e164 in plain_text(mail)
