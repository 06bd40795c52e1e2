"""`make load` in small: two servers, two client processes, a few seconds, on PostgreSQL.

The whole run as `make load` does it (fresh database, seeding, `numbra serve`
processes, spawned clients, the table, the checks), bounded to stay a few seconds of
load: no request may fail, every kind of operation must have succeeded at least
once, and the inventory must come out whole.
"""

import pytest

from tests.load.client import KINDS
from tests.load.run import Options, run

pytestmark = pytest.mark.slow


def test_a_short_mixed_load_on_two_servers_loses_nothing_and_fails_nothing(pg_url: str) -> None:
    lines: list[str] = []
    outcome = run(
        Options(seconds=4, clients=2, servers=2, numbers=2_000, database_url=pg_url),
        out=lines.append,
    )
    report = "\n".join(lines)
    assert outcome.errors == 0, report
    assert [kind for kind in KINDS if not outcome.tally.successes[kind]] == [], report
    assert outcome.violations == [], report
    assert outcome.exit_status == 0, report
    assert report.splitlines()[-1].endswith(": ok"), report
