"""Port-outs racing reservations and other port-outs on the same numbers, from two
`numbra serve` processes on one database (issue 18).

Ten groups of four AVAILABLE numbers; for each group, at once: a port-out of the group
through one server, a port-out overlapping it (the group's last three and the next
group's first) and a reservation of its first two through the other. Every answer is a
GraphQL answer (a win, or userErrors and nothing moved); afterwards no number is in two
open orders, each number is PORTING_OUT exactly when a winning order holds it (a port-out
takes a number reserved just before it), else RESERVED exactly when a winning reservation
does, else AVAILABLE, and the invariants hold.
"""

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from models.database import Database
from tests.support import invariants
from tests.support.databases import empty_postgresql
from tests.support.processes import Server, migrated_admin_token, serving
from tests.system.test_allocation_race import CREATE_ORGANIZATION, _gql, _ok

pytestmark = pytest.mark.slow

GROUPS = 10
SIZE = 4
NUMBERS = [f"+6561{i:06d}" for i in range(GROUPS * SIZE)]
TIMEOUT = 30.0

ADD = """mutation($input: AddNumbersInput!) {
  addNumbers(input: $input) { userErrors { code message } }
}"""
PORT_OUT = """mutation($input: CreatePortOutInput!) {
  createPortOut(input: $input) {
    portOrder { id numbers(first: 10) { edges { node { e164 } } } }
    userErrors { code number }
  }
}"""
RESERVE = """mutation($input: ReserveNumbersInput!) {
  reserveNumbers(input: $input) { numbers { e164 } userErrors { code number } }
}"""
STATES = """query($numbers: [String!]!) {
  numbers(filter: {numbers: $numbers}, first: 100) {
    edges { node { e164 state portOrder { id } } }
  }
}"""


def _requests(customer: str) -> list[tuple[int, str, str, dict[str, Any]]]:
    """(server, field, query, input) of every racing request, interleaved by group."""
    racing = []
    for g in range(GROUPS):
        group = NUMBERS[g * SIZE : (g + 1) * SIZE]
        overlap = group[1:] + NUMBERS[((g + 1) % GROUPS) * SIZE : ((g + 1) % GROUPS) * SIZE + 1]
        racing += [
            (0, "createPortOut", PORT_OUT, {"numbers": group, "carrier": "Gaining A"}),
            (1, "createPortOut", PORT_OUT, {"numbers": overlap, "carrier": "Gaining B"}),
            (1, "reserveNumbers", RESERVE, {"numbers": group[:2], "reservedForId": customer}),
        ]
    return racing


async def _race(
    servers: list[Server], token: str, racing: list[tuple[int, str, str, dict[str, Any]]]
) -> list[tuple[str, dict[str, Any], httpx.Response]]:
    headers = {"Authorization": f"Bearer {token}"}
    clients = [
        httpx.AsyncClient(base_url=s.base_url, headers=headers, timeout=TIMEOUT) for s in servers
    ]
    try:
        responses = await asyncio.gather(
            *(
                clients[server].post("/graphql", json={"query": query, "variables": {"input": v}})
                for server, _field, query, v in racing
            )
        )
    finally:
        for client in clients:
            await client.aclose()
    return [(field, v, r) for (_s, field, _q, v), r in zip(racing, responses, strict=True)]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_port_outs_racing_reservations_and_each_other_never_share_a_number(
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
            serving(url, 2, tmp_path) as servers,
            httpx.Client(base_url=servers[0].base_url, headers=headers, timeout=TIMEOUT) as c,
        ):
            customer = _ok(
                c,
                "createOrganization",
                CREATE_ORGANIZATION,
                {"name": "Customer", "kind": "CUSTOMER"},
            )["organization"]["id"]
            _ok(
                c,
                "addNumbers",
                ADD,
                {"numbers": NUMBERS, "vendor": "V", "country": "SG", "sku": "DID"},
            )
            results = asyncio.run(_race(servers, token, _requests(customer)))
            logs = "\n".join(f"--- {s.base_url}\n{s.stderr()}" for s in servers)
            ported, reserved, outcomes = _tally(results, logs)
            _check_numbers(c, ported, reserved, outcomes)
        assert asyncio.run(_invariants(url)) == []
    finally:
        if backend == "postgresql":
            asyncio.run(empty_postgresql(url))


async def _invariants(url: str) -> list[str]:
    db = Database(url)
    try:
        return await invariants.check(db)
    finally:
        await db.dispose()


def _tally(
    results: list[tuple[str, dict[str, Any], httpx.Response]], logs: str
) -> tuple[dict[str, str], set[str], Counter[str]]:
    """The numbers each winning order holds (number -> order id), the numbers reserved,
    and how many requests won and lost."""
    ported: dict[str, str] = {}
    reserved: set[str] = set()
    outcomes: Counter[str] = Counter()
    for field, values, response in results:
        assert response.status_code == 200, f"HTTP {response.status_code}: {response.text}\n{logs}"
        body = response.json()
        assert "errors" not in body, f"{body}\n{logs}"
        payload = body["data"][field]
        if payload["userErrors"]:
            outcomes[f"{field} lost"] += 1
            moved = payload.get("portOrder") or payload.get("numbers")
            assert not moved, payload  # all or nothing
            continue
        outcomes[f"{field} won"] += 1
        if field == "createPortOut":
            order = payload["portOrder"]
            held = [e["node"]["e164"] for e in order["numbers"]["edges"]]
            assert sorted(held) == sorted(values["numbers"]), payload
            for e164 in held:
                assert e164 not in ported, f"{e164} in two orders: {outcomes}"
                ported[e164] = order["id"]
        else:
            reserved.update(n["e164"] for n in payload["numbers"])
    print(f"\nporting race: {dict(outcomes)}")
    return ported, reserved, outcomes


def _check_numbers(
    client: httpx.Client, ported: dict[str, str], reserved: set[str], outcomes: Counter[str]
) -> None:
    """What the API says afterwards agrees with the winners, number by number."""
    edges = _gql(client, STATES, {"numbers": NUMBERS})["numbers"]["edges"]
    seen = {e["node"]["e164"]: e["node"] for e in edges}
    assert sorted(seen) == NUMBERS
    for e164, node in seen.items():
        expected: tuple[str, str | None]
        if e164 in ported:
            expected = ("PORTING_OUT", ported[e164])
        elif e164 in reserved:
            expected = ("RESERVED", None)
        else:
            expected = ("AVAILABLE", None)
        order = node["portOrder"]["id"] if node["portOrder"] else None
        assert (node["state"], order) == expected, f"{e164}: {node}; {dict(outcomes)}"
    # Every group met a contender: some requests won and some lost.
    assert outcomes["createPortOut won"] >= 1
    assert sum(n for key, n in outcomes.items() if key.endswith("lost")) >= 1
