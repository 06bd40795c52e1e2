"""Bad and abusive requests are refused (400, 413), never a 500; internal errors are masked."""

import functools
import json
import logging
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from strawberry.extensions.parser_cache import _get_parse_cache
from strawberry.extensions.validation_cache import _get_validate_cache

from domain import organizations, tokens
from domain.clock import ManualClock
from models import Role
from models.database import Database
from schema.extensions import CACHE_SIZE
from settings import Settings
from tests.support import differential
from tests.support.api import Api, without_cost
from web.app import create_app

ROLE = "{ viewer { role } }"
SERIES = "{ series { totalCount } }"


def nested(depth: int) -> str:
    """A query whose deepest field sits at `depth` (top-level fields are at depth 0)."""
    parents = depth - 2
    return "{ viewer { organization " + "{ parent " * parents + "{ name }" + " }" * parents + " } }"


def aliased(count: int) -> str:
    """`count` aliases, the last eleven of them inside a fragment."""
    inline = " ".join(f"a{i}: viewer {{ role }}" for i in range(count - 11))
    hidden = " ".join(f"b{i}: viewer {{ role }}" for i in range(11))
    return f"query {{ {inline} ...More }} fragment More on Query {{ {hidden} }}"


def padded_body(size: int) -> bytes:
    """A valid request body of exactly `size` bytes (padded with an unused variable)."""
    body = {"query": ROLE, "variables": {"pad": ""}}
    overhead = len(json.dumps(body).encode())
    body["variables"] = {"pad": "x" * (size - overhead)}
    encoded = json.dumps(body).encode()
    assert len(encoded) == size
    return encoded


def lru(cached: Callable[..., Any]) -> "functools._lru_cache_wrapper[Any]":
    assert isinstance(cached, functools._lru_cache_wrapper)
    return cached


def auth(api: Api) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"}


# Query limits


async def test_a_query_at_the_depth_limit_runs_and_one_deeper_is_refused(
    api: Api, settings: Settings
) -> None:
    limit = settings.max_query_depth
    assert (await api.post(nested(limit))).status_code == 200

    response = await api.post(nested(limit + 1))
    assert response.status_code == 400
    body = response.json()
    assert body["data"] is None
    assert [e["message"] for e in body["errors"]] == [
        f"'anonymous' exceeds maximum operation depth of {limit}"
    ]


async def test_too_many_aliases_are_refused_even_when_hidden_in_a_fragment(
    api: Api, settings: Settings
) -> None:
    limit = settings.max_aliases
    assert (await api.post(aliased(limit))).status_code == 200

    for _ in range(2):  # the second time from the validation cache: still refused
        response = await api.post(aliased(limit + 1))
        assert response.status_code == 400
        assert [e["message"] for e in response.json()["errors"]] == [
            f"{limit + 1} aliases found. Allowed: {limit}"
        ]


async def test_a_document_at_the_token_limit_runs_and_a_longer_one_is_refused(
    api: Api, settings: Settings
) -> None:
    limit = settings.max_tokens

    def document(tokens: int) -> str:
        """Named operations of five tokens each, so validating them costs little."""
        operations, extra = divmod(tokens, 5)
        first = "query Q0 { " + "__typename " * (1 + extra) + "}"
        return " ".join([first] + [f"query Q{i} {{ __typename }}" for i in range(1, operations)])

    async def run(tokens: int) -> httpx.Response:
        body = {"query": document(tokens), "operationName": "Q0"}
        return await api.client.post("/graphql", json=body, headers=auth(api))

    fits = await run(limit)
    assert fits.status_code == 200
    assert without_cost(fits.json()) == {"data": {"__typename": "Query"}}

    response = await run(limit + 1)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["message"].startswith(f"Syntax Error: Document contains more than {limit} tokens")


# Body size


async def test_a_body_at_the_limit_is_read_and_one_byte_more_is_413(
    api: Api, settings: Settings
) -> None:
    limit = settings.max_body_bytes
    fits = await api.client.post("/graphql", content=padded_body(limit), headers=auth(api))
    assert fits.status_code == 200
    assert without_cost(fits.json()) == {"data": {"viewer": {"role": "ADMIN"}}}

    too_big = await api.client.post("/graphql", content=padded_body(limit + 1), headers=auth(api))
    assert too_big.request.headers["Content-Length"] == str(limit + 1)
    assert too_big.status_code == 413
    assert too_big.json() == {"errors": [{"message": f"request body over {limit} bytes"}]}


async def test_a_chunked_body_over_the_limit_is_413_without_reading_it_all(
    api: Api, settings: Settings
) -> None:
    limit = settings.max_body_bytes
    chunk, chunks = 64 * 1024, 4 * limit // (64 * 1024)
    sent = 0

    async def stream() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(chunks):
            sent += 1
            yield b" " * chunk

    response = await api.client.post("/graphql", content=stream(), headers=auth(api))
    assert "Content-Length" not in response.request.headers
    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert response.status_code == 413
    assert response.json() == {"errors": [{"message": f"request body over {limit} bytes"}]}
    assert sent < chunks


