"""Live updates against real `numbra serve` processes, with a real websocket client.

Two processes on PostgreSQL and Redis: an event committed through one reaches a
subscriber of the other; a subscriber in another subtree receives nothing of it; a bad
token is closed with 4403, and so is the socket of a token deleted while it listens.
One process on SQLite without Redis delivers in-process, sends nothing for a refused
mutation, and bounds the subscriptions of a connection.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.support.databases import pg_database
from tests.support.job_processes import REDIS_URL
from tests.support.processes import Server, run_cli, serving

pytestmark = pytest.mark.slow

# Bounded waits for what another process does on its own time.
WITHIN_SECONDS = 20.0
WARM_UP = "+65619"
WARM_UP_TRIES = 40
WARM_UP_WAIT_SECONDS = 0.5
PROTOCOL = "graphql-transport-ws"
SUBSCRIBE = """
subscription ($filter: NumberEventFilter) {
  numberEvents(filter: $filter) { action actor e164 organization { name } }
}"""
CREATE_ORGANIZATION = """
mutation ($input: CreateOrganizationInput!) {
  createOrganization(input: $input) { organization { id } userErrors { code message } }
}"""
CREATE_TOKEN = """
mutation ($input: CreateTokenInput!) {
  createToken(input: $input) { token userErrors { code message } }
}"""
ROOT_ID = "{ viewer { organization { id } } }"
ADD_NUMBERS = """
mutation ($input: AddNumbersInput!) {
  addNumbers(input: $input) { numbers { e164 } userErrors { code message } }
}"""


def _gql(server: Server, token: str, query: str, variables: dict[str, Any]) -> Any:
    response = httpx.post(
        f"{server.base_url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    body = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body
    return body["data"]


def _ok(server: Server, token: str, field: str, query: str, values: dict[str, Any]) -> Any:
    payload = _gql(server, token, query, {"input": values})[field]
    assert payload["userErrors"] == [], payload
    return payload


def _organization(server: Server, token: str, name: str, kind: str, parent: str | None) -> str:
    values = {"name": name, "kind": kind, "parentId": parent}
    org = _ok(server, token, "createOrganization", CREATE_ORGANIZATION, values)
    return str(org["organization"]["id"])


def _token(server: Server, token: str, org_id: str, name: str) -> str:
    values = {"name": name, "organizationId": org_id, "role": "VIEWER"}
    return str(_ok(server, token, "createToken", CREATE_TOKEN, values)["token"])


def _add(server: Server, token: str, org_id: str, numbers: list[str]) -> Any:
    values = {
        "numbers": numbers,
        "vendor": "V",
        "country": "SG",
        "sku": "sku",
        "organizationId": org_id,
    }
    return _gql(server, token, ADD_NUMBERS, {"input": values})["addNumbers"]


def _ws_url(server: Server) -> str:
    return server.base_url.replace("http://", "ws://") + "/graphql"


@asynccontextmanager
async def _socket(
    server: Server, token: str | None, header: bool = False
) -> AsyncIterator[ClientConnection]:
    """A graphql-transport-ws connection, initialised with the token (in the payload, or
    in the upgrade request's header)."""
    headers = {"Authorization": f"Bearer {token}"} if header and token else None
    async with connect(
        _ws_url(server), subprotocols=[Subprotocol(PROTOCOL)], additional_headers=headers
    ) as socket:
        payload = {"Authorization": f"Bearer {token}"} if token and not header else {}
        await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
        yield socket


async def _message(socket: ClientConnection, within: float) -> dict[str, Any]:
    """The next message; graphql-transport-ws sends text frames only (a browser's
    client cannot parse a binary one)."""
    frame = await asyncio.wait_for(socket.recv(), within)
    assert isinstance(frame, str), f"a binary frame: {frame!r}"
    message: dict[str, Any] = json.loads(frame)
    return message


async def _acknowledged(socket: ClientConnection) -> None:
    message = await _message(socket, WITHIN_SECONDS)
    assert message["type"] == "connection_ack", message


async def _subscribe(
    socket: ClientConnection, op_id: str = "1", spec: dict[str, Any] | None = None
) -> None:
    payload = {"query": SUBSCRIBE, "variables": {"filter": spec}}
    await socket.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))


async def _next_event(socket: ClientConnection) -> dict[str, Any]:
    """The next event, past the warm-up numbers' (see `_warm`)."""
    while True:
        message = await _message(socket, WITHIN_SECONDS)
        if message["type"] == "ping":
            await socket.send(json.dumps({"type": "pong"}))
            continue
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        event: dict[str, Any] = message["payload"]["data"]["numberEvents"]
        if not event["e164"].startswith(WARM_UP):
            return event


async def _warm(
    server: Server, token: str, org_id: str, socket: ClientConnection, serial: int
) -> None:
    """Add warm-up numbers to the pool until the subscriber has one: its subscription is
    registered by then (a subscribe message has no answer of its own)."""
    for attempt in range(WARM_UP_TRIES):
        e164 = f"{WARM_UP}{serial}{attempt:04d}"
        added = await asyncio.to_thread(_add, server, token, org_id, [e164])
        assert added["userErrors"] == [], added
        try:
            message = await _message(socket, WARM_UP_WAIT_SECONDS)
        except TimeoutError:
            continue
        assert message["type"] == "next", message
        assert message["payload"].get("data"), message
        assert message["payload"]["data"]["numberEvents"]["e164"].startswith(WARM_UP)
        return
    pytest.fail(f"no event reached the subscriber within {WARM_UP_TRIES} tries")


