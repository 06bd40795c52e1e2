"""Where a request's time goes: cProfile over the real app, in process, on the bench's data.

    python -m tests.perf.profile [--numbers N] [--requests N] [--measure KEY] [--top N]
                                 [--slow] [--database-url URL]

Builds the search bench's inventory (mixed shape, SQLite in a temporary file unless
`--database-url` names an empty database), then sends one measure's request many times
straight to the ASGI app (no socket, no HTTP client: only the server's work is profiled)
and prints function calls per request, the functions that take the most time of their
own, and the time per request in a few areas (graphql-core's execution, the resolvers,
SQLAlchemy and the driver, authentication, JSON). `--slow` turns the fast execution
path off (NUMBRA_FAST_EXECUTION=false) to compare.
"""

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.perf.search import SHAPES, Measure, Size, _build, _deep_cursor, _measures

BATCH = 25
# Areas of the profile: a function counts in the first whose words its file path holds
# (time of its own, so nothing is counted twice).
AREAS = (
    ("graphql-core execution", ("graphql/execution",)),
    ("graphql-core other (types, pyutils)", ("graphql/",)),
    ("strawberry", ("strawberry/",)),
    ("fast execution plan", ("schema/fast_execution",)),
    ("Numbra resolvers and schema", ("resolvers/", "schema/")),
    ("Numbra domain and models", ("domain/", "models/")),
    ("SQLAlchemy", ("sqlalchemy/",)),
    ("database driver", ("aiosqlite", "asyncpg", "sqlite3")),
    ("web (Numbra's middleware, auth, logging)", ("web/",)),
    ("Starlette", ("starlette/",)),
    ("JSON", ("json/", "orjson", "cross_web")),
    ("asyncio", ("asyncio/",)),
)


async def _send(app: Any, token: str, body: bytes) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def _profile(url: str, token: str, measure: Measure, requests: int) -> pstats.Stats:
    from models.database import Database
    from settings import Settings
    from web.app import create_app

    db = Database(url)
    settings: Any = Settings
    app = create_app(settings(_env_file=None, database_url=url), db=db)
    body = measure.body()
    for _ in range(20):
        status, answer = await _send(app, token, body)
        if status != 200 or b'"errors"' in answer:
            raise RuntimeError(f"{status} {answer[:400]!r}")
    batches = []
    for _ in range(max(1, requests // BATCH)):
        start = time.perf_counter()
        for _ in range(BATCH):
            await _send(app, token, body)
        batches.append((time.perf_counter() - start) / BATCH)
    print(
        f"{len(batches) * BATCH} requests without the profiler: "
        f"{statistics.median(batches) * 1000:.2f} ms each (median of batches of {BATCH}), "
        f"{min(batches) * 1000:.2f} ms in the quickest batch (the steadier on a busy machine)"
    )
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for _ in range(requests):
        await _send(app, token, body)
    profiler.disable()
    wall = time.perf_counter() - start
    await db.dispose()
    print(f"{requests} requests, {wall / requests * 1000:.2f} ms each under the profiler")
    return pstats.Stats(profiler)


def _report(stats: pstats.Stats, requests: int, top: int) -> None:
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    calls = sum(entry[1] for entry in raw.values())
    own = sum(entry[2] for entry in raw.values())
    print(f"function calls per request: {calls / requests:,.0f}")
    print(f"profiled time per request: {own / requests * 1000:.2f} ms")
    areas: dict[str, float] = {}
    for (filename, _line, _name), entry in raw.items():
        area = next(
            (title for title, words in AREAS if any(w in filename for w in words)),
            "built-ins (C)" if filename == "~" else "other",
        )
        areas[area] = areas.get(area, 0.0) + entry[2]
    print("time of its own per request, by area:")
    for area, seconds in sorted(areas.items(), key=lambda item: -item[1]):
        print(f"  {seconds / requests * 1000:6.3f} ms {seconds / own:5.1%}  {area}")
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(top)
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    print(f"top {top} functions by time of their own ({requests} requests):")
    print("\n".join(lines[start:]))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.profile", description=__doc__)
    parser.add_argument("--numbers", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--measure", default="prefix", help="prefix, contains, bulk, page1, …")
    parser.add_argument("--query", help="profile this document instead of a measure's")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--slow", action="store_true", help="the fast execution path off")
    parser.add_argument("--database-url", help="an empty database (default: SQLite, temporary)")
    parser.add_argument(
        "--save", help="also write the raw profile here (pstats, e.g. for snakeviz)"
    )
    args = parser.parse_args(argv)
    os.environ["NUMBRA_FAST_EXECUTION"] = "false" if args.slow else "true"
    from migrations import upgrade

    size = Size(args.numbers, max(50, args.numbers // 1_000), 20, 0, 0, 0)
    shape = SHAPES[0]
    with tempfile.TemporaryDirectory(prefix="numbra-profile-") as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'profile.db'}"
        upgrade(url)
        built = asyncio.run(_build(url, size, shape))
        deep = asyncio.run(_deep_cursor(url, size, shape))
        measure = {m.key: m for m in _measures(size, deep)}[args.measure]
        if args.query:
            measure = Measure("query", "--query", "", args.query)
        print(f"measure: {measure.title}; fast execution {'off' if args.slow else 'on'}")
        print(json.dumps({"query": measure.query})[:200])
        stats = asyncio.run(_profile(url, built.token, measure, args.requests))
        _report(stats, args.requests, args.top)
        if args.save:
            stats.dump_stats(args.save)


if __name__ == "__main__":
    main()
