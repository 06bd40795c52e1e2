"""Real `numbra` processes for tests: the CLI run to completion, and servers on loopback ports."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

NUMBRA = str(Path(sys.executable).with_name("numbra"))
# Two servers importing the app at once on a busy 2-CPU machine took 14 s to answer.
READY_WITHIN_SECONDS = 30.0
STOP_WITHIN_SECONDS = 10.0
SERVE = (NUMBRA, "serve", "--host", "127.0.0.1")


def environment(database_url: str) -> dict[str, str]:
    """This process's environment without any NUMBRA_* setting but the database's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBRA_")}
    env["NUMBRA_DATABASE_URL"] = database_url
    env["NUMBRA_LOG_LEVEL"] = "WARNING"
    return env


def run_cli(
    args: Sequence[str], database_url: str, cwd: Path, settings: Mapping[str, str] | None = None
) -> str:
    """Run `numbra ARGS` to completion and return its stdout; fail showing stderr otherwise.

    `settings` are NUMBRA_* variables to set besides the database's."""
    done = subprocess.run(
        [NUMBRA, *args],
        env=environment(database_url) | dict(settings or {}),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, (
        f"numbra {' '.join(args)} exited {done.returncode}\n"
        f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    )
    return done.stdout


def migrated_admin_token(database_url: str, cwd: Path) -> str:
    """`numbra migrate`, and an ADMIN token of the root: a new root comes with one; a root
    that was there already needs one made."""
    printed = run_cli(["migrate"], database_url, cwd).splitlines()
    if printed:
        return printed[-1]
    args = ["token", "create", "--org", "ROOT", "--role", "ADMIN", "--name", "test admin"]
    return run_cli(args, database_url, cwd).splitlines()[-1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")


def _stop(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=STOP_WITHIN_SECONDS)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=STOP_WITHIN_SECONDS)


def _wait_until_ready(server: Server) -> None:
    """Poll GET /healthz until the process answers; fail with its stderr if it never does."""
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    with httpx.Client(base_url=server.base_url, timeout=1.0) as client:
        while True:
            code = server.process.poll()
            assert code is None, f"numbra serve exited {code} before ready:\n{server.stderr()}"
            try:
                if client.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (
                f"numbra serve on {server.base_url} not ready within "
                f"{READY_WITHIN_SECONDS:.0f} s:\n{server.stderr()}"
            )
            time.sleep(0.1)


@contextmanager
def serving(
    database_url: str,
    count: int,
    workdir: Path,
    *,
    workers: int = 1,
    settings: Mapping[str, str] | None = None,
) -> Iterator[list[Server]]:
    """Start COUNT `numbra serve` processes on free loopback ports; always stop them after.

    Each has WORKERS worker processes, and SETTINGS (NUMBRA_*) on top of the defaults.
    """
    with ExitStack() as stack:
        servers: list[Server] = []
        for index in range(count):
            port = free_port()
            log = workdir / f"serve-{index}.log"
            sink = stack.enter_context(log.open("wb"))
            process = subprocess.Popen(
                [*SERVE, "--port", str(port), "--workers", str(workers)],
                env=environment(database_url) | dict(settings or {}),
                cwd=workdir,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
            server = Server(process=process, base_url=f"http://127.0.0.1:{port}", log=log)
            stack.callback(_stop, server)
            servers.append(server)
        for server in servers:
            _wait_until_ready(server)
        yield servers
