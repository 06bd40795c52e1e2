"""What query limits cost: the served schema against no limits and against naive limits.

strawberry's QueryDepthLimiter and MaxAliasesLimiter make new validation rule classes
each time they are constructed. Listed as per-request factories they would hand every
request new classes, and the ValidationCache (keyed on schema, document and rule
classes) would never hit. `schema.extensions.request_pipeline` builds the classes once;
this benchmark shows what that buys on one core, for three schemas:

* none:  the same Query and Mutation with only the parser and validation caches;
* ours:  `build_schema(settings)`, the schema Numbra serves;
* naive: the limits as per-request factories (`lambda: QueryDepthLimiter(...)`, ...),
  the same caches and the same ErrorPolicy as ours.

Measured two ways, each the median of three interleaved runs:

* in process, `await schema.execute(...)` in a loop, for `{ __typename }` and for a
  slightly bigger document with a fragment and aliases (so validation has work to do);
* over HTTP: the real app under uvicorn, pinned to CPU 0, on a temporary SQLite
  database, driven with `{ viewer { role } }` by a keep-alive httpx client pinned to CPU 1.

    python -m tests.perf.limits [--quick]

The same module is the server (`serve`) and the client (`client`) subprocess.
"""

import argparse
import asyncio
import contextlib
import functools
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from tests.perf import UNLIMITED_BUDGET, drive_client
from tests.perf.pinning import CLIENT_CPU, SERVER_CPU, can_pin, pinned, this_process_on
from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parent.parent.parent
VARIANTS = ("none", "ours", "naive")
RUNS = 3
HTTP_QUERY = "{ viewer { role } }"
QUERIES = {
    "{ __typename }": "{ __typename }",
    "fragment+aliases": """
        query Bench { ...Names a1: __typename a2: __typename a3: __typename }
        fragment Names on Query { __typename b1: __typename b2: __typename }
    """,
}
CONCURRENCY = 8


@dataclass(frozen=True)
class Timing:
    """How long things run, in seconds."""

    in_process: float
    in_process_warmup: float
    http: float
    http_warmup: float

    @classmethod
    def for_mode(cls, quick: bool) -> "Timing":
        if quick:
            return cls(in_process=0.3, in_process_warmup=0.05, http=0.3, http_warmup=0.2)
        return cls(in_process=2.0, in_process_warmup=0.2, http=3.0, http_warmup=0.5)


# --- The schemas -------------------------------------------------------------------


def make_schema(variant: str, settings: Any) -> Any:
    """One of the three schemas; imports are late so `client` stays light."""
    from strawberry.extensions import (
        MaxTokensLimiter,
        ParserCache,
        QueryDepthLimiter,
        SchemaExtension,
        ValidationCache,
    )
    from strawberry.extensions.max_aliases import MaxAliasesLimiter

    from schema.build import Mutation, NumbraSchema, Query, build_schema
    from schema.errors import ErrorPolicy
    from schema.extensions import CACHE_SIZE

    caches: list[Callable[[], SchemaExtension]] = [
        functools.partial(ParserCache, maxsize=CACHE_SIZE),
        functools.partial(ValidationCache, maxsize=CACHE_SIZE),
    ]
    if variant == "none":
        return NumbraSchema(query=Query, mutation=Mutation, extensions=caches)
    if variant == "ours":
        return build_schema(settings)
    if variant == "naive":
        return NumbraSchema(
            query=Query,
            mutation=Mutation,
            extensions=[
                lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
                lambda: QueryDepthLimiter(max_depth=settings.max_query_depth),
                lambda: MaxAliasesLimiter(max_alias_count=settings.max_aliases),
                *caches,
                ErrorPolicy,
            ],
        )
    raise ValueError(f"unknown variant {variant!r}")


def bench_settings() -> Any:
    from settings import Settings

    # pydantic-settings takes `_env_file`; not every type checker sees it.
    settings_class: Any = Settings
    return settings_class(_env_file=None)


# --- In process --------------------------------------------------------------------


