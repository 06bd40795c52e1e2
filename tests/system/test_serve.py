"""`numbra serve` and `make run`: where it listens, a port clash refused before anything is
created, and the one-time token printed as the last line before the server's own log."""

import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import NUMBRA, READY_WITHIN_SECONDS, SERVE, environment, free_port

TOKEN_LINE = re.compile(r"^nbr_\S+$")


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something else is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["--port", "NUMBRA_PORT"])
def test_a_taken_port_is_refused_before_the_database_or_a_token_is_made(
    taken_port: int, how: str, tmp_path: Path
) -> None:
    database = tmp_path / "numbra.db"
    env = environment(f"sqlite+aiosqlite:///{database}")
    args = [*SERVE]
    if how == "--port":
        args += ["--port", str(taken_port)]
    else:
        env["NUMBRA_PORT"] = str(taken_port)

    done = subprocess.run(
        args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"Port {taken_port} on 127.0.0.1 is already in use: stop what holds it, or choose "
        "another with --port, NUMBRA_PORT or `make run PORT=…`."
    ]
    assert done.stdout == ""
    assert not database.exists()


@pytest.mark.slow
def test_numbra_host_and_port_place_the_server_and_the_token_comes_last_before_its_log(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = environment(f"sqlite+aiosqlite:///{tmp_path}/numbra.db") | {
        "NUMBRA_HOST": "127.0.0.1",
        "NUMBRA_PORT": str(port),
        "NUMBRA_LOG_LEVEL": "INFO",
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [NUMBRA, "serve"], env=env, cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            _wait_until_serving(process, f"http://127.0.0.1:{port}", log)
        finally:
            process.terminate()
            process.wait(timeout=30)

    lines = log.read_text().splitlines()
    tokens = [index for index, line in enumerate(lines) if TOKEN_LINE.match(line)]
    assert len(tokens) == 1, lines
    before, after = lines[: tokens[0]], lines[tokens[0] + 1 :]
    assert not any("uvicorn" in line for line in before), lines
    assert "uvicorn" in after[0], lines
    assert "shown only now" in before[-1]


def _wait_until_serving(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(base_url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"not serving on {base_url}:\n{log.read_text()}")


@pytest.mark.parametrize(
    ("variables", "command"),
    [
        (["PORT=8080", "HOST=0.0.0.0"], "numbra serve --host 0.0.0.0 --port 8080"),
        (["PORT=8080"], "numbra serve --port 8080"),
        ([], "numbra serve"),
    ],
)
def test_make_run_passes_host_and_port_on(
    variables: list[str], command: str, pytestconfig: pytest.Config
) -> None:
    # -n: print, do not run; -o: take the virtualenv as made.
    shown = subprocess.run(
        ["make", "-s", "-n", "-o", ".venv/.installed", "run", *variables],
        cwd=pytestconfig.rootpath,
        env={key: value for key, value in os.environ.items() if key not in {"HOST", "PORT"}},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )

    assert shown.stdout.split() == [".venv/bin/" + command.split()[0], *command.split()[1:]]
