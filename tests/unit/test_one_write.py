"""uvicorn sends a response's head with its body in one write, and the bytes do not change.

The cycle is uvicorn's own (httptools), on a transport that records its writes; each case runs
once through uvicorn's original `send` and once through the joined one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from uvicorn.protocols.http.flow_control import FlowControl

from serving.server_stack import Cycle, use_one_write

assert use_one_write(), (
    "this uvicorn's RequestResponseCycle is not the one serving/server_stack.py expects"
)
JOINED = Cycle.send
ORIGINAL = JOINED.__wrapped__  # type: ignore[attr-defined]
LENGTH = [(b"content-type", b"application/json"), (b"content-length", b"7")]
START = {"type": "http.response.start", "status": 200, "headers": LENGTH}
BODY = {"type": "http.response.body", "body": b'{"a":1}'}


class Recorder:
    """A transport that keeps every write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


Messages = list[dict[str, Any]]


def _run(
    send: Callable[..., Any],
    messages: Messages,
    keep_alive: bool = True,
    into: Recorder | None = None,
) -> tuple[Recorder, Cycle]:
    transport = into or Recorder()

    async def respond() -> Cycle:
        cycle = Cycle(
            scope={"type": "http", "method": "GET"},  # type: ignore[typeddict-item]
            transport=transport,  # type: ignore[arg-type]
            flow=FlowControl(transport),  # type: ignore[arg-type]
            logger=logging.getLogger("test"),
            access_logger=logging.getLogger("test.access"),
            access_log=False,
            default_headers=[],
            message_event=asyncio.Event(),
            expect_100_continue=False,
            keep_alive=keep_alive,
            on_response=lambda: None,
        )
        for message in messages:
            await send(cycle, message)
        return cycle

    return transport, asyncio.run(respond())


def test_head_and_body_go_out_in_one_write() -> None:
    """It writes once, the same bytes uvicorn writes twice."""
    joined, cycle = _run(JOINED, [START, BODY])
    original, _ = _run(ORIGINAL, [START, BODY])
    assert len(original.writes) == 2
    assert joined.writes == [b"".join(original.writes)]
    assert cycle.transport is joined  # type: ignore[comparison-overlap]  # its own, back
    assert cycle.response_complete


def test_streamed_body_keeps_its_bytes() -> None:
    """A chunked response joins the head to its first chunk only; later chunks are their own."""
    chunked = {"type": "http.response.start", "status": 200, "headers": []}
    chunks: Messages = [
        {"type": "http.response.body", "body": b"one", "more_body": True},
        {"type": "http.response.body", "body": b"two", "more_body": True},
        {"type": "http.response.body", "body": b""},
    ]
    joined, _ = _run(JOINED, [chunked, *chunks])
    original, _ = _run(ORIGINAL, [chunked, *chunks])
    assert len(joined.writes) == len(original.writes) - 1
    assert b"".join(joined.writes) == b"".join(original.writes)


def test_closing_response_still_closes() -> None:
    """Without keep-alive, the connection is closed after the one write."""
    joined, _ = _run(JOINED, [START, BODY], keep_alive=False)
    assert len(joined.writes) == 1
    assert joined.writes[0].endswith(b'\r\n\r\n{"a":1}')
    assert joined.closed


def test_a_broken_response_writes_no_head() -> None:
    """A body longer than declared fails as in uvicorn, and the cycle gets its transport back."""
    too_long = {"type": "http.response.body", "body": b"12345678"}
    transport = Recorder()
    with pytest.raises(RuntimeError, match="longer than Content-Length"):
        _run(JOINED, [START, too_long], into=transport)
    assert transport.writes == []


def test_applying_twice_wraps_once() -> None:
    """Importing the service again does not stack the wrapper."""
    assert use_one_write()
    assert Cycle.send is JOINED