async def _ops_per_second(
    schema: Any, query: str, context: Any, seconds: float
) -> tuple[float, float]:
    """Operations per second, and the share of a CPU this process had meanwhile."""
    count = 0
    cpu_start = time.process_time()
    start = time.perf_counter()
    deadline = start + seconds
    now = start
    while now < deadline:
        await schema.execute(query, context_value=context)
        count += 1
        now = time.perf_counter()
    return count / (now - start), (time.process_time() - cpu_start) / (now - start)


async def _check(schema: Any, variant: str, settings: Any, context: Any) -> None:
    """Every variant answers the queries; ours and naive also enforce the limits."""
    for name, query in QUERIES.items():
        result = await schema.execute(query, context_value=context)
        if result.errors:
            raise RuntimeError(f"{variant}: {name} failed: {result.errors}")
    too_many = "{ " + " ".join(f"a{i}: __typename" for i in range(settings.max_aliases + 1)) + " }"
    result = await schema.execute(too_many, context_value=context)
    if (variant == "none") != (not result.errors):
        raise RuntimeError(f"{variant}: the alias limit is not as expected: {result.errors}")


async def _in_process(timing: Timing) -> tuple[dict[tuple[str, str], list[float]], list[float]]:
    """Operations per second by variant and query, and the CPU share of every run."""
    from domain.clock import SystemClock
    from models.database import Database
    from schema.context import Context

    settings = bench_settings()
    schemas = {variant: make_schema(variant, settings) for variant in VARIANTS}
    db = Database("sqlite+aiosqlite://")  # never connects: no query here touches it
    context = Context(db=db, settings=settings, clock=SystemClock(), request_id="bench")
    results: dict[tuple[str, str], list[float]] = {}
    shares: list[float] = []
    try:
        for variant, schema in schemas.items():
            await _check(schema, variant, settings, context)
            for query in QUERIES.values():
                await _ops_per_second(schema, query, context, timing.in_process_warmup)
        for _ in range(RUNS):
            for variant, schema in schemas.items():
                for name, query in QUERIES.items():
                    ops, share = await _ops_per_second(schema, query, context, timing.in_process)
                    results.setdefault((variant, name), []).append(ops)
                    shares.append(share)
    finally:
        await db.dispose()
    return results, shares


# --- Over HTTP: the server ---------------------------------------------------------


def serve(variant: str, port: int) -> None:
    """Run the real app with the variant's schema (patched into web.app) under uvicorn."""
    import uvicorn

    import web.app

    settings = bench_settings()
    if variant == "ours":
        app = web.app.create_app(settings)
    else:
        with mock.patch.object(web.app, "build_schema", lambda s: make_schema(variant, s)):
            app = web.app.create_app(settings)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _migrate(env: dict[str, str]) -> str:
    """`numbra migrate` on the temporary database; its last stdout line is the token."""
    script = Path(sys.executable).with_name("numbra")
    if script.exists():
        command = [str(script), "migrate"]
    else:
        command = [sys.executable, "-c", "from cli.main import main; main()", "migrate"]
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"numbra migrate failed ({done.returncode}):\n{done.stderr}")
    return lines[-1].strip()


@dataclass
class _Server:
    variant: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@contextlib.contextmanager
def _servers(workdir: Path, env: dict[str, str]) -> Iterator[list[_Server]]:
    servers: list[_Server] = []
    try:
        for variant in VARIANTS:
            port = free_port()
            log = workdir / f"server-{variant}.log"
            with log.open("wb") as out:
                command = [sys.executable, "-m", "tests.perf.limits", "serve"]
                process = subprocess.Popen(
                    pinned(SERVER_CPU, [*command, "--variant", variant, "--port", str(port)]),
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            servers.append(_Server(variant, f"http://127.0.0.1:{port}/graphql", process, log))
        for server in servers:
            _wait_until_up(server)
        yield servers
    finally:
        for server in servers:
            server.process.terminate()
        for server in servers:
            try:
                server.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


def _wait_until_up(server: _Server, timeout: float = 30.0) -> None:
    import httpx

    health = server.url.removesuffix("/graphql") + "/healthz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(health, timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(
        f"the {server.variant} server did not start:\n{server.log.read_text(errors='replace')}"
    )


