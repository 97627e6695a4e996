"""Bodies over the limit get a 413 before anything parses them, declared or streamed."""

import asyncio
from collections.abc import Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from serving.limits import DRAIN_FACTOR, BodySizeLimit


async def _echo_size(request: Request) -> JSONResponse:
    return JSONResponse({"bytes": len(await request.body())})


def _client(limit: int) -> TestClient:
    app = Starlette(routes=[Route("/", _echo_size, methods=["POST"])])
    return TestClient(BodySizeLimit(app, max_bytes=limit))


def test_small_body_passes() -> None:
    response = _client(100).post("/", content=b"x" * 100)
    assert response.status_code == 200
    assert response.json() == {"bytes": 100}


def test_declared_large_body_is_refused() -> None:
    response = _client(100).post("/", content=b"x" * 101)
    assert response.status_code == 413
    assert "100-byte limit" in response.json()["error"]


def test_streamed_large_body_is_refused() -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 50

    response = _client(100).post("/", content=chunks())
    assert response.status_code == 413


def _refused_after(limit: int, chunks: list[bytes], declared: int | None) -> tuple[int, list[Any]]:
    """How many chunks the limit read before answering, and what it sent."""
    read = 0
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}

    async def send(message: Any) -> None:
        sent.append(message)

    async def never(scope: Any, receive: Any, send: Any) -> None:
        while (await receive())["type"] == "http.request":
            pass

    headers = [] if declared is None else [(b"content-length", str(declared).encode())]
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    asyncio.run(BodySizeLimit(never, max_bytes=limit)(scope, receive, send))
    return read, sent


def test_a_declared_large_body_is_read_before_the_413_so_the_client_sees_it() -> None:
    """urllib sends the whole body before it reads: closing on it unread resets the connection."""
    read, sent = _refused_after(100, [b"x" * 100] * 5, declared=500)
    assert read == 5
    assert sent[0]["status"] == 413
    assert (b"connection", b"close") in sent[0]["headers"]


def test_a_streamed_large_body_is_read_to_its_end_before_the_413() -> None:
    read, sent = _refused_after(100, [b"x" * 60] * 5, declared=None)
    assert read == 5
    assert sent[0]["status"] == 413


def test_a_body_far_over_the_limit_is_not_read_at_all() -> None:
    read, sent = _refused_after(100, [b"x" * 100] * 5, declared=100 * (DRAIN_FACTOR + 1))
    assert read == 0
    assert sent[0]["status"] == 413
