"""ASGI limits: bodies over a size limit get 413 before parsing; slow answers get 504.

A client that sends its whole body before reading the answer (Python's urllib, for one) sees a
connection reset, not the 413, if the server closes with the body unread: so the rest of the
body is read and dropped, up to `DRAIN_FACTOR` times the limit, before the 413 goes out with
`Connection: close`. A body bigger still is not worth reading: that client gets the reset.

`Deadline` takes the place of BentoML's own per-request timeout (`traffic.timeout`), which cost
the service its tail latency: see its docstring.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from bentoml._internal.server.http import traffic as bentoml_traffic

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
DRAIN_FACTOR = 16  # read and drop at most this many times the limit before answering 413


def _declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, when it sent a well-formed one."""
    declared = dict(scope.get("headers") or []).get(b"content-length")
    return int(declared) if declared is not None and declared.isdigit() else None


class _CountedBody:
    """A streamed body as the app sees it: counted as it arrives, cut off past the limit."""

    def __init__(self, receive: Receive, send: Send, max_bytes: int) -> None:
        self._receive = receive
        self._send = send
        self.max_bytes = max_bytes
        self.received = 0
        self.too_large = self.started = self.read = False

    async def receive(self) -> Message:
        if self.too_large:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.read = not message.get("more_body", False)
            self.received += len(message.get("body", b""))
            if self.received > self.max_bytes:
                self.too_large = True
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        """Whatever the app answers after the cut is dropped: the client gets the 413."""
        if not self.too_large:
            self.started = self.started or message["type"] == "http.response.start"
            await self._send(message)


class BodySizeLimit:
    """Checks Content-Length up front, and counts streamed (chunked) bodies as they arrive.

    A streamed body that crosses the limit looks like a client disconnect to the app behind;
    whatever the app then tries to answer is dropped and the client gets the 413.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            if declared <= DRAIN_FACTOR * self.max_bytes:
                await self._drain(receive, 0)
            await self._refuse(send)
            return
        body = _CountedBody(receive, send, self.max_bytes)
        try:
            await self.app(scope, body.receive, body.send)
        except Exception:
            if not body.too_large:
                raise
        if body.too_large and not body.started:
            if not body.read:
                await self._drain(receive, body.received)
            await self._refuse(send)

    async def _drain(self, receive: Receive, received: int) -> None:
        """Read and drop the rest of the body, up to the drain bound."""
        while received <= DRAIN_FACTOR * self.max_bytes:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                return
            received += len(message.get("body", b""))

    async def _refuse(self, send: Send) -> None:
        error = f"request body over the {self.max_bytes}-byte limit (serving.max_body_bytes)"
        await _answer(send, 413, error, [(b"connection", b"close")])


class Deadline:
    """504 for a request not answered within `timeout` seconds; the answer stops the clock.

    BentoML's TimeoutMiddleware runs every request in a task of its own and leaves its timer
    armed for the full timeout after the answer: at thousands of requests a second, tens of
    thousands of live timers and futures that the garbage collector's oldest generation walked
    again and again (the p99 of /predict was those pauses). `asyncio.timeout` disarms on exit.
    """

    def __init__(self, app: ASGIApp, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        answered = False
        try:
            async with asyncio.timeout(self.timeout) as deadline:

                async def answering(message: Message) -> None:
                    nonlocal answered
                    if not answered and message["type"] == "http.response.start":
                        answered = True
                        deadline.reschedule(None)
                    await send(message)

                await self.app(scope, receive, answering)
        except TimeoutError:
            if answered:  # not the deadline's doing: the clock had stopped
                raise
            await _answer(send, 504, f"not answered within {self.timeout:g} s (serving.timeout_s)")


def use_deadline() -> None:
    """Make BentoML build its per-request timeout (`traffic.timeout`) from `Deadline`.

    BentoML always installs its timeout (a positive one is required) and imports the class when
    it builds the app, so replacing it in its module is the one place to change it."""
    bentoml_traffic.TimeoutMiddleware = Deadline  # type: ignore[misc,assignment]


async def _answer(
    send: Send, status: int, error: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"error": error}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
