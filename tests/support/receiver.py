"""A real HTTP receiver for the webhook tests: an asyncio server on a free port that
keeps what it receives and answers as the test scripts it.

`answers` holds what to do with the next requests: an HTTP status, HANG (never answer)
or CLOSE (close the connection without answering); when it is empty, 200.
"""

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from tests.support.processes import free_port

HANG = "hang"
CLOSE = "close"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    port: int
    answers: deque[int | str] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Requests one after another on the connection (kept alive, as receivers do)."""
        try:
            while await self._one(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")[1:]
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines if line)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.received.append(Received(headers, body))
        self.arrived.set()
        answer = self.answers.popleft() if self.answers else 200
        if answer == HANG:
            await self.stopping.wait()
            return False
        if answer == CLOSE:
            return False
        writer.write(f"HTTP/1.1 {answer} X\r\ncontent-length: 0\r\n\r\n".encode())
        await writer.drain()
        return True

    def ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.received]


@contextlib.asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    target = Receiver(port)
    server = await asyncio.start_server(target.handle, "127.0.0.1", port, backlog=512)
    try:
        yield target
    finally:
        target.stopping.set()
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1)
