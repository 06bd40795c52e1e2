"""After the load: is every number still accounted for, and do the counts add up?

Conservation, our own way: the numbers per state over all pools sum to the seeded
total; nothing was assigned or deleted (the mix never does either); RESERVED and
LOCKED hold exactly what the clients' successful mutations put there net; every
pool holds its seeded allocation-series numbers plus what successful allocations
moved in, minus what they moved out; the served numberCounts agree with the table.
A sum that an errored request of its kinds makes unknowable is skipped, saying so
(the run fails on the error anyway). Then `tests.support.invariants.check`.
"""

from collections import Counter

import httpx
import sqlalchemy as sa

from models import Number, NumberState
from models.database import Database
from tests.load.client import COUNTS
from tests.load.plan import Tally
from tests.load.seed import Seeded, allocation_pools
from tests.support import invariants

HELD_BY = {NumberState.RESERVED: ("reserve", "release"), NumberState.LOCKED: ("lock", "unlock")}
NEVER = (NumberState.ASSIGNED, NumberState.DELETED)


async def _served_counts(server: str, token: str) -> Counter[str]:
    async with httpx.AsyncClient(base_url=server, timeout=30) as client:
        response = await client.post(
            "/graphql",
            json={"query": COUNTS, "variables": {"filter": {}}},
            headers={"Authorization": f"Bearer {token}"},
        )
    response.raise_for_status()
    return Counter({row["state"]: row["count"] for row in response.json()["data"]["numberCounts"]})


def _held(counts: Counter[str], tally: Tally, skipped: list[str]) -> list[str]:
    violations = []
    for state, kinds in HELD_BY.items():
        if any(tally.errors[kind] for kind in kinds):
            skipped.append(f"{state} against the clients' tally: {' and '.join(kinds)} had errors")
        elif counts[state] != tally.held[state]:
            violations.append(
                f"{counts[state]} numbers are {state}, but the clients' successful "
                f"{' and '.join(kinds)} leave {tally.held[state]}"
            )
    return violations


def _pools(seeded: Seeded, end: dict[str, int], tally: Tally, skipped: list[str]) -> list[str]:
    if tally.errors["allocate"] or tally.errors["withdraw"]:
        skipped.append("pools against the clients' tally: allocate or withdraw had errors")
        return []
    return [
        f"{seeded.names[org]!r} holds {end.get(org, 0)} allocation-series numbers; "
        f"{count} seeded and {tally.pools[org]:+} moved make {count + tally.pools[org]}"
        for org, count in seeded.allocation.items()
        if end.get(org, 0) != count + tally.pools[org]
    ]


async def check(url: str, server: str, seeded: Seeded, tally: Tally) -> tuple[list[str], list[str]]:
    """(violations, checks skipped and why) of the inventory after the load."""
    skipped: list[str] = []
    db = Database(url, pool_size=2)
    try:
        async with db.read() as session:
            rows = await session.execute(
                sa.select(Number.state, sa.func.count()).group_by(Number.state)
            )
            counts = Counter({str(state): n for state, n in rows})
            pools = await allocation_pools(session, seeded.allocation_series_id)
        violations = await invariants.check(db, expected_total=seeded.total)
    finally:
        await db.dispose()
    if counts.total() != seeded.total:
        violations.append(f"{counts.total()} numbers in all pools; {seeded.total} were seeded")
    violations += [f"{counts[state]} numbers are {state}" for state in NEVER if counts[state]]
    violations += _held(counts, tally, skipped)
    violations += _pools(seeded, pools, tally, skipped)
    served = await _served_counts(server, seeded.root_viewer)
    if +served != +counts:
        violations.append(f"the served numberCounts {dict(served)} differ from {dict(counts)}")
    return violations, skipped
