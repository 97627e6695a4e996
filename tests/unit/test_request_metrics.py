"""The bound request metrics count exactly what BentoML's own middleware counts, and metric
updates no longer ask the kernel for the pid, in the process or in a fork of it.

Each middleware gets a registry of its own (prometheus_client, single-process) through the
metrics client BentoML's set-up takes; the same requests go through both."""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
from _bentoml_impl.server.app import ServiceAppFactory  # type: ignore[import-untyped]
from bentoml._internal.context import server_context
from prometheus_client import values

from serving import server_stack
from serving.server_stack import (
    BoundTrafficMetrics,
    Upstream,
    _known_pid,
    cache_pid,
    use_bound_metrics,
)

BUCKETS = (0.005, 0.1, 1.0, 10.0)
STATUS = {"/predict": 200, "/missing": 404, "/metrics": 200, "/readyz": 200}
REQUESTS = ["/predict", "/predict", "/missing", "/readyz", "/metrics", "/predict"]


async def _app(scope: Any, receive: Any, send: Any) -> None:
    """Answers each path's status; /predict streams its body in two parts."""
    await send({"type": "http.response.start", "status": STATUS[scope["path"]], "headers": []})
    if scope["path"] == "/predict":
        await send({"type": "http.response.body", "body": b"[", "more_body": True})
    await send({"type": "http.response.body", "body": b"]"})


def _client(registry: prometheus_client.CollectorRegistry) -> Any:
    kinds = ("Counter", "Gauge", "Histogram", "Summary")
    return type(
        "Client",
        (),
        {
            kind: staticmethod(
                functools.partial(getattr(prometheus_client, kind), registry=registry)
            )
            for kind in kinds
        },
    )


def _samples(middleware_class: type) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample after REQUESTS, but for times (the last request's, durations)."""
    registry = prometheus_client.CollectorRegistry()
    middleware = middleware_class(_app, namespace="bentoml_service", skip_paths=["/readyz"])
    middleware._setup(metrics_client=_client(registry), duration_buckets=BUCKETS)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        pass

    async def serve() -> None:
        for path in REQUESTS:
            await middleware({"type": "http", "path": path}, receive, send)

    asyncio.run(serve())
    if isinstance(middleware, BoundTrafficMetrics):  # its own way, not BentoML's, when it can
        assert middleware._usable
        assert len(middleware._in_progress) == min(3, server_stack.MAX_ENDPOINTS)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if not sample.name.endswith(("_sum", "_created", "timestamp_seconds"))
        and "_bucket" not in sample.name
    }


@pytest.fixture
def service_context(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_context, "bento_name", "classifier")
    monkeypatch.setattr(server_context, "service_routes", ["/predict"], raising=False)
    server_context.service_name = "classifier"


@pytest.mark.usefixtures("service_context")
def test_bound_metrics_count_what_bentoml_counts() -> None:
    """Request counts, durations counted and in-progress gauges match BentoML's, one by one."""
    bound, upstream = _samples(BoundTrafficMetrics), _samples(Upstream)
    assert bound == upstream
    ok = {("endpoint", "/predict"), ("http_response_code", "200")}
    predicted = [
        value
        for (name, labels), value in bound.items()
        if name.endswith("request_total") and ok <= set(labels)
    ]
    assert predicted == [3.0]


@pytest.mark.usefixtures("service_context")
def test_paths_past_the_bound_take_bentomls_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no room left for bound children, requests are still counted (by BentoML's code)."""
    monkeypatch.setattr("serving.server_stack.MAX_ENDPOINTS", 0)
    assert _samples(BoundTrafficMetrics) == _samples(Upstream)


def test_bentoml_builds_its_request_metrics_from_the_module() -> None:
    """BentoML still imports the middleware by name when it builds the app: replacing it works."""
    use_bound_metrics()
    source = inspect.getsource(ServiceAppFactory.middlewares.fget)
    assert "from bentoml._internal.server.http.instruments import" in source
    from bentoml._internal.server.http import instruments

    assert instruments.RunnerTrafficMetricsMiddleware is BoundTrafficMetrics


def test_updates_do_not_call_getpid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A multiprocess value with the cached pid counts right without calling os.getpid."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    value_class = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    assert cache_pid(value_class)
    value = value_class("counter", "hits", "hits_total", (), (), "hits")

    def no_getpid() -> int:
        raise AssertionError("os.getpid called on an update")

    monkeypatch.setattr(os, "getpid", no_getpid)
    value.inc(2)
    value.inc(1)
    monkeypatch.undo()
    assert value.get() == 3
    assert list(tmp_path.glob(f"counter_{os.getpid()}.db"))


def test_a_single_process_value_class_is_left_alone() -> None:
    assert not cache_pid(values.MutexValue)


def test_a_forked_child_knows_its_own_pid() -> None:
    known = _known_pid()
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        os.write(writer, b"1" if known() == os.getpid() else b"0")
        os._exit(0)
    os.close(writer)
    answer = os.read(reader, 1)
    os.waitpid(child, 0)
    assert answer == b"1"
    assert known() == os.getpid()