async def _closed_with(socket: ClientConnection) -> int | None:
    """The code the server closed the socket with, once it does (what came before skipped)."""
    try:
        while True:
            await asyncio.wait_for(socket.recv(), WITHIN_SECONDS)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


def _setup(url: str, workdir: Path) -> str:
    printed = run_cli(["migrate"], url, workdir).splitlines()
    return printed[-1]


async def _delete_token(url: str, name: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(sa.text("DELETE FROM tokens WHERE name = :n"), {"n": name})
    finally:
        await engine.dispose()


def test_events_reach_subscribers_of_another_process_through_redis(tmp_path: Path) -> None:
    with pg_database("numbra_live") as url:
        root = _setup(url, tmp_path)
        settings = {"NUMBRA_REDIS_URL": REDIS_URL, "NUMBRA_LIVE_TOKEN_CHECK_SECONDS": "0.5"}
        with serving(url, 2, tmp_path, settings=settings) as (one, other):
            partner = _organization(one, root, "Partner", "PARTNER", None)
            c1 = _organization(one, root, "C1", "CUSTOMER", partner)
            c2 = _organization(one, root, "C2", "CUSTOMER", partner)
            c1_token = _token(one, root, c1, "c1 viewer")
            c2_token = _token(one, root, c2, "c2 viewer")
            asyncio.run(_across_processes(one, other, root, (c1, c1_token), (c2, c2_token), url))


async def _across_processes(
    one: Server,
    other: Server,
    root: str,
    c1: tuple[str, str],
    c2: tuple[str, str],
    url: str,
) -> None:
    (c1_id, c1_token), (c2_id, c2_token) = c1, c2
    async with (
        _socket(other, root, header=True) as provider,
        _socket(other, c1_token) as first,
        _socket(other, c2_token) as second,
    ):
        for socket in (provider, first, second):
            await _acknowledged(socket)
            await _subscribe(socket)
        await _warm(one, root, c1_id, first, 1)
        await _warm(one, root, c2_id, second, 2)
        await _warm(one, root, c1_id, provider, 3)
        await asyncio.to_thread(_add, one, root, c1_id, ["+6561000001"])
        assert (await _next_event(provider))["e164"] == "+6561000001"
        assert (await _next_event(first)) == {
            "action": "ADDED",
            "actor": await _actor_of(one, root),
            "e164": "+6561000001",
            "organization": {"name": "C1"},
        }
        # C2 got nothing of C1's: its first event is its own number's.
        await asyncio.to_thread(_add, one, root, c2_id, ["+6561000002"])
        assert (await _next_event(second))["e164"] == "+6561000002"
        assert (await _next_event(provider))["e164"] == "+6561000002"

        # A deleted token's socket closes with 4403, the others' stay open.
        await _delete_token(url, "c1 viewer")
        assert await _closed_with(first) == 4403
        await asyncio.to_thread(_add, one, root, c2_id, ["+6561000003"])
        assert (await _next_event(second))["e164"] == "+6561000003"


async def _actor_of(server: Server, token: str) -> str:
    data = await asyncio.to_thread(_gql, server, token, "{ viewer { tokenName } }", {})
    return str(data["viewer"]["tokenName"])


def test_in_process_delivery_bad_tokens_and_bounds(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/live.db"
    root = _setup(url, tmp_path)
    settings = {"NUMBRA_MAX_SUBSCRIPTIONS_PER_CONNECTION": "1"}
    with serving(url, 1, tmp_path, settings=settings) as (server,):
        asyncio.run(_in_process(server, root))


async def _in_process(server: Server, root: str) -> None:
    for token, header in (("nbr_made-up", False), (None, False), ("nbr_made-up", True)):
        async with _socket(server, token, header) as unknown:
            assert await _closed_with(unknown) == 4403

    async with _socket(server, root) as socket:
        await _acknowledged(socket)
        await _subscribe(socket, "1", {"actions": ["ADDED"]})
        await _subscribe(socket, "2")
        message = await _message(socket, WITHIN_SECONDS)
        assert message["type"] == "error", message
        assert message["id"] == "2"
        viewer = await asyncio.to_thread(_gql, server, root, ROOT_ID, {})
        root_id = viewer["viewer"]["organization"]["id"]
        await _warm(server, root, root_id, socket, 1)
        refused = await asyncio.to_thread(_add, server, root, root_id, ["+6561000001", "nonsense"])
        assert refused["userErrors"] != []
        added = await asyncio.to_thread(_add, server, root, root_id, ["+6561000009"])
        assert added["userErrors"] == []
        assert (await _next_event(socket))["e164"] == "+6561000009"


def test_a_server_of_registered_operations_refuses_an_unregistered_subscription(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/live.db"
    root = _setup(url, tmp_path)
    with serving(url, 1, tmp_path, settings={"NUMBRA_PERSISTED_ONLY": "true"}) as (server,):
        asyncio.run(_unregistered(server, root))


async def _unregistered(server: Server, root: str) -> None:
    async with _socket(server, root) as socket:
        await _acknowledged(socket)
        await _subscribe(socket)
        message = await _message(socket, WITHIN_SECONDS)
        assert message["type"] == "error", message
        assert message["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_REGISTERED"
