"""Whether `numbra serve` may listen where it is asked to: checked before it creates anything."""

import errno
import socket

from cli.failures import Failure

HOW_TO_MOVE = "choose another with --port, NUMBRA_PORT or `make run PORT=…`"


def check_can_listen(host: str, port: int) -> None:
    """Raise a Failure saying why, if HOST:PORT cannot be listened on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            # As uvicorn does: a port left with closing connections (TIME_WAIT) is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            reason = (
                f"Port {port} on {host} is already in use: stop what holds it, or {HOW_TO_MOVE}."
            )
        elif error.errno == errno.EACCES:
            reason = f"Not allowed to listen on port {port} (below 1024 needs root): {HOW_TO_MOVE}."
        else:
            reason = f"Cannot listen on {host}:{port}: {error.strerror or error}."
        raise Failure(reason) from error
