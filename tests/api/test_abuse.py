"""Abuse: what an attacker would send is refused quickly, with a clear error.

tests/api/test_limits.py proves each limit at its edge (one more is refused). Here the
sizes are an attacker's: 500 aliases, a page of a billion, batches twenty times the
limit, fragment cycles and fragment bombs, arguments of half a megabyte, and a client
that trickles its body (against a real `numbra serve`). "Quickly" is shown by the
database: a refused request runs no statement beyond the token's lookup (or no more
than a just-over-the-limit one does), so its cost does not grow with what was sent.
"""

import asyncio
import json
import os
import select
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import OrganizationKind
from settings import Settings
from tests.support.api import Api, gid, without_cost
from tests.support.databases import StatementCounter
from tests.support.processes import serving

HUGE_PAGE = 10**9
# Twenty times the batch limit, twice the filter's.
HUGE_BATCH = 20_000
SLOW_CLIENT_TIMEOUT_SECONDS = 1.0

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def run(
    api: Api, statements: StatementCounter, query: str, variables: dict[str, Any] | None = None
) -> tuple[httpx.Response, int]:
    """The response to an operation, and how many SQL statements answering it took."""
    statements.reset()
    response = await api.post(query, variables)
    return response, statements.count


async def lookup_only(api: Api, statements: StatementCounter) -> int:
    """The statements of a request that runs no resolver: the token's lookup (after its
    first use this minute, which also marks it used)."""
    await run(api, statements, "{ __typename }")
    response, count = await run(api, statements, "{ __typename }")
    assert response.status_code == 200
    assert count > 0, "the counter must see the token's lookup, or comparing to it proves nothing"
    return count


def messages(response: httpx.Response) -> list[str]:
    return [error["message"] for error in response.json()["errors"]]


def fragment_bomb(levels: int) -> str:
    """A document of a few hundred bytes whose fragments expand to 2**levels fields."""
    fragments = " ".join(
        f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    return f"query {{ ...F0 }} {fragments} fragment F{levels} on Query {{ viewer {{ role }} }}"


# ---- refused before anything runs ----


async def test_500_aliases_are_refused_before_any_resolver_runs(
    api: Api, statements: StatementCounter, settings: Settings
) -> None:
    query = "{ " + " ".join(f"a{i}: __typename" for i in range(500)) + " }"
    lookup = await lookup_only(api, statements)

    response, count = await run(api, statements, query)

    assert response.status_code == 400
    assert messages(response) == [f"500 aliases found. Allowed: {settings.max_aliases}"]
    assert count == lookup


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
            "Cannot spread fragment 'A' within itself via 'B'.",
        ),
        (
            "query { ...A } fragment A on Query { viewer { ...A } }",
            "Fragment 'A' cannot be spread here as objects of type 'Viewer'"
            " can never be of type 'Query'.",
        ),
        (
            # Twenty levels of fragments, each a step deeper: the depth counts through them.
            "query { viewer { organization { ...P0 } } } "
            + " ".join(
                f"fragment P{i} on Organization {{ parent {{ ...P{i + 1} }} }}" for i in range(20)
            )
            + " fragment P20 on Organization { name }",
            "'anonymous' exceeds maximum operation depth of 12",
        ),
    ],
    ids=["fragment cycle", "fragment spread into itself", "deep fragments"],
)
async def test_fragment_tricks_are_refused_before_any_resolver_runs(
    api: Api, statements: StatementCounter, query: str, message: str
) -> None:
    lookup = await lookup_only(api, statements)

    response, count = await run(api, statements, query)

    assert response.status_code == 400
    assert message in messages(response)
    assert count == lookup


@SQLITE_ONLY
async def test_a_fragment_bomb_is_measured_once_per_fragment(api: Api) -> None:
    # 2**20 fields after expansion: walking each spread again (strawberry's own limiters)
    # took about a minute; measured once per fragment, it is milliseconds of work.
    started = time.perf_counter()
    response = await api.post(fragment_bomb(20))
    elapsed = time.perf_counter() - started

    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"viewer": {"role": "ADMIN"}}
    assert elapsed < 2


@SQLITE_ONLY
async def test_aliases_a_fragment_bomb_multiplies_are_all_counted(api: Api) -> None:
    bomb = fragment_bomb(20).replace("viewer { role }", "viewer { r: role }")

    response = await api.post(bomb)

    assert response.status_code == 400
    assert f"{2**20} aliases found" in messages(response)[0]


