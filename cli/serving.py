"""`numbra serve --workers N` on Linux: each worker listens on a socket of its own.

uvicorn's supervisor binds one socket and hands it to every worker: they share one
queue of new connections, and the worker that wakes first takes every connection
waiting there (asyncio accepts them all at once). A client that opens its pool of
keep-alive connections together (a partner integration, a load balancer) can land on
one worker while the others idle; the bench's 8 connections did: 2 workers answered
what one did. Here each worker binds its own socket with SO_REUSEPORT, and Linux
spreads new connections over the sockets by a hash of their addresses. A worker that
dies takes its socket with it; its replacement binds a new one.

Elsewhere (SO_REUSEPORT does not spread connections on macOS or the BSDs) uvicorn's
own shared socket is kept.
"""

import socket
import sys

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import multiprocess


def spreads_connections() -> bool:
    return sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def run_workers(config: uvicorn.Config) -> None:
    """Run config.workers workers, each listening on its own socket, under uvicorn's
    supervisor (its restarts, health checks and signals)."""
    # The supervisor makes its workers in five places, all of the class its module names;
    # the supervisor is all this process runs until it returns.
    shared_socket_process = multiprocess.Process
    multiprocess.Process = _OwnSocketProcess  # type: ignore[misc]
    try:
        multiprocess.Multiprocess(config, sockets=[]).run()
    finally:
        multiprocess.Process = shared_socket_process  # type: ignore[misc]


class _OwnSocketServer(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        config = self.config
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((config.host, config.port))
        except OSError as error:
            # Bad on every restart too: the supervisor stops on this exit code.
            uvicorn.config.logger.error(error)
            sys.exit(STARTUP_FAILURE)
        await super().startup([sock])


class _OwnSocketProcess(multiprocess.Process):
    """A worker (made in the supervisor, run in the child) serving by _OwnSocketServer."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = _OwnSocketServer(config=self.config)
        return self._server
