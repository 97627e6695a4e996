"""The server stack under the service (uvicorn, BentoML's middlewares), made cheaper per request
without changing what it does. `trim_server_stack` puts all of it in place; py-spy (`--native`, 8
connections) showed each cost, and docs/performance.md has what each change bought.

- One socket write per response. uvicorn (httptools) writes the status line and headers the moment
  the app sends `http.response.start`, and the body in a second write: two syscalls, two TCP
  segments and two wake-ups of the client per response. The head is now held until the first body
  write and sent with it (`use_one_write`): the same bytes on the wire.
- BentoML's request metrics with their label sets bound once. Its RunnerTrafficMetricsMiddleware
  looks up four labelled children per request (`.labels(...)`: a lock, the values turned into
  strings, a dict lookup). `BoundTrafficMetrics` makes the same updates to the same series on
  children bound on first use; websockets, /metrics and paths past `MAX_ENDPOINTS` (where bound
  children would be a leak) take BentoML's own way.
- No `getpid` per metric update. prometheus_client's multiprocess mode calls `os.getpid()` on every
  update to notice a fork (seven a request). `cache_pid` gives its value class a pid read once, and
  read again in a forked child. Swapping the value class instead would map the same files twice.
- Untraced routes skip OpenTelemetry at once. Its ASGI middleware rebuilds the full URL and runs the
  exclusion regex before it lets an excluded request (/predict) through; `SkipUntraced` lets an
  exact match of a plain excluded path through first, which that regex would have excluded anyway.

Each reaches into a library's internals (uvicorn's `RequestResponseCycle.send` and `transport`,
BentoML's middleware module attribute and metric names, prometheus_client's `process_identifier`
closure, OpenTelemetry's module attribute), so each checks what it relies on and, if that is gone,
leaves the library as it is and logs a warning; tests/unit/test_one_write.py,
test_request_metrics.py and test_tracing.py fail on a version that no longer works this way.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from timeit import default_timer
from typing import Any

from bentoml._internal.context import server_context
from bentoml._internal.server.http import instruments
from opentelemetry.instrumentation import asgi
from uvicorn.protocols.http import httptools_impl

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Cycle = httptools_impl.RequestResponseCycle
Upstream = instruments.RunnerTrafficMetricsMiddleware
MAX_ENDPOINTS = 64  # distinct paths with bound children; the rest take BentoML's own way
METRICS = (
    "metrics_request_in_progress",
    "metrics_last_request_timestamp",
    "metrics_request_total",
    "metrics_request_duration",
)
PLAIN_PATH = re.compile(r"/[A-Za-z0-9/_-]*")  # a regex that matches only itself
logger = logging.getLogger(__name__)


def trim_server_stack(untraced: Iterable[str]) -> None:
    """Put every change above in place; `untraced` is the service's `tracing.excluded_urls`."""
    use_one_write()
    use_bound_metrics()
    skip_untraced(untraced)


# --- one socket write per response ---------------------------------------------------------


class _HeldHead:
    """The connection's transport while a response's head waits for its body.

    Writes are held until `joining` is set (the first body message); that message's write then
    carries the head in front of it. Everything else (close, is_closing) is the transport's.
    """

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.head: list[bytes] = []
        self.joining = False

    def write(self, data: bytes) -> None:
        if not self.joining:
            self.head.append(data)
            return
        self.joining = False
        self.transport.write(b"".join([*self.head, data]))
        self.head.clear()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def _joined(upstream: Callable[[Cycle, Message], Awaitable[None]]) -> Any:
    async def send(cycle: Cycle, message: Message) -> None:
        held = cycle.transport
        if isinstance(held, _HeldHead):  # the body, or whatever follows the head
            held.joining = True
            try:
                await upstream(cycle, message)
            finally:  # the head went out with this write, or the response is void anyway
                cycle.transport = held.transport
            return
        if message["type"] == "http.response.start" and not cycle.response_started:
            cycle.transport = _HeldHead(held)  # type: ignore[assignment]
        await upstream(cycle, message)

    send.__wrapped__ = upstream  # type: ignore[attr-defined]
    return send


def use_one_write() -> bool:
    """Make uvicorn's httptools protocol send each response's head with its body; False (and a
    warning) if this uvicorn's cycle is not the one this was written against."""
    upstream = getattr(Cycle, "send", None)
    if getattr(upstream, "__wrapped__", None) is not None:
        return True  # already in place (the module was imported again)
    parameters = inspect.signature(Cycle.__init__).parameters
    if upstream is None or "transport" not in parameters:
        logger.warning("uvicorn's RequestResponseCycle changed: responses keep two writes")
        return False
    Cycle.send = _joined(upstream)  # type: ignore[method-assign]
    return True


