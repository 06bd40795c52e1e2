"""The committed schema.graphql is the served schema, and it honours the public contract."""

import subprocess
import sys
from pathlib import Path

import pytest

from schema.build import build_schema
from settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_CHECK = ROOT.parent / "shared" / "tools" / "contract_check.py"

# What of ../shared/contract.graphql is still to be built, by the issue that builds it.
# Building a part makes its lines disappear from the check's output, and this list must
# shrink with it; it is empty once numbers, allocation, search and jobs are done.
PENDING: set[str] = set()


def test_committed_schema_is_the_served_schema() -> None:
    served = build_schema(Settings(_env_file=None)).as_str()
    committed = (ROOT / "schema.graphql").read_text()
    assert committed.strip() == served.strip(), (
        "schema.graphql is stale: run `.venv/bin/numbra print-schema > schema.graphql`"
    )


@pytest.mark.slow
def test_served_schema_contains_the_contract_built_so_far() -> None:
    assert CONTRACT_CHECK.exists(), f"the contract checker is missing: {CONTRACT_CHECK}"
    result = subprocess.run(
        [sys.executable, str(CONTRACT_CHECK), str(ROOT / "schema.graphql")],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("contract: "), result.stdout + result.stderr
    missing = {line.removeprefix("missing: ") for line in lines if line.startswith("missing: ")}
    assert missing == PENDING
    assert (result.returncode == 0) == (not PENDING)
