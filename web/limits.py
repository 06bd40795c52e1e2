"""Limits on a request's body: its size, and how long it may take to arrive.

Both are enforced while the body is read, before anything has it whole: a body
over the size is refused with 413 without reading the rest, and one that has not
arrived in time with 408. uvicorn waits for a body for as long as the client keeps
the connection open, so without the time limit a client trickling a byte now and
then (slowloris) would hold a request, and its share of the server, for ever.
"""

import asyncio

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _Refused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, timeout_seconds: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._too_large()(scope, receive, send)
            return

        # From the end of the headers, which is when uvicorn calls the app.
        deadline = asyncio.get_running_loop().time() + self.timeout_seconds
        received = 0
        body_done = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                # Only a disconnect can come now, as late as it likes.
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise _Refused(self._too_slow()) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _Refused(self._too_large())
                body_done = not message.get("more_body", False)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _Refused as refused:
            if started:
                raise
            await refused.response(scope, receive, send)

    def _too_large(self) -> Response:
        return _refusal(413, f"request body over {self.max_bytes} bytes")

    def _too_slow(self) -> Response:
        # The rest of the body may still be on its way: the connection cannot serve
        # another request, so it is closed.
        return _refusal(
            408,
            f"request body not received within {self.timeout_seconds:g} s",
            headers={"Connection": "close"},
        )


def _refusal(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"errors": [{"message": message}]}, status_code=status, headers=headers)
