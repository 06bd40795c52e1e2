"""For the fault tests: a PostgreSQL and a Redis of their own to stop and start, a disk of
its own to fill, and a stream of API requests that records how each one ended.

The private servers leave the shared ones other tests use undisturbed. PostgreSQL runs
as the `postgres` OS user (it refuses root) from a throwaway data directory.
"""

import asyncio
import glob
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.support.databases import service_unavailable
from tests.support.processes import STOP_WITHIN_SECONDS, free_port

# A request that takes longer than this counts as hung.
REQUEST_BOUND_SECONDS = 10.0
# Bounded waits for servers to come up and for the traffic to show something.
WITHIN_SECONDS = 45.0


def _run(command: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=check)


def _as_postgres(binary: Path, *args: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", str(binary), *args]


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster in a temporary directory, listening on loopback only."""

    data: Path
    port: int
    bin: Path

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        _run(_as_postgres(self.bin / "pg_ctl", "-D", str(self.data), "-w", "-t", "30", *args))

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} -c fsync=off"
        self._pg_ctl("-l", str(self.data / "server.log"), "-o", options, "start")

    def stop(self) -> None:
        """A fast shutdown: open sessions are ended, as by an operator's restart."""
        self._pg_ctl("-m", "fast", "stop")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """initdb and start; always stopped and removed after."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found or shutil.which("runuser") is None:
        service_unavailable("A PostgreSQL installation for a private server", "no pg_ctl")
    server = PrivatePostgres(
        Path(tempfile.mkdtemp(prefix="numbra-pg-")), free_port(), Path(found[-1]).parent
    )
    shutil.chown(server.data, "postgres", "postgres")
    try:
        initdb = ["-D", str(server.data), "-A", "trust", "-U", "postgres", "--no-sync"]
        _run(_as_postgres(server.bin / "initdb", *initdb))
        server.start()
        yield server
    finally:
        stop = ["-D", str(server.data), "-m", "immediate", "stop"]
        _run(_as_postgres(server.bin / "pg_ctl", *stop), check=False)
        shutil.rmtree(server.data, ignore_errors=True)


@dataclass
class PrivateRedis:
    """A redis-server that keeps nothing on disk: a restart comes back empty."""

    binary: str
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    def url(self, database: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        ephemeral = ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        with (self.workdir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", *ephemeral],
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _until(self._answers, f"redis-server on port {self.port} to answer")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=STOP_WITHIN_SECONDS)
        self.process = None

    def _answers(self) -> bool:
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()


@contextmanager
def private_redis(workdir: Path) -> Iterator[PrivateRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        service_unavailable("redis-server", "not installed")
    assert binary is not None  # service_unavailable failed or skipped the test
    server = PrivateRedis(binary, free_port(), workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WITHIN_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {WITHIN_SECONDS:.0f} s: {what}")
        time.sleep(0.05)


@contextmanager
def small_disk(mount_point: Path, megabytes: int) -> Iterator[Path]:
    """A tmpfs of its own, so that filling it fills nothing else; unmounted after."""
    mount_point.mkdir()
    done = _run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(mount_point)])
    if done.returncode != 0:
        service_unavailable("A tmpfs mount (as root, where the container allows it)", done.stderr)
    try:
        yield mount_point
    finally:
        _run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path, leave_bytes: int) -> Path:
    """Take all of the disk's free space but `leave_bytes` with a ballast file; return it."""
    ballast = disk / "ballast"
    remaining = shutil.disk_usage(disk).free - leave_bytes
    chunk = b"\0" * (1 << 20)
    with ballast.open("wb") as sink:
        while remaining > 0:
            remaining -= sink.write(chunk[:remaining])
    return ballast


@dataclass(frozen=True)
class Outcome:
    """How one request ended: its HTTP status and body, or the transport error."""

    seconds: float
    status: int | None
    body: str

    @property
    def data_ok(self) -> bool:
        """Answered without any GraphQL error (userErrors in the data may say no)."""
        return self.status == 200 and '"errors"' not in self.body

    @property
    def ok(self) -> bool:
        """Answered, and every mutation in it did what it was asked."""
        if not self.data_ok:
            return False
        payloads = json.loads(self.body)["data"].values()
        return not any(isinstance(p, dict) and p.get("userErrors") for p in payloads)


Seen = Callable[[list[Outcome]], bool]


@dataclass
class Traffic:
    """GraphQL requests sent one after another, round the list, until stopped."""

    client: httpx.AsyncClient
    requests: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        index = 0
        while True:
            self.outcomes.append(await self.send(self.requests[index % len(self.requests)]))
            index += 1

    async def send(self, body: dict[str, Any]) -> Outcome:
        start = time.monotonic()
        try:
            response = await self.client.post("/graphql", json=body)
        except httpx.TransportError as exc:
            return Outcome(time.monotonic() - start, None, repr(exc))
        return Outcome(time.monotonic() - start, response.status_code, response.text)

    async def until(self, what: str, condition: Seen) -> None:
        """Wait until `condition(outcomes)` holds; fail if it does not within the bound."""
        deadline = time.monotonic() + WITHIN_SECONDS
        while not condition(self.outcomes):
            assert self._task is not None
            assert not self._task.done(), self._task
            if time.monotonic() > deadline:
                last = self.outcomes[-3:]
                pytest.fail(f"not within {WITHIN_SECONDS:.0f} s: {what}; last: {last}")
            await asyncio.sleep(0.05)


def client(base_url: str, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=REQUEST_BOUND_SECONDS,
    )
