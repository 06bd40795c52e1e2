"""One client process: the mixed workload over keep-alive connections, until its time is up.

Requests come from a shuffled deck holding every kind, so even a run of a few seconds
tries each; release and unlock come after reserve and lock in a deck, and undo this
client's own earlier successes when it has any (else they aim at random hot numbers,
which someone else may hold). Kept light: only httpx and the standard library, as each
client is a process of its own.
"""

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.load.plan import ClientPlan, Inventory, Org, Tally

REQUEST_TIMEOUT = 30.0
SAMPLES = 5  # errors kept word for word per client
MAX_QUANTITY = 10  # allocate and withdraw
MAX_HOT_PICK = 2  # numbers a reserve or lock names

# Kind -> copies in a deck of 26: about half reads (SPAs), half writes (integrations).
DECK = {
    "search prefix": 4,
    "search contains": 2,
    "numberCounts": 3,
    "org view": 3,
    "reserve": 3,
    "release": 3,
    "lock": 2,
    "unlock": 2,
    "allocate": 2,
    "withdraw": 2,
}
KINDS = tuple(DECK)
UNDO = {"release": "reserve", "unlock": "lock"}

# What another client can make a mutation meet: refusals, not errors.
NUMBER_REFUSALS = frozenset({"INVALID_TRANSITION", "CONFLICT"})
QUANTITY_REFUSALS = frozenset({"QUANTITY_EXCEEDS_AVAILABLE", "CONFLICT"})

SEARCH = """
query($filter: NumberFilter, $first: Int) {
  numbers(filter: $filter, first: $first) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { e164 state capabilities organization { name } } }
  }
}"""

COUNTS = "query($filter: NumberFilter) { numberCounts(filter: $filter) { state count } }"

ORG_VIEW = """
query($id: ID!) {
  organization(id: $id) {
    name kind
    numberCounts(includeDescendants: true) { state count }
    allocations { series { prefix } allocated unused }
    children {
      id name kind
      numberCounts { state count }
      allocations { series { prefix } allocated unused }
      numbers(first: 10) { totalCount edges { node { e164 state reservation { tag } } } }
      children { name }
    }
  }
}"""

INPUT_TYPES = {
    "reserve": ("reserveNumbers", "ReserveNumbersInput"),
    "release": ("releaseNumbers", "ReleaseNumbersInput"),
    "lock": ("lockNumbers", "LockNumbersInput"),
    "unlock": ("unlockNumbers", "UnlockNumbersInput"),
    "allocate": ("allocateNumbers", "AllocateNumbersInput"),
    "withdraw": ("withdrawNumbers", "WithdrawNumbersInput"),
}


def _mutation(kind: str) -> str:
    name, input_type = INPUT_TYPES[kind]
    return (
        f"mutation($input: {input_type}!) {{ {name}(input: $input) "
        "{ numbers { e164 state } userErrors { code message number } } }"
    )


MUTATIONS = {kind: _mutation(kind) for kind in INPUT_TYPES}


@dataclass
class Request:
    kind: str
    token: str
    query: str
    variables: dict[str, Any]
    # For mutations: the codes that are refusals, and what a success must look like.
    refusals: frozenset[str] = frozenset()
    expect: int = 0  # numbers in the payload
    expect_state: str | None = None
    succeeded: Callable[[], None] = lambda: None


@dataclass
class Holdings:
    """This client's successful reservations and locks, batch by batch, to undo later."""

    reserved: list[list[str]] = field(default_factory=list)
    locked: list[list[str]] = field(default_factory=list)


def deck(rng: random.Random) -> list[str]:
    """Every kind DECK times, shuffled; an undo kind never before the first of its do kind."""
    cards = [kind for kind, copies in DECK.items() for _ in range(copies)]
    rng.shuffle(cards)
    for undo, do in UNDO.items():
        first_undo, first_do = cards.index(undo), cards.index(do)
        if first_undo < first_do:
            cards[first_undo], cards[first_do] = do, undo
    return cards


