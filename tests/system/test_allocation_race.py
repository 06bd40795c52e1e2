"""Several `numbra serve` processes racing allocateNumbers against one parent pool.

Twenty requests for 7 numbers each meet 100 AVAILABLE numbers in root's pool,
spread over two server processes on the same database: at most 14 can win.
No number may be handed out twice, no pool may go below zero, and every loser
gets a userError (QUANTITY_EXCEEDS_AVAILABLE, or CONFLICT), never an error.
"""

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.databases import empty_postgresql
from tests.support.processes import Server, migrated_admin_token, serving

pytestmark = pytest.mark.slow

SERVERS = 2
REQUESTS = 20
QUANTITY = 7
CUSTOMERS = 5
STOCK = 100
PER_ADD = 50
REQUEST_TIMEOUT = 30.0

CREATE_SERIES = """
mutation($input: CreateSeriesInput!) {
  createSeries(input: $input) { series { id } userErrors { code message } }
}"""

CREATE_ORGANIZATION = """
mutation($input: CreateOrganizationInput!) {
  createOrganization(input: $input) { organization { id } userErrors { code message } }
}"""

ADD_NUMBERS = """
mutation($input: AddNumbersInput!) {
  addNumbers(input: $input) { numbers { e164 } userErrors { code message } }
}"""

ALLOCATE = """
mutation($input: AllocateNumbersInput!) {
  allocateNumbers(input: $input) { numbers { e164 } userErrors { code message field } }
}"""

ROOT_ID = "{ viewer { organization { id } } }"

POOL = """
query($id: ID!) {
  organization(id: $id) {
    numberCounts { state count }
    numbers(first: 500) {
      totalCount
      edges { node { e164 state history(first: 50) { edges { node { action } } } } }
    }
  }
}"""