# --- BentoML's request metrics, bound once; no getpid per update -------------------------


class BoundTrafficMetrics(Upstream):
    """BentoML's RunnerTrafficMetricsMiddleware with its labelled children bound once."""

    def __init__(self, app: Any, **options: Any) -> None:
        super().__init__(app, **options)
        self._usable: bool | None = None  # known after BentoML's own set-up
        self._in_progress: dict[str, Any] = {}
        self._served: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._last_request: Any = None
        self._service: dict[str, Any] = {}
        self._skipped: tuple[str, ...] = ()

    def _bind(self) -> bool:
        """BentoML's metrics, created by its own set-up; False if they are not all there."""
        if not self._is_setup:
            self._setup()
        if not all(hasattr(self, name) for name in METRICS):
            logger.warning("BentoML's request metrics changed: using its middleware as it is")
            return False
        self._service = {
            "service_name": server_context.bento_name,
            "service_version": server_context.bento_version,
            "runner_name": server_context.service_name,
        }
        self._last_request = self.metrics_last_request_timestamp.labels(**self._service)
        self._skipped = tuple(self.skip_paths)
        cache_pid(type(self._last_request._value))
        return True

    def _served_children(self, endpoint: str, status: int) -> tuple[Any, Any]:
        children = self._served.get((endpoint, status))
        if children is None:
            labels = {"endpoint": endpoint, "http_response_code": status, **self._service}
            children = (
                self.metrics_request_total.labels(**labels),
                self.metrics_request_duration.labels(**labels),
            )
            self._served[endpoint, status] = children
        return children

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._usable is None and scope["type"] == "http":
            self._usable = self._bind()
        endpoint = scope.get("path", "")
        if not self._usable or scope["type"] != "http" or endpoint == "/metrics":
            await super().__call__(scope, receive, send)
            return
        in_progress = self._in_progress.get(endpoint)
        if in_progress is None:
            if len(self._in_progress) >= MAX_ENDPOINTS:
                await super().__call__(scope, receive, send)
                return
            in_progress = self.metrics_request_in_progress.labels(
                endpoint=endpoint, **self._service
            )
            self._in_progress[endpoint] = in_progress
        if not endpoint.startswith(self._skipped):
            self._last_request.set(time.time())
        started = default_timer()
        status = 0

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                total, duration = self._served_children(endpoint, status)
                total.inc()
                duration.observe(max(default_timer() - started, 0))
            await send(message)

        in_progress.inc()
        try:
            await self.app(scope, receive, counted)
        finally:
            in_progress.dec()


def _known_pid() -> Callable[[], int]:
    """`os.getpid` without the system call: the pid is read again in a forked child."""
    pid = os.getpid()

    def refresh() -> None:
        nonlocal pid
        pid = os.getpid()

    os.register_at_fork(after_in_child=refresh)

    def known() -> int:
        return pid

    return known


def cache_pid(value_class: type) -> bool:
    """Give prometheus_client's multiprocess value class a cached pid; False if it has none to
    replace (not multiprocess mode, or a prometheus_client that no longer works this way)."""
    check = getattr(value_class, "_MmapedValue__check_for_pid_change", None)
    if check is None:
        return False
    names = check.__code__.co_freevars
    if "process_identifier" not in names:
        logger.warning("prometheus_client changed: metric updates still call os.getpid")
        return False
    cell = check.__closure__[names.index("process_identifier")]
    if cell.cell_contents is os.getpid:
        cell.cell_contents = _known_pid()
    return True


def use_bound_metrics() -> None:
    """Make BentoML build its request metrics middleware from `BoundTrafficMetrics`."""
    instruments.RunnerTrafficMetricsMiddleware = BoundTrafficMetrics  # type: ignore[misc,assignment]


# --- untraced routes skip OpenTelemetry -----------------------------------------------------


class SkipUntraced(asgi.OpenTelemetryMiddleware):
    """OpenTelemetry's ASGI middleware, skipped at once for the paths in `untraced`."""

    untraced: frozenset[str] = frozenset()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("path") in self.untraced:
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def skip_untraced(excluded_urls: Iterable[str]) -> None:
    """Skip tracing at once for the excluded URLs that are plain paths (exactly those).

    Give it the list given to BentoML as `tracing.excluded_urls`: a plain path is a regex that
    OpenTelemetry finds in any URL with that path, so skipping it early changes no decision."""
    SkipUntraced.untraced = frozenset(u for u in excluded_urls if PLAIN_PATH.fullmatch(u))
    asgi.OpenTelemetryMiddleware = SkipUntraced  # type: ignore[misc]
