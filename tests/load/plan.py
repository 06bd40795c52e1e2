"""What the load run hands each client process, and what each hands back: picklable data."""

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Org:
    """An organization of the seeded tree, by global id, with the tokens the mix uses."""

    id: str
    name: str
    parent: str | None
    # The parent's ADMIN token moves numbers in and out of this pool; the root has none.
    parent_admin: str | None
    viewer: str


@dataclass(frozen=True)
class Inventory:
    orgs: tuple[Org, ...]
    allocation_series: str  # the series allocate and withdraw move (global id)
    search_prefixes: tuple[str, ...]
    # Every client reserves and locks from these few numbers: contention on purpose.
    hot: tuple[str, ...]
    holders: tuple[str, ...]  # organizations reservations are made for (global ids)
    hot_operator: str  # OPERATOR token of the hot numbers' pool (reserve, release)
    hot_admin: str  # ADMIN token of the hot numbers' pool (lock, unlock)


@dataclass(frozen=True)
class ClientPlan:
    index: int
    servers: tuple[str, ...]  # base URLs; the client spreads its requests over them
    seconds: float
    inventory: Inventory


@dataclass
class Tally:
    """Everything a client saw, by operation kind; merged across clients for the report."""

    latencies: dict[str, list[float]] = field(default_factory=dict)  # answered requests, s
    successes: Counter[str] = field(default_factory=Counter)
    refusals: dict[str, Counter[str]] = field(default_factory=dict)  # kind -> code -> count
    errors: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)  # the first errors, word for word
    # Net numbers that successful mutations moved into RESERVED and LOCKED.
    held: Counter[str] = field(default_factory=Counter)
    # Net allocation-series numbers that successful allocations moved into each pool.
    pools: Counter[str] = field(default_factory=Counter)
    started: float = float("inf")  # wall clock (time.time), to measure the shared window
    ended: float = 0.0

    def merge(self, other: "Tally") -> None:
        for kind, values in other.latencies.items():
            self.latencies.setdefault(kind, []).extend(values)
        for kind, codes in other.refusals.items():
            self.refusals.setdefault(kind, Counter()).update(codes)
        self.successes.update(other.successes)
        self.errors.update(other.errors)
        self.samples.extend(other.samples)
        self.held.update(other.held)
        self.pools.update(other.pools)
        self.started = min(self.started, other.started)
        self.ended = max(self.ended, other.ended)
