"""`numbra import` of a 1,000,000-row CSV into a fresh SQLite and (when reachable)
PostgreSQL database: wall time and the process's peak RSS, as an operator runs it.

Rows spread over the eight SG series of the search bench, every tenth LOCKED, with
capabilities, a few SKUs and a note, one number a row. Targets: ≤ 60 s, ≤ 300 MB.
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import PG_ADMIN, pg_reachable
from bench.search import SERIES
from migrations import scratch_database

NUMBRA = str(Path(sys.executable).with_name("numbra"))


def _write_csv(path: Path, rows: int) -> None:
    per_series = rows // len(SERIES)
    with path.open("w") as out:
        out.write("number,vendor,country,sku,capabilities,state,notes\n")
        for n in range(rows):
            prefix = SERIES[n // per_series % len(SERIES)]
            state = "LOCKED" if n % 10 == 0 else ""
            number = f"{prefix}{n % per_series:06d}"
            out.write(f"{number},Singtel,SG,DID-{n % 5},VOICE|SMS,{state},r{n}\n")


def _numbra(args: list[str], url: str, cwd: Path) -> tuple[float, int, str]:
    """Run `numbra ARGS`; (seconds, peak RSS in MB, what it printed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBRA_")}
    env |= {"NUMBRA_DATABASE_URL": url, "NUMBRA_LOG_LEVEL": "WARNING"}
    out = cwd / "stdout.log"
    start = time.perf_counter()
    with out.open("wb") as stdout:
        process = subprocess.Popen([NUMBRA, *args], env=env, cwd=cwd, stdout=stdout)
        _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"numbra {' '.join(args)} failed:\n{out.read_text()[-2000:]}")
    return elapsed, usage.ru_maxrss // 1024, out.read_text()


def _measure(url: str, source: Path, rows: int, cwd: Path) -> tuple[float, int]:
    _numbra(["migrate"], url, cwd)
    seconds, peak, printed = _numbra(["import", str(source)], url, cwd)
    if f"added {rows} numbers" not in printed:
        raise RuntimeError(f"the import did not add {rows} numbers:\n{printed[-2000:]}")
    return seconds, peak


def run(quick: bool) -> None:
    rows = 20_000 if quick else 1_000_000
    results = []
    with tempfile.TemporaryDirectory(prefix="numbra-bench-import-") as tmp:
        workdir = Path(tmp)
        source = workdir / "numbers.csv"
        _write_csv(source, rows)
        url = f"sqlite+aiosqlite:///{workdir / 'import.db'}"
        results.append(("SQLite", *_measure(url, source, rows, workdir)))
        if pg_reachable():
            with scratch_database(PG_ADMIN, "numbra_bench") as url:
                results.append(("PostgreSQL", *_measure(url, source, rows, workdir)))
    print(f"numbra import of {rows:,} rows (targets ≤ 60 s, peak RSS ≤ 300 MB)")
    print(f"{'database':<12}{'seconds':>10}{'rows/s':>10}{'peak RSS':>10}")
    for label, seconds, peak in results:
        print(f"{label:<12}{seconds:>10.1f}{rows / seconds:>10,.0f}{peak:>7} MB")
