"""Two `numbra sweep` processes at once over paid terms that fell due three periods ago
(issue 15): every period is renewed exactly once, cycles count down exactly, and a term
out of cycles ends once, on both databases."""

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from domain import numbers
from domain.clock import ManualClock
from domain.terms import TermInput, add_months
from models import NumberState, OrganizationKind
from models.database import Database
from tests.support.processes import NUMBRA, environment
from tests.support.world import World

pytestmark = pytest.mark.slow

UNLIMITED, TWO_CYCLES = 2_000, 1_000
SWEEPERS = 2
BATCH = 1_000  # numbers a request may name


async def test_sweep_processes_racing_renew_every_period_once(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    # Assigned 80 days ago, paid until 70 days ago, monthly: three periods due by now.
    world = await World.create(db, ManualClock(now - timedelta(days=80)))
    customer = await world.org("Customer", OrganizationKind.CUSTOMER)
    e164s = await world.add(UNLIMITED + TWO_CYCLES)
    paid_until = now - timedelta(days=70)
    for start in range(0, len(e164s), BATCH):
        chosen = e164s[start : start + BATCH]
        await world.run(
            numbers.assign,
            chosen,
            subscription_uuid=uuid4(),
            owner_uuid=customer.uuid,
            remark=None,
            billing=TermInput(1, paid_until, None if start < UNLIMITED else 2),
        )

    sweepers = [
        await asyncio.create_subprocess_exec(
            NUMBRA,
            "sweep",
            env=environment(database_url),
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(SWEEPERS)
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(s.communicate() for s in sweepers)), 120)
    shares = []
    for sweeper, (out, err) in zip(sweepers, outputs, strict=True):
        assert sweeper.returncode == 0, err.decode()
        said = re.search(rb"renewed (\d+) term period", out)
        assert said is not None, out.decode()
        shares.append(int(said[1]))
    print(f"\nterms race ({database_url.split(':')[0]}): periods renewed per process {shares}")
    # Between them they renewed each due period once, however they shared the work.
    assert sum(shares) == UNLIMITED * 3 + TWO_CYCLES * 2

    assert await world.count_events("RENEWED") == UNLIMITED * 3 + TWO_CYCLES * 2
    assert await world.count_events("SERVICE_ENDED") == TWO_CYCLES
    three_later = add_months(add_months(add_months(paid_until, 1), 1), 1)
    for e164 in e164s[:UNLIMITED:97]:
        row = await world.row(e164)
        assert (row.state, row.paid_until) == (NumberState.ASSIGNED, three_later), e164
        assert len(await world.events(e164, "RENEWED")) == 3, e164
    for e164 in e164s[UNLIMITED::97]:
        row = await world.row(e164)
        assert (row.state, row.billing_cycles) == (NumberState.RESERVED, 0), e164
        assert len(await world.events(e164, "RENEWED")) == 2, e164