def _gql(client: httpx.Client, query: str, variables: dict[str, Any] | None = None) -> Any:
    response = client.post("/graphql", json={"query": query, "variables": variables or {}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def _ok(client: httpx.Client, field: str, query: str, values: dict[str, Any]) -> Any:
    payload = _gql(client, query, {"input": values})[field]
    assert payload["userErrors"] == [], payload
    return payload


def _set_up(client: httpx.Client) -> tuple[str, str, list[str]]:
    """Series +6561, five customers under root, and 100 numbers in root's pool."""
    series_id = _ok(
        client,
        "createSeries",
        CREATE_SERIES,
        {"name": "SG 6561", "prefix": "+6561", "country": "SG"},
    )["series"]["id"]
    customers = [
        _ok(
            client,
            "createOrganization",
            CREATE_ORGANIZATION,
            {"name": f"Customer {i}", "kind": "CUSTOMER"},
        )["organization"]["id"]
        for i in range(CUSTOMERS)
    ]
    stock = [f"+6561{i:06d}" for i in range(STOCK)]
    for start in range(0, STOCK, PER_ADD):
        batch = stock[start : start + PER_ADD]
        added = _ok(
            client,
            "addNumbers",
            ADD_NUMBERS,
            {"numbers": batch, "vendor": "Singtel", "country": "SG", "sku": "DID-SG"},
        )["numbers"]
        assert sorted(n["e164"] for n in added) == batch
    return series_id, _gql(client, ROOT_ID)["viewer"]["organization"]["id"], customers


async def _race(
    servers: list[Server], token: str, series_id: str, customers: list[str]
) -> list[tuple[str, httpx.Response]]:
    """All requests at once, alternating between the servers; (customer, response) each."""
    headers = {"Authorization": f"Bearer {token}"}
    clients = [
        httpx.AsyncClient(base_url=s.base_url, headers=headers, timeout=REQUEST_TIMEOUT)
        for s in servers
    ]
    targets = [customers[i % len(customers)] for i in range(REQUESTS)]
    try:
        responses = await asyncio.gather(
            *(
                clients[i % len(clients)].post(
                    "/graphql",
                    json={
                        "query": ALLOCATE,
                        "variables": {
                            "input": {
                                "organizationId": customer,
                                "seriesId": series_id,
                                "quantity": QUANTITY,
                                "remark": f"race {i}",
                            }
                        },
                    },
                )
                for i, customer in enumerate(targets)
            )
        )
    finally:
        for client in clients:
            await client.aclose()
    return list(zip(targets, responses, strict=True))


def _tally(
    backend: str, results: list[tuple[str, httpx.Response]], logs: str
) -> tuple[int, dict[str, list[str]], str]:
    """Every response is a GraphQL answer: a win, or a loss as one userError.

    Returns the wins, the numbers each customer won, and the figures line.
    """
    won: dict[str, list[str]] = {}
    handed_out: list[str] = []
    outcomes: Counter[str] = Counter()
    for customer, response in results:
        assert response.status_code == 200, f"HTTP {response.status_code}: {response.text}\n{logs}"
        body = response.json()
        assert "errors" not in body, f"{body}\n{logs}"
        payload = body["data"]["allocateNumbers"]
        if payload["userErrors"]:
            assert payload["numbers"] == [], payload
            assert len(payload["userErrors"]) == 1, payload
            code = payload["userErrors"][0]["code"]
            assert code in {"QUANTITY_EXCEEDS_AVAILABLE", "CONFLICT"}, payload
            outcomes[code] += 1
        else:
            numbers = [n["e164"] for n in payload["numbers"]]
            assert len(numbers) == QUANTITY, payload
            won.setdefault(customer, []).extend(numbers)
            handed_out += numbers
            outcomes["WON"] += 1

    wins = outcomes["WON"]
    conflicts = outcomes["CONFLICT"]
    duplicates = sorted(e for e, n in Counter(handed_out).items() if n > 1)
    figures = (
        f"[{backend}] wins={wins} losses={outcomes['QUANTITY_EXCEEDS_AVAILABLE']} "
        f"conflicts={conflicts} duplicates={len(duplicates)} {duplicates}"
    )
    print(f"\n{figures}")
    assert sum(outcomes.values()) == REQUESTS, figures
    assert duplicates == [], figures
    if conflicts == 0:
        assert wins == STOCK // QUANTITY, figures
    else:
        assert wins <= STOCK // QUANTITY, figures
    return wins, won, figures


def _check_pools(
    client: httpx.Client,
    root_id: str,
    customers: list[str],
    wins: int,
    won: dict[str, list[str]],
    figures: str,
) -> None:
    """What the API says afterwards: each number in exactly one pool, totals conserved."""
    held: dict[str, dict[str, Any]] = {}
    for org_id in [root_id, *customers]:
        pool = _gql(client, POOL, {"id": org_id})["organization"]
        held[org_id] = {e["node"]["e164"]: e["node"] for e in pool["numbers"]["edges"]}
        assert pool["numbers"]["totalCount"] == len(held[org_id]), figures
        counts = {c["state"]: c["count"] for c in pool["numberCounts"] if c["count"]}
        assert set(counts) <= {"AVAILABLE"}, f"{figures}; {org_id}: {counts}"
        assert counts.get("AVAILABLE", 0) == len(held[org_id]), f"{figures}; {org_id}: {counts}"

    everywhere = Counter(e164 for numbers in held.values() for e164 in numbers)
    in_two_pools = sorted(e for e, n in everywhere.items() if n > 1)
    assert in_two_pools == [], f"{figures}; in two pools: {in_two_pools}"
    assert sorted(everywhere) == [f"+6561{i:06d}" for i in range(STOCK)], figures

    remaining = len(held[root_id])
    assert remaining == STOCK - QUANTITY * wins, f"{figures}; root holds {remaining}"
    for customer in customers:
        assert sorted(held[customer]) == sorted(won.get(customer, [])), f"{figures}; {customer}"

    # Each moved number was ALLOCATED exactly once; those still in root's pool never.
    for org_id, numbers in held.items():
        expected = 0 if org_id == root_id else 1
        for e164, node in numbers.items():
            actions = [e["node"]["action"] for e in node["history"]["edges"]]
            assert actions.count("ALLOCATED") == expected, f"{figures}; {e164} history: {actions}"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_allocations_racing_across_server_processes_never_hand_a_number_out_twice(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/race.db"
    else:
        url = str(request.getfixturevalue("pg_url"))
        asyncio.run(empty_postgresql(url))
    try:
        token = migrated_admin_token(url, tmp_path)
        headers = {"Authorization": f"Bearer {token}"}
        with (
            serving(url, SERVERS, tmp_path) as servers,
            httpx.Client(
                base_url=servers[0].base_url, headers=headers, timeout=REQUEST_TIMEOUT
            ) as client,
        ):
            series_id, root_id, customers = _set_up(client)
            results = asyncio.run(_race(servers, token, series_id, customers))
            logs = "\n".join(f"--- {s.base_url}\n{s.stderr()}" for s in servers)
            wins, won, figures = _tally(backend, results, logs)
            _check_pools(client, root_id, customers, wins, won, figures)
    finally:
        if backend == "postgresql":
            asyncio.run(empty_postgresql(url))
