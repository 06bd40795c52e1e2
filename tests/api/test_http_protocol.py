"""web/http_protocol.py against the uvicorn it was written for.

The protocol subclasses uvicorn's private httptools protocol: it overrides its hooks,
uses its `loop` and `transport`, and relies on a parser callback's exception being
answered through `send_400_response`. A uvicorn release that changes any of that fails
this test by name; tests/test_abuse.py shows the same bounds through `numbra serve`.
"""

import asyncio
import inspect

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

import web.http_protocol
from settings import Settings
from web.http_protocol import GuardedHttpToolsProtocol

WRITTEN_AGAINST = "uvicorn 0.54"
# The base class's methods the protocol overrides, with the parameters it passes on.
OVERRIDDEN = {
    "connection_made": ["self", "transport"],
    "connection_lost": ["self", "exc"],
    "data_received": ["self", "data"],
    "send_400_response": ["self", "msg"],
    "on_message_begin": ["self"],
    "on_url": ["self", "url"],
    "on_header": ["self", "name", "value"],
    "on_headers_complete": ["self"],
}
HEADER_TIMEOUT_SECONDS = 0.3
MAX_HEADER_BYTES = 1024


def broken(what: str) -> str:
    return (
        f"web/http_protocol.py was written against {WRITTEN_AGAINST}; "
        f"uvicorn {uvicorn.__version__} {what}"
    )


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


async def status_line(port: int, sent: bytes) -> str:
    """The first line of the server's answer to `sent`, once it has closed the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(sent)
    try:
        answer = await asyncio.wait_for(reader.read(), timeout=10 * HEADER_TIMEOUT_SECONDS)
    finally:
        writer.close()
    return answer.split(b"\r\n", 1)[0].decode()


async def test_uvicorn_still_runs_the_guarded_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, parameters in OVERRIDDEN.items():
        hook = getattr(HttpToolsProtocol, name, None)
        assert hook is not None, broken(f"has no HttpToolsProtocol.{name}")
        signature = inspect.signature(hook)
        assert list(signature.parameters) == parameters, broken(
            f"changed HttpToolsProtocol.{name}{signature}"
        )

    bounds = Settings(
        _env_file=None,
        header_timeout_seconds=HEADER_TIMEOUT_SECONDS,
        max_header_bytes=MAX_HEADER_BYTES,
    )
    monkeypatch.setattr(web.http_protocol, "get_settings", lambda: bounds)
    config = uvicorn.Config(
        hello, port=0, http=GuardedHttpToolsProtocol, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done(), broken("did not start a server with the protocol")
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        head = b"GET / HTTP/1.1\r\nHost: numbra\r\n"
        answers = {
            "served": await status_line(port, head + b"Connection: close\r\n\r\n"),
            "silent": await status_line(port, b""),
            "huge": await status_line(
                port, head + b"X-Huge: " + b"a" * 2 * MAX_HEADER_BYTES + b"\r\n\r\n"
            ),
        }
    finally:
        server.should_exit = True
        await serving

    assert answers == {
        "served": "HTTP/1.1 200 OK",
        "silent": "HTTP/1.1 408 Request Timeout",
        "huge": "HTTP/1.1 431 Request Header Fields Too Large",
    }, broken(f"answered {answers}")
