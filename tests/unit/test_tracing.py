"""Untraced paths skip OpenTelemetry's middleware at once; every other path still goes through it,
and only plain paths (regexes that match just themselves) are skipped early."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from _bentoml_impl.server.app import ServiceAppFactory  # type: ignore[import-untyped]
from opentelemetry.instrumentation import asgi

from serving.server_stack import SkipUntraced, skip_untraced


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _urls_built(path: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """How often OpenTelemetry rebuilt the URL for one request to `path`."""
    built = 0
    original: Any = asgi.get_host_port_url_tuple

    def counted(scope: Any) -> Any:
        nonlocal built
        built += 1
        return original(scope)

    monkeypatch.setattr(asgi, "get_host_port_url_tuple", counted)
    middleware = SkipUntraced(_app, excluded_urls="/predict")
    scope = {"type": "http", "path": path, "method": "POST", "headers": [], "query_string": b""}
    scope |= {"scheme": "http", "server": ("127.0.0.1", 3000), "http_version": "1.1"}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        pass

    asyncio.run(middleware(scope, receive, send))
    return built


def test_an_untraced_path_skips_opentelemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    skip_untraced(["/predict"])
    assert _urls_built("/predict", monkeypatch) == 0


def test_other_paths_go_through_opentelemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    skip_untraced(["/predict"])
    assert _urls_built("/metadata", monkeypatch) >= 1
    assert _urls_built("/predict/more", monkeypatch) == 1  # OpenTelemetry's regex decides


def test_only_plain_paths_are_skipped_early() -> None:
    skip_untraced(["/predict", "/docs.*", "health", "/a+b"])
    assert SkipUntraced.untraced == {"/predict"}


def test_bentoml_builds_its_tracing_middleware_from_the_module() -> None:
    """BentoML imports OpenTelemetry's middleware by name when it builds the app."""
    skip_untraced([])
    source = inspect.getsource(ServiceAppFactory.middlewares.fget)
    assert "from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware" in source
    assert asgi.OpenTelemetryMiddleware is SkipUntraced