async def test_a_page_of_a_billion_is_refused_on_every_connection(
    api: Api, statements: StatementCounter, settings: Settings
) -> None:
    customer = await api.org("Customer", OrganizationKind.CUSTOMER, await api.root())
    lookup = await lookup_only(api, statements)
    connections = {
        "numbers": "query($first: Int) { numbers(first: $first) { totalCount } }",
        "organizations": "query($first: Int) { organizations(first: $first) { totalCount } }",
        "series": "query($first: Int) { series(first: $first) { totalCount } }",
        "organization": "query($first: Int, $id: ID!)"
        " { organization(id: $id) { numbers(first: $first) { totalCount } } }",
    }
    expected = f"first must be between 0 and {settings.max_page_size}"

    for name, query in connections.items():
        variables = {"first": HUGE_PAGE, "id": gid(customer)}
        response, count = await run(api, statements, query, variables)
        [error] = response.json()["errors"]
        assert (error["message"], error["extensions"]["code"]) == (expected, "VALIDATION"), name
        # Only `organization` reads something first: the organization it names.
        assert count <= lookup + (name == "organization"), name

    # Past what GraphQL's Int holds, the document does not even validate.
    response, count = await run(api, statements, f"{{ numbers(first: {2**31}) {{ totalCount }} }}")
    assert response.status_code == 400
    assert messages(response) == [f"Int cannot represent non 32-bit signed integer value: {2**31}"]
    assert count == lookup


async def test_a_filter_naming_too_many_numbers_is_refused_before_any_search(
    api: Api, statements: StatementCounter
) -> None:
    query = "query($n: [String!]) { numbers(filter: {numbers: $n}) { totalCount } }"
    lookup = await lookup_only(api, statements)

    response, count = await run(api, statements, query, {"n": ["+6561000001"] * HUGE_BATCH})

    [error] = response.json()["errors"]
    assert error["message"] == "at most 10000 numbers in a filter"
    assert error["extensions"] == {"code": "LIMIT_EXCEEDED", "field": ["filter", "numbers"]}
    assert count == lookup


# ---- huge batches ----


def batch_inputs(customer_id: str) -> dict[str, dict[str, Any]]:
    """Each mutation that takes a list of numbers, with the rest of a valid input."""
    at = "2026-04-01T00:00:00+00:00"
    subscription = str(uuid.uuid4())
    return {
        "addNumbers": {"vendor": "Singtel", "country": "SG", "sku": "DID"},
        "reserveNumbers": {"reservedForId": customer_id},
        "extendReservation": {"didReservationUuid": subscription, "expiresAt": at},
        "releaseNumbers": {},
        "assignNumbers": {"subscriptionUuid": subscription},
        "lockNumbers": {},
        "unlockNumbers": {},
        "deleteNumbers": {"reason": "FAULTY"},
        "recoverNumbers": {},
        "editNumbers": {"sku": "DID-2"},
        "allocateNumbers": {"organizationId": customer_id},
        "withdrawNumbers": {"organizationId": customer_id},
    }


async def test_a_huge_batch_is_refused_at_the_cost_of_one_just_over_the_limit(
    api: Api, statements: StatementCounter, settings: Settings
) -> None:
    customer = gid(await api.org("Customer", OrganizationKind.CUSTOMER, await api.root()))
    just_over = settings.max_batch_size + 1
    await lookup_only(api, statements)

    for mutation, fields in batch_inputs(customer).items():
        type_name = mutation[0].upper() + mutation[1:] + "Input"
        query = (
            f"mutation($input: {type_name}!) {{ {mutation}(input: $input) "
            "{ numbers { e164 } userErrors { code message field } } }"
        )
        counts = []
        for size in (just_over, HUGE_BATCH):
            numbers = [f"+6561{i:06d}" for i in range(size)]
            response, count = await run(
                api, statements, query, {"input": fields | {"numbers": numbers}}
            )
            body = response.json()
            assert body.get("data"), (mutation, body)
            payload = body["data"][mutation]
            assert payload["numbers"] == [], mutation
            [error] = payload["userErrors"]
            assert (error["code"], error["field"]) == ("LIMIT_EXCEEDED", ["input", "numbers"])
            assert f"{size} given" in error["message"], (mutation, error)
            counts.append(count)
        assert counts[0] == counts[1], (mutation, counts)


# ---- very long arguments ----


async def test_half_a_megabyte_arguments_are_refused_or_find_nothing(
    api: Api, statements: StatementCounter
) -> None:
    long = "9" * 500_000
    lookup = await lookup_only(api, statements)

    response, count = await run(
        api, statements, "query($e: String!) { number(e164: $e) { e164 } }", {"e": long}
    )
    assert without_cost(response.json()) == {"data": {"number": None}}
    assert count == lookup

    create = (
        "mutation($name: String!) { createOrganization(input: {name: $name, kind: CUSTOMER})"
        " { organization { id } userErrors { code message field } } }"
    )
    response, _ = await run(api, statements, create, {"name": long})
    assert response.json()["data"]["createOrganization"] == {
        "organization": None,
        "userErrors": [
            {
                "code": "VALIDATION",
                "message": "name must be 1 to 200 characters",
                "field": ["input", "name"],
            }
        ],
    }


