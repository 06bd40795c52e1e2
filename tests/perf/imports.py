"""`numbra import` of a 1,000,000-row CSV into a fresh SQLite and (when reachable)
PostgreSQL database, then `numbra export` of all of it: wall time and each process's
peak RSS, as an operator runs them.

Rows spread over the eight SG series of the search bench, every tenth LOCKED, with
capabilities, a few SKUs and a note, one number a row. Targets: import ≤ 60 s,
export ≤ 30 s, each ≤ 300 MB.
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.perf import PG_ADMIN, pg_reachable
from tests.perf.search import SERIES
from tests.support.databases import scratch_database

NUMBRA = str(Path(sys.executable).with_name("numbra"))


def _write_xlsx(source: Path, path: Path) -> None:
    """The CSV's rows as a workbook's first sheet, as a spreadsheet program saves one."""
    import csv

    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Numbers")
    with source.open() as text:
        for row in csv.reader(text):
            sheet.append(row)
    book.save(path)


def _write_csv(path: Path, rows: int) -> None:
    per_series = rows // len(SERIES)
    with path.open("w") as out:
        out.write("number,vendor,country,sku,capabilities,state,notes\n")
        for n in range(rows):
            prefix = SERIES[n // per_series % len(SERIES)]
            state = "LOCKED" if n % 10 == 0 else ""
            number = f"{prefix}{n % per_series:06d}"
            out.write(f"{number},Singtel,SG,DID-{n % 5},VOICE|SMS,{state},r{n}\n")


# Linux carries a process's peak RSS across exec into the program it starts, so a
# child of this (large) bench process would report this process's peak as its own.
# A bare Python launcher in between has a peak of a few MB.
_LAUNCHER = """
import os, sys
report, program = sys.argv[1], sys.argv[2:]
pid = os.spawnv(os.P_NOWAIT, program[0], program)
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _numbra(args: list[str], url: str, cwd: Path, out: Path) -> tuple[float, int]:
    """Run `numbra ARGS` with its stdout in `out`; (seconds, its peak RSS in MB)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBRA_")}
    env |= {"NUMBRA_DATABASE_URL": url, "NUMBRA_LOG_LEVEL": "WARNING"}
    report = cwd / "peak.txt"
    start = time.perf_counter()
    with out.open("wb") as stdout:
        done = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, str(report), NUMBRA, *args],
            env=env,
            cwd=cwd,
            stdout=stdout,
            check=False,
        )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"numbra {' '.join(args)} failed:\n{out.read_text()[-2000:]}")
    return elapsed, int(report.read_text()) // 1024


def _measure(url: str, source: Path, rows: int, cwd: Path) -> list[tuple[float, int]]:
    """(seconds, peak MB) of importing `source` into a new database, then exporting it."""
    log = cwd / "stdout.log"
    _numbra(["migrate"], url, cwd, log)
    imported = _numbra(["import", str(source)], url, cwd, log)
    if f"added {rows} numbers" not in log.read_text():
        raise RuntimeError(f"the import did not add {rows} numbers:\n{log.read_text()[-2000:]}")
    export = cwd / "export.csv"
    exported = _numbra(["export"], url, cwd, export)
    with export.open() as lines:
        written = sum(1 for _ in lines) - 1
    if written != rows:
        raise RuntimeError(f"the export wrote {written} rows, not {rows}")
    return [imported, exported]


def run(quick: bool) -> None:
    rows = 20_000 if quick else 1_000_000
    results = []
    with tempfile.TemporaryDirectory(prefix="numbra-bench-import-") as tmp:
        workdir = Path(tmp)
        source = workdir / "numbers.csv"
        _write_csv(source, rows)
        url = f"sqlite+aiosqlite:///{workdir / 'import.db'}"
        results.append(("SQLite", _measure(url, source, rows, workdir)))
        if pg_reachable():
            with scratch_database(PG_ADMIN, "numbra_bench") as url:
                results.append(("PostgreSQL", _measure(url, source, rows, workdir)))
        # The same rows as .xlsx: streamed like the CSV, so within the same memory bar.
        sheet = workdir / "numbers.xlsx"
        _write_xlsx(source, sheet)
        url = f"sqlite+aiosqlite:///{workdir / 'import-xlsx.db'}"
        log = workdir / "xlsx.log"
        _numbra(["migrate"], url, workdir, log)
        xlsx = _numbra(["import", str(sheet)], url, workdir, log)
        if f"added {rows} numbers" not in log.read_text():
            raise RuntimeError(f"the .xlsx import did not add {rows}:\n{log.read_text()[-2000:]}")
    print(f"numbra import, then numbra export, of {rows:,} rows")
    print("(targets: import ≤ 60 s, export ≤ 30 s, each peak RSS ≤ 300 MB)")
    print(f"{'database':<12}{'step':<8}{'seconds':>10}{'rows/s':>10}{'peak RSS':>10}")
    for label, steps in results:
        for step, (seconds, peak) in zip(("import", "export"), steps, strict=True):
            print(f"{label:<12}{step:<8}{seconds:>10.1f}{rows / seconds:>10,.0f}{peak:>7} MB")
    seconds, peak = xlsx
    print(f"{'SQLite':<12}{'.xlsx':<8}{seconds:>10.1f}{rows / seconds:>10,.0f}{peak:>7} MB")