class Mix:
    """Builds the next request of a kind, and books its success into the tally."""

    def __init__(self, inventory: Inventory, rng: random.Random, tally: Tally) -> None:
        self.inventory = inventory
        self.rng = rng
        self.tally = tally
        self.mine = Holdings()
        self.children = [org for org in inventory.orgs if org.parent_admin is not None]
        self.builders: dict[str, Callable[[str], Request]] = {
            "search prefix": self._search_prefix,
            "search contains": self._search_contains,
            "numberCounts": self._number_counts,
            "org view": self._org_view,
            "reserve": self._reserve,
            "release": self._release,
            "lock": self._lock,
            "unlock": self._unlock,
            "allocate": self._allocate,
            "withdraw": self._withdraw,
        }

    def request(self, kind: str) -> Request:
        return self.builders[kind](kind)

    def _reader(self) -> Org:
        return self.rng.choice(self.inventory.orgs)

    def _search_prefix(self, kind: str) -> Request:
        prefix = self.rng.choice(self.inventory.search_prefixes) + str(self.rng.randrange(10))
        org = self._reader()
        scope = {"organizationId": org.id, "includeDescendants": True}
        filter_: dict[str, object] = {
            "pattern": prefix + "*",
            "states": ["AVAILABLE"],
            "capabilities": ["VOICE"],
        }
        if self.rng.random() < 0.5:
            filter_ |= scope
        return Request(kind, org.viewer, SEARCH, {"filter": filter_, "first": 20})

    def _search_contains(self, kind: str) -> Request:
        digits = f"{self.rng.randrange(1000):03d}"
        filter_ = {"pattern": digits, "states": ["AVAILABLE", "RESERVED"]}
        return Request(kind, self._reader().viewer, SEARCH, {"filter": filter_, "first": 20})

    def _number_counts(self, kind: str) -> Request:
        org = self._reader()
        filter_: dict[str, Any] = {"organizationId": org.id, "includeDescendants": True}
        if self.rng.random() < 0.5:
            filter_ = {"pattern": self.rng.choice(self.inventory.search_prefixes) + "*"}
        return Request(kind, org.viewer, COUNTS, {"filter": filter_})

    def _org_view(self, kind: str) -> Request:
        org = self._reader()
        return Request(kind, org.viewer, ORG_VIEW, {"id": org.id})

    def _hot_pick(self) -> list[str]:
        return self.rng.sample(self.inventory.hot, self.rng.randint(1, MAX_HOT_PICK))

    def _numbers(self, kind: str, token: str, numbers: list[str], state: str) -> Request:
        extra: dict[str, Any] = {}
        if kind == "reserve":
            extra = {"reservedForId": self.rng.choice(self.inventory.holders), "tag": "load"}
        variables = {"input": {"numbers": numbers, "remark": f"load {kind}", **extra}}
        request = Request(kind, token, MUTATIONS[kind], variables, NUMBER_REFUSALS)
        request.expect, request.expect_state = len(numbers), state
        return request

    def _reserve(self, kind: str) -> Request:
        numbers = self._hot_pick()
        request = self._numbers(kind, self.inventory.hot_operator, numbers, "RESERVED")
        request.succeeded = lambda: self._hold("RESERVED", self.mine.reserved, numbers, 1)
        return request

    def _release(self, kind: str) -> Request:
        numbers = self._undo(self.mine.reserved)
        request = self._numbers(kind, self.inventory.hot_operator, numbers, "AVAILABLE")
        request.succeeded = lambda: self._hold("RESERVED", None, numbers, -1)
        return request

    def _lock(self, kind: str) -> Request:
        numbers = self._hot_pick()
        request = self._numbers(kind, self.inventory.hot_admin, numbers, "LOCKED")
        request.succeeded = lambda: self._hold("LOCKED", self.mine.locked, numbers, 1)
        return request

    def _unlock(self, kind: str) -> Request:
        numbers = self._undo(self.mine.locked)
        request = self._numbers(kind, self.inventory.hot_admin, numbers, "AVAILABLE")
        request.succeeded = lambda: self._hold("LOCKED", None, numbers, -1)
        return request

    def _undo(self, batches: list[list[str]]) -> list[str]:
        if batches:
            return batches.pop(self.rng.randrange(len(batches)))
        return self._hot_pick()

    def _hold(
        self, state: str, batches: list[list[str]] | None, numbers: list[str], sign: int
    ) -> None:
        self.tally.held[state] += sign * len(numbers)
        if batches is not None:
            batches.append(numbers)

    def _allocate(self, kind: str) -> Request:
        return self._transfer(kind, 1)

    def _withdraw(self, kind: str) -> Request:
        return self._transfer(kind, -1)

    def _transfer(self, kind: str, sign: int) -> Request:
        child = self.rng.choice(self.children)
        assert child.parent is not None
        assert child.parent_admin is not None
        quantity = self.rng.randint(1, MAX_QUANTITY)
        fields = {
            "organizationId": child.id,
            "seriesId": self.inventory.allocation_series,
            "quantity": quantity,
            "remark": f"load {kind}",
        }
        request = Request(
            kind, child.parent_admin, MUTATIONS[kind], {"input": fields}, QUANTITY_REFUSALS
        )
        request.expect = quantity
        parent = child.parent

        def moved() -> None:
            self.tally.pools[child.id] += sign * quantity
            self.tally.pools[parent] -= sign * quantity

        request.succeeded = moved
        return request


