"""The committed schema.graphql is the served schema, and it honours the public contract."""

import subprocess
import sys
from pathlib import Path

import pytest

from schema.build import build_schema
from settings import Settings
from tests.support.databases import IN_CI

ROOT = Path(__file__).resolve().parents[2]
# The public contract lives beside the repository, not in it: a clone on its own has none.
SHARED = ROOT.parent / "shared"
CONTRACT = SHARED / "contract.graphql"
CONTRACT_CHECK = SHARED / "tools" / "contract_check.py"

# What of the contract is still to be built, by the issue that builds it. Building a part
# makes its lines disappear from the check's output, and its set here must shrink with it.
PENDING: dict[int, set[str]] = {}


def test_committed_schema_is_the_served_schema() -> None:
    served = build_schema(Settings(_env_file=None)).as_str()
    committed = (ROOT / "schema.graphql").read_text()
    assert committed.strip() == served.strip(), (
        "schema.graphql is stale: run `.venv/bin/numbra print-schema > schema.graphql`"
    )


def test_pending_contract_lines_belong_to_one_issue_each() -> None:
    assert sum(map(len, PENDING.values())) == len(set().union(*PENDING.values()))


@pytest.mark.slow
def test_served_schema_contains_the_contract_built_so_far() -> None:
    if not (CONTRACT.exists() and CONTRACT_CHECK.exists()):
        reason = f"no contract beside the repository ({CONTRACT}, {CONTRACT_CHECK})"
        if IN_CI:
            pytest.fail(f"{reason}; CI always has it", pytrace=False)
        pytest.skip(reason)
    result = subprocess.run(
        [sys.executable, str(CONTRACT_CHECK), str(ROOT / "schema.graphql")],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("contract: "), result.stdout + result.stderr
    missing = {line.removeprefix("missing: ") for line in lines if line.startswith("missing: ")}
    pending = set().union(*PENDING.values())
    assert missing == pending, {
        "built or no longer in the contract: take out of PENDING": pending - missing,
        "missing and not pending": missing - pending,
    }
    assert (result.returncode == 0) == (not pending)