# Malformed requests


async def test_a_batched_request_is_refused(api: Api) -> None:
    response = await api.client.post(
        "/graphql", json=[{"query": ROLE}, {"query": ROLE}], headers=auth(api)
    )
    assert response.status_code == 400
    assert "Batching is not enabled" in response.text


async def test_malformed_json_is_refused(api: Api) -> None:
    response = await api.client.post("/graphql", content=b'{"query": "{ vie', headers=auth(api))
    assert response.status_code == 400
    assert "Unable to parse request body as JSON" in response.text


@pytest.mark.parametrize(
    ("query", "variables", "message"),
    [
        ("{ viewer { role }", {}, "Syntax Error: Expected Name, found <EOF>."),
        ("{ viewer { role salary } }", {}, "Cannot query field 'salary' on type 'Viewer'."),
        (
            "query($first: Int) { series(first: $first) { totalCount } }",
            {"first": "ten"},
            "Variable '$first' has invalid value: Int cannot represent non-integer value: 'ten'",
        ),
        (
            "query($first: Int!) { series(first: $first) { totalCount } }",
            {},
            "Variable '$first' has invalid value:"
            " Expected a value of non-null type 'Int!' to be provided.",
        ),
    ],
    ids=["syntax error", "unknown field", "wrong variable type", "missing variable"],
)
async def test_invalid_graphql_is_a_400_with_a_clear_message(
    api: Api, query: str, variables: dict[str, object], message: str
) -> None:
    response = await api.post(query, variables)
    assert response.status_code == 400
    body = response.json()
    assert body["data"] is None
    assert [e["message"] for e in body["errors"]] == [message]


async def test_bad_input_is_not_logged_as_an_internal_error(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    query = "query($first: Int) { series(first: $first) { totalCount } }"
    with caplog.at_level(logging.INFO, logger="numbra"):
        assert (await api.post(query, {"first": "secret-7f3a"})).status_code == 400
        assert (await api.post("{ nope }")).status_code == 400
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert "secret-7f3a" not in caplog.text


# Internal errors


@pytest.fixture
async def broken_api(
    sqlite_template: Path, tmp_path: Path, clock: ManualClock
) -> AsyncIterator[Api]:
    """An app on its own SQLite database whose `series` table is gone."""
    path = tmp_path / "broken.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite+aiosqlite:///{path}"
    db = Database(url)
    async with db.write() as session:
        root, _ = await organizations.ensure_root(session, "Provider", clock)
        token = await tokens.issue(session, root, "root admin", Role.ADMIN, clock)
    async with db.engine.begin() as conn:
        await conn.exec_driver_sql("DROP TABLE series")
    settings = Settings(_env_file=None, database_url=url)
    try:
        async with Api.open(create_app(settings, db=db, clock=clock), token, db, clock) as api:
            yield api
    finally:
        await db.dispose()


@pytest.mark.skipif(
    differential.enabled(), reason="the differential run's second execution logs it again"
)
async def test_an_internal_error_is_masked_and_logged_with_the_request_id(
    broken_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="numbra"):
        response = await broken_api.post(SERIES)

    assert response.status_code < 500
    request_id = response.headers["X-Request-ID"]
    assert without_cost(response.json()) == {
        "data": None,
        "errors": [
            {
                "message": f"Internal error; quote request id {request_id} when reporting it.",
                "locations": [{"line": 1, "column": 3}],
                "path": ["series"],
                "extensions": {"code": "INTERNAL", "requestId": request_id},
            }
        ],
    }
    for leak in ("Traceback", "SELECT", "no such table", "sqlite", "File "):
        assert leak not in response.text

    [record] = [r for r in caplog.records if request_id in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert "no such table: series" in caplog.text
    assert "Traceback" in caplog.text


async def test_every_response_carries_its_own_request_id(api: Api) -> None:
    seen = {(await api.post(ROLE)).headers["X-Request-ID"] for _ in range(3)}
    seen.add((await api.post("{ nope }")).headers["X-Request-ID"])
    seen.add((await api.client.post("/graphql", json={"query": ROLE})).headers["X-Request-ID"])
    assert len(seen) == 5


# Caches


@pytest.mark.skipif(
    differential.enabled(), reason="the differential run's second execution hits the caches too"
)
async def test_the_limits_keep_the_parse_and_validation_caches_working(api: Api) -> None:
    # A query no other test sends, so the first request is a miss whatever ran before.
    query = f"query Once_{uuid.uuid4().hex} {{ viewer {{ role }} }}"
    validate, parse = lru(_get_validate_cache(CACHE_SIZE)), lru(_get_parse_cache(CACHE_SIZE))

    before = validate.cache_info(), parse.cache_info()
    await api.gql(query)
    first = validate.cache_info(), parse.cache_info()
    await api.gql(query)
    second = validate.cache_info(), parse.cache_info()

    for step in (0, 1):
        assert (first[step].misses, first[step].hits) == (
            before[step].misses + 1,
            before[step].hits,
        )
        assert (second[step].misses, second[step].hits) == (
            first[step].misses,
            first[step].hits + 1,
        )