@SQLITE_ONLY
async def test_a_pattern_of_60000_characters_finds_nothing_and_fails_nothing(api: Api) -> None:
    await api.gql(
        'mutation { addNumbers(input: {numbers: ["+6561000001"], vendor: "V", country: "SG",'
        ' sku: "DID"}) { userErrors { message } } }'
    )
    query = "query($p: String) { numbers(filter: {pattern: $p}) { totalCount } }"

    # SQLite refuses LIKE patterns over 50,000 bytes; no number has 30,000 digits anyway.
    [too_long] = (await api.gql(query, {"p": "*1" * 30_000})).values()
    [stars] = (await api.gql(query, {"p": "*" * 30_000 + "6561000001" + "*" * 30_000})).values()

    assert too_long == {"totalCount": 0}
    assert stars == {"totalCount": 1}


# ---- slow clients ----

# asyncio runs a timer up to its clock's resolution early.
EARLY = 0.05


def trickle_body(base_url: str, token: str, trickle_for: float) -> tuple[bytes, float]:
    """Send a POST's headers, then its body a byte every 0.1 s for `trickle_for` seconds,
    then nothing; return what the server sent before closing, and when it answered
    (after the headers). Falling silent before the server gives up means no byte is in
    flight when it closes, which would reset the connection and lose its answer."""
    body = json.dumps({"query": "{ viewer { role } }"}).encode()
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /graphql HTTP/1.1\r\n"
            + f"Host: {host}\r\nAuthorization: Bearer {token}\r\n".encode()
            + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        )
        started = time.monotonic()
        unsent = iter(body)
        # Waiting for the server's answer is what paces the trickle.
        while not select.select([sock], [], [], 0.1)[0]:
            assert time.monotonic() - started < 10, "the server never cut it off"
            if time.monotonic() - started < trickle_for:
                sock.sendall(bytes([next(unsent)]))
        answered = time.monotonic() - started
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received, answered


@pytest.mark.slow
@SQLITE_ONLY
async def test_a_client_trickling_its_body_is_cut_off_with_408(
    database_url: str, root_token: str, tmp_path: Path
) -> None:
    timeout = SLOW_CLIENT_TIMEOUT_SECONDS
    settings = {"NUMBRA_BODY_TIMEOUT_SECONDS": str(timeout)}
    with serving(database_url, 1, tmp_path, settings=settings) as [server]:
        # The body would take 6 s at this pace; the server stops waiting after 1 s.
        received, answered = await asyncio.to_thread(trickle_body, server.base_url, root_token, 10)

        head, _, body = received.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        assert lines[0] == "HTTP/1.1 408 Request Timeout"
        assert "connection: close" in (line.lower() for line in lines)
        assert json.loads(body) == {
            "errors": [{"message": f"request body not received within {timeout:g} s"}]
        }
        assert timeout - EARLY <= answered < 1.6 * timeout
        # recv() returned b"": the server closed the connection after answering.

        async with httpx.AsyncClient(base_url=server.base_url) as client:
            assert (await client.get("/healthz")).status_code == 200


