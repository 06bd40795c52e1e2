"""The peer a user would pick instead: PostGraphile 4 with the connection filter, over the
bench's own PostgreSQL database, timed beside Numbra and the floor (issue 14).

`make bench` installs it (`npm ci` in tests/perf/postgraphile/, versions pinned by its
package-lock.json) when Node and npm are there; without them the bench says so and goes
on. It serves with the production flags of PostGraphile's documentation (no GraphiQL, no
query log, dynamic JSON, RBAC respected), anonymously: Numbra stays authenticated and
scoped, so the comparison favours the peer.
"""

import contextlib
import http.client
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent / "postgraphile"
BINARY = HERE / "node_modules" / ".bin" / "postgraphile"
# The bench's prefix page in PostGraphile's terms: SMS is bit 4 of the capability mask.
PREFIX = (
    "{ allNumbers(first: 50, orderBy: E164_ASC, filter: {"
    'e164: {startsWith: "+6561"}, state: {equalTo: "AVAILABLE"}, '
    "capabilities: {in: [4, 5, 6, 7]}}) { nodes { e164 state capabilities sku } } }"
)
FLAGS = [
    "--schema",
    "public",
    "--append-plugins",
    "postgraphile-plugin-connection-filter",
    "--disable-graphiql",
    "--disable-query-log",
    "--dynamic-json",
    "--no-setof-functions-contain-nulls",
    "--no-ignore-rbac",
    "--legacy-relations",
    "omit",
]


def install() -> str:
    """Install PostGraphile for the bench if it is not there; why not, if it cannot be."""
    if BINARY.exists():
        return "installed"
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        return "not run: no Node.js/npm on this machine"
    try:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except subprocess.TimeoutExpired:
        return "not run: npm ci took over 10 minutes"
    if done.returncode != 0:
        return f"not run: npm ci failed: {done.stderr.strip()[-300:]}"
    return "installed"


def connection(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as libpq's (what PostGraphile takes)."""
    parsed = sa.make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def command(url: str) -> list[str]:
    """The server's command line, but for `--port`."""
    return [str(BINARY), "--connection", connection(url), "--host", "127.0.0.1", *FLAGS]


def wait_until_up(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """PostGraphile has no health route: until it answers a trivial query."""
    deadline = time.monotonic() + 60
    body = json.dumps({"query": "{ __typename }"})
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("POST", "/graphql", body, {"content-type": "application/json"})
            if conn.getresponse().status == 200:
                conn.close()
                return
        time.sleep(0.1)
    raise RuntimeError(f"PostGraphile did not start:\n{log.read_text(errors='replace')}")


def rows_of(answer: dict[str, Any]) -> list[str]:
    """The e164 of each row of PostGraphile's answer."""
    return [node["e164"] for node in answer["data"]["allNumbers"]["nodes"]]


def environment() -> dict[str, str]:
    """Node in production mode, as PostGraphile's deployment guide runs it."""
    return os.environ | {"NODE_ENV": "production"}
