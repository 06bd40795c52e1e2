"""`numbra sweep`: one sweep now, notices sent from the command itself, failures listed."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from domain.clock import ManualClock
from models import NoticeStatus, NumberState, Organization, OrganizationKind
from models.database import Database
from tests.support.mail import smtp_server
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


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_numbra_sweep_sends_every_notice_though_a_stored_name_holds_a_line_break(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    inventory = await World.create(db, ManualClock(now - timedelta(days=2)))
    first = await inventory.org("Cust A1", OrganizationKind.CUSTOMER, billing_email="a@a1.test")
    other = await inventory.org("Cust B2", OrganizationKind.CUSTOMER, billing_email="b@b2.test")
    injected, plain = await inventory.add(2)
    await inventory.reserve([injected], first, now + timedelta(days=1))
    await inventory.reserve([plain], other, now + timedelta(days=2))
    # As legacy data would hold it: stored before names refused control characters.
    async with db.write() as session:
        await session.execute(
            sa.update(Organization)
            .where(Organization.id == first.id)
            .values(name="Cust A1\nX-Injected: yes")
        )

    with smtp_server() as (inbox, port):
        smtp = {"NUMBRA_SMTP_HOST": "127.0.0.1", "NUMBRA_SMTP_PORT": str(port)}
        output = run_cli(["sweep"], database_url, tmp_path, smtp)

    assert "Notices: 2 sent" in output
    assert [str(m["To"]) for m in inbox.messages] == ["a@a1.test", "b@b2.test"]
    assert all("X-Injected" not in m for m in inbox.messages)
    for e164 in (injected, plain):
        assert [n.status for n in await inventory.notices(e164)] == [NoticeStatus.SENT]
