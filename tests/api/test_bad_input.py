"""Input no handler expected: times out of range after their offset, bodies that are not
UTF-8, variables nested deeper than any input, integers past Python's conversion limit,
lone surrogates. Each is a 400 (or a VALIDATION error of the mutation) with the request
id, never a 500; and an export is checked whole before its first byte."""

import asyncio
import itertools
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from domain.clock import ManualClock
from domain.csv import exports
from models.database import Database
from settings import Settings
from tests.support.api import Api, gid
from web.app import create_app
from web.http_protocol import GuardedHttpToolsProtocol

N1 = "+6561000101"
# Valid ISO-8601, but outside what a datetime holds once moved to UTC.
OUT_OF_RANGE = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"]
# The edges of the range, in UTC: answered as any other time.
EDGES = ["9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00Z", "9999-12-31T09:59:59-14:00"]

TIMED = {
    "filter": "query($t: DateTime!) { numbers(filter: {expiresBefore: $t}) { totalCount } }",
    "lock": """mutation($t: DateTime!) {
      lockNumbers(input: {numbers: ["+6561000101"], expiresAt: $t}) { userErrors { code } } }""",
    "extend": """mutation($t: DateTime!, $paid: UUID!) {
      extendReservation(input: {numbers: ["+6561000101"], didReservationUuid: $paid,
        expiresAt: $t}) { userErrors { code } } }""",
    "reserve": """mutation($t: DateTime!, $holder: ID!) {
      reserveNumbers(input: {numbers: ["+6561000102"], reservedForId: $holder, expiresAt: $t})
      { userErrors { code } } }""",
}


def refused(response: httpx.Response) -> list[dict[str, Any]]:
    """A 400 with the request id, its errors in JSON as every refusal has them."""
    assert response.status_code == 400, (response.status_code, response.text)
    assert len(response.headers["x-request-id"]) == 16
    body = response.json()
    errors: list[dict[str, Any]] = body["errors"]
    assert errors, body
    for error in errors:
        assert error.get("extensions", {}).get("code") != "INTERNAL", error
    return errors


@pytest.fixture
async def numbers(api: Api) -> Api:
    root = await api.root()
    added = await api.gql(
        'mutation { addNumbers(input: {numbers: ["+6561000101", "+6561000102"], vendor: "V",'
        ' country: "SG", sku: "DID"}) { userErrors { message } } }'
    )
    assert added["addNumbers"]["userErrors"] == []
    await api.gql(
        'mutation($holder: ID!) { reserveNumbers(input: {numbers: ["+6561000101"],'
        " reservedForId: $holder}) { userErrors { message } } }",
        {"holder": gid(root)},
    )
    return api


async def variables(api: Api, at: str) -> dict[str, Any]:
    return {"t": at, "paid": str(uuid.uuid4()), "holder": gid(await api.root())}


@pytest.mark.parametrize("at", OUT_OF_RANGE)
async def test_a_time_out_of_range_after_its_offset_is_a_400_in_filters_locks_and_extensions(
    numbers: Api, at: str
) -> None:
    for name, query in TIMED.items():
        response = await numbers.post(query, await variables(numbers, at))
        [error] = refused(response)
        assert "out of range" in error["message"], (name, error)
        # As a literal of the document, too.
        declared = query.replace("$t: DateTime!, ", "").replace("($t: DateTime!)", "")
        literal = declared.replace("$t", f'"{at}"')
        response = await numbers.post(literal, await variables(numbers, at))
        [error] = refused(response)
        assert "out of range" in error["message"], (name, error)


@pytest.mark.parametrize("at", EDGES)
async def test_times_at_the_edges_of_the_range_are_answered_as_any_other(
    numbers: Api, at: str
) -> None:
    for name, query in TIMED.items():
        body = (await numbers.post(query, await variables(numbers, at))).json()
        assert "errors" not in body, (name, body)


@pytest.mark.parametrize("at", OUT_OF_RANGE)
async def test_an_export_with_a_time_out_of_range_is_a_400_before_any_byte(
    numbers: Api, at: str
) -> None:
    response = await numbers.client.get(
        "/export/numbers.csv", params={"expires_before": at}, headers=numbers.auth()
    )

    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["field"] == ["filter", "expires_before"]
    assert "out of range" in error["message"]


SEARCH = "query($v: [String]) { numbers(filter: {numbers: $v}) { totalCount } }"
TAGGED = "query($t: String) { numbers(filter: {tag: $t}) { totalCount } }"
DEEP = "[" * 50_000 + "]" * 50_000
# Raw request bodies, as a client's bug or an attacker sends them.
BODIES = {
    "variables nested 50,000 deep": f'{{"query": "{SEARCH}", "variables": {{"v": {DEEP}}}}}',
    "variables nested 200 deep": f'{{"query": "{SEARCH}", "variables": {{"v": {DEEP[:200]}'
    f"{DEEP[-200:]}}}}}",
    "an integer of 5,000 digits": '{"query": "query($n: Int) { __typename }", "variables": '
    f'{{"n": {"9" * 5000}}}}}',
    "a lone surrogate in a variable": f'{{"query": "{TAGGED}", "variables": {{"t": "\\ud83d"}}}}',
    "a lone surrogate in the query": '{"query": "{ numbers(filter: {tag: \\"\\ud83d\\"})'
    ' { totalCount } }"}',
    "a lone surrogate in a comment": '{"query": "# \\udc00\\n{ __typename }"}',
    "a lone surrogate as a key": f'{{"query": "{TAGGED}", "variables": {{"\\ud83d": 1}}}}',
}