def _check_server(server: _Server, token: str) -> None:
    import httpx

    response = httpx.post(
        server.url,
        json={"query": HTTP_QUERY},
        headers={"authorization": f"Bearer {token}"},
        timeout=10,
    )
    # Every answer carries extensions.cost besides its data.
    answer = response.json()
    if response.status_code != 200 or answer.get("data") != {"viewer": {"role": "ADMIN"}}:
        raise RuntimeError(f"{server.variant}: {response.status_code} {response.text}")


# --- Over HTTP: the client ---------------------------------------------------------


def _cpu_seconds(pid: int) -> float | None:
    """User and system time of a process, all its threads included (Linux only)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _busy_seconds(cpu: str) -> float | None:
    """Time one CPU has spent busy, whoever it ran (Linux only)."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, *ticks = line.split()
        if name == f"cpu{cpu}":
            idle = int(ticks[3]) + int(ticks[4])  # idle and iowait
            return (sum(int(t) for t in ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    return None


def _rate(before: float | None, after: float | None, wall: float) -> float | None:
    return None if before is None or after is None else (after - before) / wall


async def _load(client: Any, url: str, body: bytes, headers: dict[str, str], seconds: float):
    """Requests per second from CONCURRENCY keep-alive connections, and the failures."""
    start = time.perf_counter()
    deadline = start + seconds

    async def worker() -> tuple[int, int]:
        ok = failed = 0
        while time.perf_counter() < deadline:
            response = await client.post(url, content=body, headers=headers)
            if response.status_code == 200:
                ok += 1
            else:
                failed += 1
        return ok, failed

    counts = await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - start
    return sum(ok for ok, _ in counts) / elapsed, sum(failed for _, failed in counts)


async def _drive(spec: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    import httpx

    body = json.dumps({"query": spec["query"]}).encode()
    headers = {"authorization": f"Bearer {spec['token']}", "content-type": "application/json"}
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    results: dict[str, list[dict[str, Any]]] = {}
    async with contextlib.AsyncExitStack() as stack:
        clients = {
            target["variant"]: await stack.enter_async_context(
                httpx.AsyncClient(limits=limits, timeout=30)
            )
            for target in spec["targets"]
        }
        for target in spec["targets"]:
            await _load(clients[target["variant"]], target["url"], body, headers, spec["warmup"])
        for _ in range(spec["runs"]):
            for target in spec["targets"]:
                server_before = _cpu_seconds(target["pid"])
                busy_before = {cpu: _busy_seconds(cpu) for cpu in (SERVER_CPU, CLIENT_CPU)}
                client_before = time.process_time()
                wall_before = time.perf_counter()
                rps, failed = await _load(
                    clients[target["variant"]], target["url"], body, headers, spec["seconds"]
                )
                wall = time.perf_counter() - wall_before
                client_cpu = (time.process_time() - client_before) / wall
                server_cpu = _rate(server_before, _cpu_seconds(target["pid"]), wall)
                busy = {
                    cpu: _rate(before, _busy_seconds(cpu), wall)
                    for cpu, before in busy_before.items()
                }
                results.setdefault(target["variant"], []).append(
                    {
                        "rps": rps,
                        "failed": failed,
                        "client": client_cpu,
                        "server": server_cpu,
                        "server_cpu_busy": busy[SERVER_CPU],
                        "client_cpu_busy": busy[CLIENT_CPU],
                    }
                )
    return results


def client(spec_json: str) -> None:
    drive_client(_drive, spec_json)


def _over_http(timing: Timing) -> dict[str, list[dict[str, Any]]]:
    with tempfile.TemporaryDirectory(prefix="numbra-bench-") as tmp:
        workdir = Path(tmp)
        env = os.environ | {
            "NUMBRA_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
            "NUMBRA_LOG_LEVEL": "WARNING",
            **UNLIMITED_BUDGET,
        }
        token = _migrate(env)
        with _servers(workdir, env) as servers:
            for server in servers:
                _check_server(server, token)
            spec = {
                "query": HTTP_QUERY,
                "token": token,
                "runs": RUNS,
                "seconds": timing.http,
                "warmup": timing.http_warmup,
                "targets": [
                    {"variant": s.variant, "url": s.url, "pid": s.process.pid} for s in servers
                ],
            }
            command = [sys.executable, "-m", "tests.perf.limits", "client", json.dumps(spec)]
            done = subprocess.run(
                pinned(CLIENT_CPU, command),
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=60 + RUNS * len(VARIANTS) * (timing.http + 5),
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"the client failed ({done.returncode}):\n{done.stderr}")
            results: dict[str, list[dict[str, Any]]] = json.loads(done.stdout)
            return results


# --- The report --------------------------------------------------------------------


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = [
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells))
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _percent(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return f"{statistics.median(known) * 100:.0f}%" if known else "?"


def run(quick: bool = False, out: Callable[[str], None] = print) -> None:
    """The whole benchmark; prints the configuration and the table."""
    timing = Timing.for_mode(quick)
    pinning = (
        f"server on CPU {SERVER_CPU}, client on CPU {CLIENT_CPU}"
        if can_pin()
        else "NOT pinned (taskset missing or fewer than 2 CPUs)"
    )
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in ("strawberry-graphql", "graphql-core", "uvicorn", "httpx")
    )
    out(f"Python {sys.version.split()[0]}, {versions}.")
    out(
        f"Median of {RUNS} interleaved runs. In process: {timing.in_process:g} s per run"
        f"{f' on CPU {SERVER_CPU}' if can_pin() else ''}. HTTP: {timing.http:g} s per run, "
        f"{CONCURRENCY} keep-alive connections, {HTTP_QUERY!r}, uvicorn on SQLite, {pinning}."
    )
    with this_process_on(SERVER_CPU):
        in_process, shares = asyncio.run(_in_process(timing))
    http = _over_http(timing)

    names = list(QUERIES)
    rows = [
        [
            "variant",
            *(f"in-process {name} ops/s" for name in names),
            "HTTP req/s",
            "server CPU",
            "client CPU",
        ]
    ]
    for variant in VARIANTS:
        runs = http[variant]
        rows.append(
            [
                variant,
                *(f"{statistics.median(in_process[variant, name]):,.0f}" for name in names),
                f"{statistics.median(r['rps'] for r in runs):,.0f}",
                _percent([r["server"] for r in runs]),
                _percent([r["client"] for r in runs]),
            ]
        )
    out(_table(rows))
    for line in _notes(shares, [r for runs in http.values() for r in runs]):
        out(line)


def _notes(shares: list[float], runs: list[dict[str, Any]]) -> Iterator[str]:
    """What the figures are worth: failures, the bottleneck, and other processes' load."""
    failures = sum(r["failed"] for r in runs)
    if failures:
        yield f"WARNING: {failures} HTTP requests did not answer 200."
    yield (
        f"In process, the bench had {min(shares):.0%}-{max(shares):.0%} of a CPU "
        "(well under 100% means other processes competed for it)."
    )
    client = statistics.median(r["client"] for r in runs)
    server = statistics.median(r["server"] or 0.0 for r in runs)
    if client > 0.9:
        yield f"The client was saturated ({client:.0%}): HTTP figures are the client's limit."
    elif server > 0.9:
        yield f"The server was saturated ({server:.0%}), the client was not ({client:.0%})."
    else:
        yield (
            f"Neither process was saturated (server {server:.0%}, client {client:.0%}): "
            "other work on the CPUs (see below) or waiting held the HTTP figures back."
        )
    for cpu, own in ((SERVER_CPU, "server"), (CLIENT_CPU, "client")):
        others = [
            r[f"{own}_cpu_busy"] - (r[own] or 0.0) for r in runs if r[f"{own}_cpu_busy"] is not None
        ]
        if others and can_pin():
            worst = max(0.0, *others)
            yield f"Other work (processes, interrupts) took up to {worst:.0%} of CPU {cpu} ({own})."


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.limits", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about 0.3 s per measurement")
    commands = parser.add_subparsers(dest="command")
    serve_parser = commands.add_parser("serve", help="(internal) serve one variant")
    serve_parser.add_argument("--variant", choices=VARIANTS, required=True)
    serve_parser.add_argument("--port", type=int, required=True)
    client_parser = commands.add_parser("client", help="(internal) drive the servers")
    client_parser.add_argument("spec")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.variant, args.port)
    elif args.command == "client":
        client(args.spec)
    else:
        run(quick=args.quick)


if __name__ == "__main__":
    main()
