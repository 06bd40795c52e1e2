"""uvicorn's httptools protocol with bounds on the request head: slow and huge headers.

uvicorn waits for a request head as long as a client likes (a connection that sends
nothing, or a header a byte a minute, holds its socket forever) and reads header
lines of any size. This protocol gives each head `NUMBRA_HEADER_TIMEOUT_SECONDS`
from the connection's start or the request's first byte, and at most
`NUMBRA_MAX_HEADER_BYTES` of request line and headers; past either it answers 408
or 431 and closes. `numbra serve` names it to uvicorn by import path, so its worker
processes load it too.
"""

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from settings import get_settings


class _Refused(Exception):
    """Raised in a parser callback to stop parsing a head that was refused."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.header_timeout = settings.header_timeout_seconds
        self.max_header_bytes = settings.max_header_bytes
        self.head_bytes = 0
        self.head_deadline: asyncio.TimerHandle | None = None
        self.refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_arrived()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self.refused:
            super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        # A callback's _Refused reaches uvicorn as a parser error; the answer is sent.
        if not self.refused:
            super().send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_bytes = 0
        if self.head_deadline is None:
            self._await_head()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_arrived()
        super().on_headers_complete()

    def _await_head(self) -> None:
        self.head_deadline = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _head_arrived(self) -> None:
        if self.head_deadline is not None:
            self.head_deadline.cancel()
            self.head_deadline = None

    def _count(self, size: int) -> None:
        self.head_bytes += size
        if self.head_bytes > self.max_header_bytes:
            self._refuse(431, "Request Header Fields Too Large")
            raise _Refused

    def _head_too_slow(self) -> None:
        self.head_deadline = None
        self._refuse(408, "Request Timeout")

    def _refuse(self, status: int, reason: str) -> None:
        self._head_arrived()
        self.refused = True
        if self.transport.is_closing():
            return
        body = f"{reason}\n".encode()
        self.transport.write(
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        self.transport.close()