def _judge(request: Request, body: dict[str, Any]) -> tuple[str | None, str | None]:
    """(refusal code, error) of an answer; both None for a success."""
    if "errors" in body:
        return None, f"GraphQL errors: {body['errors']}"
    if request.kind not in INPUT_TYPES:
        return None, None
    payload = body["data"][INPUT_TYPES[request.kind][0]]
    codes = {error["code"] for error in payload["userErrors"]}
    if codes:
        if payload["numbers"] or not codes <= request.refusals:
            return None, f"unexpected userErrors: {payload}"
        return min(codes), None
    numbers = payload["numbers"]
    states = {number["state"] for number in numbers}
    wrong_state = request.expect_state is not None and states != {request.expect_state}
    if len(numbers) != request.expect or wrong_state:
        return None, f"unexpected payload for {request.variables}: {payload}"
    return None, None


def _send(client: httpx.Client, request: Request, tally: Tally) -> None:
    headers = {"Authorization": f"Bearer {request.token}"}
    body = {"query": request.query, "variables": request.variables}
    start = time.perf_counter()
    try:
        response = client.post("/graphql", json=body, headers=headers)
        answer = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        _error(tally, request.kind, f"{type(exc).__name__}: {exc}")
        return
    tally.latencies.setdefault(request.kind, []).append(time.perf_counter() - start)
    if answer is None:
        _error(tally, request.kind, f"HTTP {response.status_code}: {response.text[:300]}")
        return
    refusal, error = _judge(request, answer)
    if error is not None:
        _error(tally, request.kind, error)
    elif refusal is not None:
        tally.refusals.setdefault(request.kind, Counter())[refusal] += 1
    else:
        tally.successes[request.kind] += 1
        request.succeeded()


def _error(tally: Tally, kind: str, message: str) -> None:
    tally.errors[kind] += 1
    if len(tally.samples) < SAMPLES:
        tally.samples.append(f"{kind}: {message[:500]}")


def run_client(plan: ClientPlan) -> Tally:
    """Drive the servers, each request to the next one, until `plan.seconds` have passed."""
    rng = random.Random(plan.index)
    tally = Tally()
    mix = Mix(plan.inventory, rng, tally)
    clients = [httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT) for url in plan.servers]
    turn = plan.index
    try:
        tally.started = time.time()
        deadline = time.monotonic() + plan.seconds
        while time.monotonic() < deadline:
            for kind in deck(rng):
                _send(clients[turn % len(clients)], mix.request(kind), tally)
                turn += 1
                if time.monotonic() >= deadline:
                    break
        tally.ended = time.time()
    finally:
        for client in clients:
            client.close()
    return tally
