"""`make load`: a mixed workload from several client processes against several servers.

1. A fresh PostgreSQL database (dropped at the end), migrated and seeded (tests.load.seed).
2. `--servers` `numbra serve` processes on free loopback ports, without Redis: each
   runs its jobs in process, as one would on a single machine.
3. `--clients` client processes (tests.load.client), each spreading keep-alive requests
   over the servers for `--seconds`: searches, numberCounts, nested organization
   views, reserve/release and lock/unlock of a few hot numbers every client aims at,
   allocate/withdraw of quantities up and down the tree.
4. One table: per kind requests, successes, throughput, p50/p99 latency, errors and
   refusals by code. A refusal is an answer another client made right (the number was
   taken, the pool emptied, a concurrent write won); an error is anything else: no
   answer, an HTTP status other than 200, GraphQL errors, an unexpected userError.
5. The checks (tests.load.checks). The exit status is 1 on any error or broken invariant.

    python -m tests.load.run [--seconds 60] [--clients 4] [--servers 2] [--numbers 50000]
                       [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]
"""

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.load import checks
from tests.load.client import KINDS, run_client
from tests.load.plan import ClientPlan, Inventory, Tally
from tests.load.report import table
from tests.load.seed import seed
from tests.support.databases import PG_ADMIN_URL, scratch_database
from tests.support.processes import serving


@dataclass(frozen=True)
class Options:
    seconds: float = 60.0
    clients: int = 4
    servers: int = 2
    numbers: int = 50_000
    # Any database on the PostgreSQL server to use: the run makes a database of its own there.
    database_url: str = PG_ADMIN_URL


@dataclass
class Outcome:
    tally: Tally
    violations: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(self.tally.errors.values())

    @property
    def exit_status(self) -> int:
        return 1 if self.errors or self.violations else 0


def _drive(servers: Sequence[str], options: Options, inventory: Inventory) -> Tally:
    """Run the client processes at once; their tallies merged."""
    plans = [
        ClientPlan(index, tuple(servers), options.seconds, inventory)
        for index in range(options.clients)
    ]
    # Spawned, not forked: a client inherits no engine, loop or socket of this process.
    with multiprocessing.get_context("spawn").Pool(options.clients) as pool:
        tallies = pool.map(run_client, plans)
    merged = Tally()
    for tally in tallies:
        merged.merge(tally)
    return merged


def run(options: Options, out: Callable[[str], None] = print) -> Outcome:
    with (
        scratch_database(options.database_url, "numbra_load") as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        start = time.perf_counter()
        inventory, seeded = asyncio.run(seed(url, options.numbers))
        out(
            f"Seeded {seeded.total:,} numbers in {len(inventory.orgs)} organizations "
            f"({len(inventory.hot)} hot) in {time.perf_counter() - start:.1f} s."
        )
        # It measures what the servers carry: no token's cost budget may throttle it.
        unlimited = {"NUMBRA_COST_BUDGET_PER_MINUTE": str(10**12)}
        with serving(url, options.servers, Path(tmp), settings=unlimited) as servers:
            urls = [server.base_url for server in servers]
            out(
                f"{options.clients} clients x {options.seconds:g} s against "
                f"{options.servers} `numbra serve` on PostgreSQL ..."
            )
            tally = _drive(urls, options, inventory)
            out(table(tally))
            violations, skipped = asyncio.run(checks.check(url, urls[0], seeded, tally))
    outcome = Outcome(tally, violations)
    for sample in tally.samples:
        out(f"error: {sample}")
    for reason in skipped:
        out(f"not checked: {reason}")
    for violation in violations:
        out(f"BROKEN: {violation}")
    missing = [kind for kind in KINDS if not tally.successes[kind]]
    if missing:
        out(f"note: no successful {', '.join(missing)}")
    verdict = "ok" if outcome.exit_status == 0 else "FAILED"
    out(f"{outcome.errors} errors, {len(violations)} broken invariants: {verdict}")
    return outcome


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.load.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = Options()
    parser.add_argument("--seconds", type=float, default=defaults.seconds)
    parser.add_argument("--clients", type=int, default=defaults.clients)
    parser.add_argument("--servers", type=int, default=defaults.servers)
    parser.add_argument("--numbers", type=int, default=defaults.numbers)
    parser.add_argument(
        "--database-url",
        default=defaults.database_url,
        help="any database on the PostgreSQL server; the run creates and drops its own",
    )
    args = parser.parse_args(argv)
    options = Options(args.seconds, args.clients, args.servers, args.numbers, args.database_url)
    return run(options, lambda line: print(line, flush=True)).exit_status


if __name__ == "__main__":
    sys.exit(main())
