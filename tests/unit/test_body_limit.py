"""Bodies over the limit get a 413 before anything parses them, declared or streamed."""

from collections.abc import Iterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from serving.limits import BodySizeLimit


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