@pytest.mark.parametrize("body", BODIES.values(), ids=list(BODIES))
async def test_a_body_no_operation_can_come_from_is_a_400(api: Api, body: str) -> None:
    response = await api.client.post(
        "/graphql",
        content=body.encode(),
        headers=api.auth() | {"content-type": "application/json"},
    )

    refused(response)


async def test_a_body_that_is_not_utf8_is_a_400(api: Api) -> None:
    for body in (b'{"query": "{ __typename \xff }"}', b"\xfe\xff\x00{"):
        response = await api.client.post(
            "/graphql", content=body, headers=api.auth() | {"content-type": "application/json"}
        )

        [error] = refused(response)
        assert "UTF-8" in error["message"]


@pytest.mark.parametrize(
    "params",
    [
        # As deep as a URL httpx sends may carry.
        {"query": SEARCH, "variables": f'{{"v": {"[" * 5000}{"]" * 5000}}}'},
        {"query": "query($n: Int) { __typename }", "variables": f'{{"n": {"9" * 5000}}}'},
        {"query": TAGGED, "variables": '{"t": "\\ud83d"}'},
    ],
    ids=["deep", "integer", "surrogate"],
)
async def test_the_same_in_a_get_s_query_string_is_a_400(api: Api, params: dict[str, str]) -> None:
    response = await api.client.get("/graphql", params=params, headers=api.auth())

    refused(response)


@asynccontextmanager
async def served(app: ASGIApp) -> AsyncIterator[str]:
    """The app behind a real uvicorn on a loopback port, with the protocol `numbra serve`
    runs: what a client sees on the wire."""
    config = uvicorn.Config(
        app, port=0, http=GuardedHttpToolsProtocol, lifespan="off", log_level="critical"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done(), "uvicorn did not start"
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving


async def read_into(response: httpx.Response, received: bytearray) -> None:
    async for chunk in response.aiter_bytes():
        received += chunk


async def test_an_export_failing_mid_stream_ends_so_the_client_cannot_take_it_for_whole(
    numbers: Api,
    db: Database,
    settings: Settings,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(exports, "PAGE_SIZE", 1)
    pages = itertools.count()
    write_page = exports._format

    def failing_on_the_second_page(rows: Any) -> str:
        if next(pages) == 1:
            raise RuntimeError("the disk went away")
        return write_page(rows)

    monkeypatch.setattr(exports, "_format", failing_on_the_second_page)
    received = bytearray()
    with caplog.at_level(logging.ERROR, logger="numbra"):
        async with (
            served(create_app(settings, db=db, clock=clock)) as base_url,
            httpx.AsyncClient(base_url=base_url) as client,
            client.stream("GET", "/export/numbers.csv", headers=numbers.auth()) as response,
        ):
            assert response.status_code == 200
            request_id = response.headers["x-request-id"]
            with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
                await read_into(response, received)

    assert received.decode().splitlines()[1].startswith(N1)
    assert "+6561000102" not in received.decode()
    [record] = [r for r in caplog.records if request_id in r.getMessage()]
    assert "internal error in GET /export/numbers.csv" in record.getMessage()
    assert record.exc_info is not None


@pytest.mark.parametrize("field", ["tag", "vendor", "sku", "country", "routing", "pattern"])
async def test_an_export_filter_with_a_nul_is_a_400_before_any_byte(api: Api, field: str) -> None:
    response = await api.client.get(f"/export/numbers.csv?{field}=a%00b", headers=api.auth())

    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["field"] == ["filter", field]
    assert "NUL" in error["message"]


async def test_answers_holding_inventory_are_never_stored_by_a_cache(api: Api) -> None:
    query = "{ viewer { role } }"
    answers = {
        "GET /graphql": await api.client.get(
            "/graphql", params={"query": query}, headers=api.auth()
        ),
        "GET /graphql, refused": await api.client.get(
            "/graphql", params={"query": query, "variables": "[[["}, headers=api.auth()
        ),
        "POST /graphql": await api.post(query),
        "export": await api.client.get("/export/numbers.csv", headers=api.auth()),
        "export, refused": await api.client.get(
            "/export/numbers.csv", params={"golden": "maybe"}, headers=api.auth()
        ),
    }

    for name, response in answers.items():
        assert response.headers.get("cache-control") == "no-store", (name, response.headers)
