"""`numbra sweep`: one sweep now, notices sent from the command itself, failures listed."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.clock import ManualClock
from models import NumberState, OrganizationKind
from models.database import Database
from tests.support.processes import run_cli
from tests.support.world import World


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_numbra_sweep_lapses_what_is_due_and_lists_notices_that_failed(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    inventory = await World.create(db, ManualClock(now - timedelta(days=2)))
    unaddressed = await inventory.org("Nobill", OrganizationKind.CUSTOMER)
    ended, ending = await inventory.add(2, pool=unaddressed)
    await inventory.reserve([ended], unaddressed, now - timedelta(hours=1))
    await inventory.reserve([ending], unaddressed, now + timedelta(days=3))

    output = run_cli(["sweep"], database_url, tmp_path)

    assert "lapsed 1 reservation(s) and 0 lock(s)" in output
    assert "1 failed" in output
    assert f"{ending} RESERVATION_LAPSING" in output
    assert "Nobill has no billing e-mail address" in output
    assert (await inventory.row(ended)).state is NumberState.AVAILABLE
