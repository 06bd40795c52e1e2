"""The table `make load` prints: a line per operation kind, then the totals."""

import statistics
from collections import Counter
from collections.abc import Sequence

from tests.load.client import KINDS
from tests.load.plan import Tally

HEADER = ("operation", "requests", "ok", "req/s", "p50 ms", "p99 ms", "errors", "refusals")


def _ms(values: Sequence[float], percentile: int) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0] * 1000:.1f}"
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"{cuts[percentile - 1] * 1000:.1f}"


def _line(
    name: str, latencies: Sequence[float], ok: int, errors: int, codes: Counter[str], window: float
) -> tuple[str, ...]:
    requests = ok + errors + sum(codes.values())
    return (
        name,
        f"{requests:,}",
        f"{ok:,}",
        f"{requests / window:,.1f}",
        _ms(latencies, 50),
        _ms(latencies, 99),
        str(errors),
        ", ".join(f"{code} {n}" for code, n in codes.most_common()) or "-",
    )


def table(tally: Tally) -> str:
    """Requests per kind over the window all clients ran in, with latency percentiles.

    Latencies are of answered requests (successes, refusals, HTTP and GraphQL errors);
    a request that got no answer counts only as an error.
    """
    window = max(tally.ended - tally.started, 1e-9)
    rows: list[tuple[str, ...]] = [HEADER]
    for kind in KINDS:
        rows.append(
            _line(
                kind,
                tally.latencies.get(kind, []),
                tally.successes[kind],
                tally.errors[kind],
                tally.refusals.get(kind, Counter()),
                window,
            )
        )
    every_code: Counter[str] = Counter()
    for codes in tally.refusals.values():
        every_code.update(codes)
    rows.append(
        _line(
            "total",
            [value for values in tally.latencies.values() for value in values],
            sum(tally.successes.values()),
            sum(tally.errors.values()),
            every_code,
            window,
        )
    )
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    rule = "  ".join("-" * width for width in widths)
    lines = []
    for index, row in enumerate(rows):
        if index == len(rows) - 1:
            lines.append(rule)
        cells = [
            cell.ljust(width) if column in (0, len(HEADER) - 1) else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append(rule)
    return "\n".join(lines)
