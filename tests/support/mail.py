"""A real SMTP server for the notice and job tests, and the mails it received."""

import asyncio
import email
import email.policy
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.processes import free_port


class Inbox:
    """aiosmtpd's handler: keeps the messages it accepts; replies can be scripted.

    `replies` holds the answers to the next DATA commands ("451 …", "550 …"); when it
    is empty, messages are accepted. While `hold` is set, DATA waits until it is cleared
    (and `held` tells the test a message is waiting).
    """

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.replies: deque[str] = deque()
        self.hold = threading.Event()
        self.held = threading.Event()
        self._release = threading.Event()
        self._lock = threading.Lock()

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        if self.hold.is_set():
            self.held.set()
            await asyncio.to_thread(self._release.wait)
            return "451 held back by the test"
        with self._lock:
            if self.replies:
                return self.replies.popleft()
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            self.messages.append(message)
        return "250 OK"

    def release(self) -> None:
        self._release.set()

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if address in m["To"]]

    def ids(self) -> list[str]:
        with self._lock:
            return [str(m["Message-ID"]) for m in self.messages]


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        inbox.release()
        controller.stop()


def plain_text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert isinstance(body, EmailMessage)
    return str(body.get_content())


def html_text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("html",))
    assert isinstance(body, EmailMessage)
    return str(body.get_content())