def answer_to(base_url: str, sent: bytes, trickled: bytes = b"") -> tuple[str, float]:
    """Send `sent`, then `trickled` a byte every 0.1 s until the server answers; return
    the status line of its answer, once it has closed the connection, and when it came."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(sent)
        started = time.monotonic()
        unsent = iter(trickled)
        while not select.select([sock], [], [], 0.1)[0]:
            assert time.monotonic() - started < 10, "the server never answered"
            if (byte := next(unsent, None)) is not None:
                sock.sendall(bytes([byte]))
        answered = time.monotonic() - started
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received.split(b"\r\n", 1)[0].decode(), answered


@pytest.mark.slow
@SQLITE_ONLY
async def test_slow_and_huge_request_heads_are_refused_and_the_server_serves_on(
    database_url: str, tmp_path: Path
) -> None:
    timeout = SLOW_CLIENT_TIMEOUT_SECONDS
    settings = {"NUMBRA_HEADER_TIMEOUT_SECONDS": str(timeout), "NUMBRA_MAX_HEADER_BYTES": "4096"}
    start = b"GET /healthz HTTP/1.1\r\nHost: numbra\r\n"
    with serving(database_url, 1, tmp_path, settings=settings) as [server]:
        silent = await asyncio.to_thread(answer_to, server.base_url, b"")
        trickling = await asyncio.to_thread(answer_to, server.base_url, start, b"X-Slow: " * 100)
        huge = await asyncio.to_thread(
            answer_to, server.base_url, start + b"X-Huge: " + b"a" * 100_000 + b"\r\n\r\n"
        )
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            healthy = [(await client.get("/healthz")).status_code for _ in range(3)]

    assert silent[0] == trickling[0] == "HTTP/1.1 408 Request Timeout"
    assert timeout - EARLY <= silent[1] < 1.6 * timeout
    assert timeout - EARLY <= trickling[1] < 1.6 * timeout
    assert huge[0] == "HTTP/1.1 431 Request Header Fields Too Large"
    assert healthy == [200, 200, 200]


async def test_text_with_a_nul_character_is_bad_input_on_both_databases(api: Api) -> None:
    # PostgreSQL cannot store NUL; found by the schemathesis run as a masked error there.
    query = "query($country: String) { numberCounts(filter: {country: $country}) { count } }"
    by_variable = await api.post(query, {"country": "S\x00G"})
    by_literal = await api.post('{ numberCounts(filter: {country: "S\\u0000G"}) { count } }')
    named = await api.post(
        'mutation { createOrganization(input: {name: "A\\u0000", kind: CUSTOMER, parentId: "x"})'
        " { userErrors { code } } }"
    )

    for response in (by_variable, by_literal, named):
        assert response.status_code == 400, response.text
        assert "NUL" in messages(response)[0]


# ---- bodies no client means: a property ----

FUZZ_EXAMPLES = int(os.environ.get("NUMBRA_FUZZ_EXAMPLES", "8"))
FILTERED = """query($v: [String!], $p: String, $t: String, $at: DateTime, $n: Int) {
  numbers(filter: {numbers: $v, pattern: $p, tag: $t, expiresBefore: $at}, first: $n)
  { totalCount } }"""
OFFSETS = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
OTHER_DIGITS = st.characters(categories=["Nd"])


@dataclass(frozen=True)
class Body:
    kind: str
    content: bytes
    # Whether no operation can come of it: refused with a 400 before anything runs.
    refused: bool


def _request(variables: str) -> bytes:
    return (
        json.dumps({"query": FILTERED}).encode()[:-1]
        + b', "variables": '
        + (variables.encode("utf-8", "surrogatepass") + b"}")
    )


@st.composite
def bodies(draw: st.DrawFn) -> Body:
    kind = draw(
        st.sampled_from(["deep", "integer", "surrogate", "bytes", "time", "digits", "control"])
    )
    if kind == "deep":
        depth = draw(st.integers(1, 100_000))
        nested = "[" * depth + '"+6561000001"' + "]" * depth
        # One level is the list the variable is; more than 64 in all are refused.
        return Body(kind, _request(f'{{"v": {nested}}}'), refused=depth + 1 > 64)
    if kind == "integer":
        digits = draw(st.integers(1, 10_000))
        return Body(kind, _request(f'{{"n": {"9" * digits}}}'), refused=digits > 100)
    if kind == "surrogate":
        unit = draw(st.integers(0xD800, 0xDFFF))
        text = draw(st.text(max_size=5))
        escaped = json.dumps(text)[1:-1] + f"\\u{unit:04x}"
        return Body(kind, _request(f'{{"t": "{escaped}"}}'), refused=True)
    if kind == "bytes":
        junk = draw(st.binary(min_size=1, max_size=8))
        content = _request('{"t": "' + "x" * 3 + '"}').replace(b"xxx", junk.replace(b'"', b""))
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            return Body(kind, content, refused=True)
        return Body(kind, content, refused=False)
    if kind == "time":
        at = draw(st.datetimes()).replace(tzinfo=draw(OFFSETS))
        try:
            at.astimezone(UTC)
        except OverflowError:
            return Body(kind, _request(json.dumps({"at": at.isoformat()})), refused=True)
        return Body(kind, _request(json.dumps({"at": at.isoformat()})), refused=False)
    if kind == "digits":
        number = "".join(draw(st.lists(OTHER_DIGITS, min_size=1, max_size=15)))
        values = {"v": [f"+{number}"], "p": draw(st.sampled_from(["", "+", "*"])) + number}
        return Body(kind, _request(json.dumps(values)), refused=False)
    text = draw(st.text(st.characters(categories=["Cc", "Zl", "Zp"], exclude_characters="\x00")))
    return Body(kind, _request(json.dumps({"t": text, "p": text})), refused=False)


@SQLITE_ONLY
@settings(
    max_examples=FUZZ_EXAMPLES * 12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies())
async def test_a_body_no_client_means_is_refused_or_answered_never_a_500(
    api: Api, body: Body
) -> None:
    response = await api.client.post(
        "/graphql", content=body.content, headers=api.auth() | {"content-type": "application/json"}
    )

    assert response.status_code == (400 if body.refused else response.status_code), body.kind
    assert response.status_code in (200, 400), (body.kind, response.text)
    assert len(response.headers["x-request-id"]) == 16
    for error in response.json().get("errors", []):
        assert error.get("extensions", {}).get("code") != "INTERNAL", (body.kind, error)
