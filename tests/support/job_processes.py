"""Real `numbra worker`, `numbra scheduler` and `numbra serve` processes for the job tests,
a Redis database of their own, a Redis that can be taken away, and bounded waiting.
"""

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from tests.support.databases import service_unavailable
from tests.support.processes import NUMBRA, STOP_WITHIN_SECONDS, environment, free_port

REDIS_URL = os.environ.get("NUMBRA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Bounded waits for work that other processes do on their own schedule.
WITHIN_SECONDS = 45.0


@contextmanager
def redis_database() -> Iterator[str]:
    """The test Redis database, empty before and after."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        service_unavailable("Redis", exc)
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


def job_environment(database_url: str, redis_url: str | None, smtp_port: int) -> dict[str, str]:
    env = environment(database_url)
    env.update(
        NUMBRA_SMTP_HOST="127.0.0.1",
        NUMBRA_SMTP_PORT=str(smtp_port),
        NUMBRA_SMTP_TIMEOUT_SECONDS="5",
        NUMBRA_MAIL_FROM="numbra@operator.test",
        NUMBRA_SWEEP_INTERVAL_SECONDS="0.3",
        NUMBRA_NOTICE_RETRY_SECONDS="0.5",
        NUMBRA_NOTICE_LEASE_SECONDS="2",
        NUMBRA_LOG_LEVEL="INFO",
        # Dramatiq's consumers retry a lost Redis connection after this many ms.
        dramatiq_restart_delay="200",
    )
    if redis_url is not None:
        env["NUMBRA_REDIS_URL"] = redis_url
    return env


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return f"--- {self.name} ---\n{self.log.read_text(errors='replace')}"

    def kill(self) -> None:
        """SIGKILL the process and its children, as an OOM killer or a lost machine would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=STOP_WITHIN_SECONDS)


@dataclass
class Processes:
    workdir: Path
    env: dict[str, str]
    started: list[Process] = field(default_factory=list)

    def start(self, name: str, args: Sequence[str]) -> Process:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as sink:
            popen = subprocess.Popen(
                [NUMBRA, *args],
                env=self.env,
                cwd=self.workdir,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = Process(name, popen, log)
        self.started.append(process)
        return process

    def worker(self, name: str, threads: int = 2) -> Process:
        return self.start(name, ["worker", "--processes", "1", "--threads", str(threads)])

    def scheduler(self, name: str) -> Process:
        return self.start(name, ["scheduler"])

    def output(self) -> str:
        return "\n".join(process.output() for process in self.started)

    async def wait_for(self, what: str, check: Callable[[], Awaitable[bool]]) -> None:
        """Poll `check` until it holds; fail, with every process's output, if it never does."""
        deadline = time.monotonic() + WITHIN_SECONDS
        while not await check():
            for process in self.started:
                if process.popen.poll() not in (None, -signal.SIGKILL, -signal.SIGTERM):
                    pytest.fail(f"{process.name} exited\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"not within {WITHIN_SECONDS:.0f} s: {what}\n{self.output()}")
            await asyncio.sleep(0.1)


@contextmanager
def processes(workdir: Path, env: dict[str, str]) -> Iterator[Processes]:
    running = Processes(workdir, env)
    try:
        yield running
    finally:
        for process in running.started:
            process.kill()


class RedisProxy:
    """A TCP relay in front of Redis that the test can take down and bring back."""

    def __init__(self, target: str) -> None:
        url = urlsplit(target)
        self._target = (url.hostname or "127.0.0.1", url.port or 6379)
        self._path = url.path
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}{self._path}"

    def _run(self, coroutine: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def up(self) -> None:
        self._run(self._up())

    def down(self) -> None:
        self._run(self._down())

    def close(self) -> None:
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _up(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def _down(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _relay(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        try:
            redis_in, redis_out = await asyncio.open_connection(*self._target)
        except OSError:
            client_out.close()
            return
        self._writers.update((client_out, redis_out))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except OSError:
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(client_in, redis_out), pipe(redis_in, client_out))
