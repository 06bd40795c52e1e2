"""`make bench`: every benchmark, one step after another.

    python -m tests.perf.run [--quick] [--only WORD ...]

A benchmark is a step: a title and a callable taking `quick` (about 0.3 s per
measurement, for CI to prove the benchmarks still run). Add new ones to STEPS.
"""

import argparse
import sys
import time
import traceback
from collections.abc import Callable, Sequence

from tests.perf import allocation, events, imports, limits, search, sweep, webhooks

Step = tuple[str, Callable[[bool], None]]

STEPS: list[Step] = [
    ("Query limits: no limits, ours, and per-request limit factories", limits.run),
    ("Allocation: 10,000 numbers in one mutation", allocation.run),
    ("Sweep: lapsing 100,000 due reservations, renewing 100,000 due terms", sweep.run),
    ("Search: a million numbers over HTTP, API against the floor", search.run),
    (
        "CSV import and export: a million rows through `numbra import` and `numbra export`",
        imports.run,
    ),
    ("numberEvents: pages of 1.5 million events, first and 1,000 deep", events.run),
    ("Webhooks: 10,000 events fanned out to 3 endpoints on a local receiver", webhooks.run),
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about 0.3 s per measurement")
    parser.add_argument(
        "--only", nargs="+", metavar="WORD", help="the steps whose title has one of these words"
    )
    args = parser.parse_args(argv)
    words = [word.lower() for word in args.only or []]
    steps = [s for s in STEPS if not words or any(w in s[0].lower() for w in words)]
    failed = []
    for number, (title, step) in enumerate(steps, start=1):
        print(f"== {number}/{len(steps)} {title}", flush=True)
        start = time.perf_counter()
        try:
            step(args.quick)
        except Exception:
            traceback.print_exc()
            failed.append(title)
        print(f"   ({time.perf_counter() - start:.1f} s)\n", flush=True)
    for title in failed:
        print(f"FAILED: {title}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
