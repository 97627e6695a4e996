"""The proxy itself, with real nginx in front of tiny loopback servers (seconds, not minutes).

Clients that keep their connection open are counted from their own side: a weight change (a
reload of the back nginx) must cost them nothing, and a hung shadow must not slow them down.
"""

from __future__ import annotations

import http.client
import http.server
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import requests

from rollout.nginx import Nginx, Routing, nginx_binary
from rollout.ports import free_port

pytestmark = pytest.mark.slow
BODY = b'{"rows": []}'
HEADERS = {"content-type": "application/json"}
HUNG: set[int] = set()  # ports whose server never answers in time


class _Answer(http.server.BaseHTTPRequestHandler):
    """Answers every POST with its own port, after 30 s when the port is in HUNG."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        port = int(self.server.server_address[1])  # type: ignore[index]
        if port in HUNG:
            time.sleep(30)
        body = str(port).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        return None


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


@pytest.fixture
def backends() -> Iterator[list[int]]:
    servers = [_Server(("127.0.0.1", 0), _Answer) for _ in range(3)]  # bound: no port race
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield [server.server_address[1] for server in servers]
    for server in servers:
        server.shutdown()
        server.server_close()
    HUNG.clear()


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Nginx]:
    try:
        nginx_binary()
    except FileNotFoundError as error:
        pytest.skip(str(error))
    proxy = Nginx(tmp_path / "nginx", free_port())
    yield proxy
    proxy.stop()


def _http_client(url: str, body: bytes) -> Callable[[], int]:
    """Python's http.client on one connection, reused: no retry of its own on a closed one."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=20)

    def send() -> int:
        connection.request("POST", "/predict", body=body, headers=HEADERS)
        response = connection.getresponse()
        response.read()
        return response.status

    return send


def _requests_session(url: str, body: bytes) -> Callable[[], int]:
    session = requests.Session()
    return lambda: (
        session.post(f"{url}/predict", data=body, headers=HEADERS, timeout=20).status_code
    )


def _httpx_client(url: str, body: bytes) -> Callable[[], int]:
    client = httpx.Client(timeout=20)
    return lambda: client.post(f"{url}/predict", content=body, headers=HEADERS).status_code


class _Clients:
    """Keep-alive clients of every kind sending steadily until stopped; errors as they saw them."""

    def __init__(self, url: str, body: bytes = BODY) -> None:
        self.url = url
        self.body = body
        self.errors: list[str] = []
        self.answered = 0
        self.slowest_s = 0.0
        self._stop = threading.Event()
        makers = [_http_client, _http_client, _requests_session, _httpx_client]
        self._threads = [threading.Thread(target=self._run, args=(make,)) for make in makers]

    def _run(self, make: Callable[[str, bytes], Callable[[], int]]) -> None:
        send = make(self.url, self.body)
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                status = send()
            except Exception as error:  # what the client saw, counted
                self.errors.append(f"{type(error).__name__}: {error}")
                send = make(self.url, self.body)
            else:
                self.answered += 1
                if status != 200:
                    self.errors.append(f"HTTP {status}")
            self.slowest_s = max(self.slowest_s, time.monotonic() - started)
            time.sleep(0.05)

    def wait_for_answers(self, count: int, timeout_s: float = 30) -> None:
        """Until `count` more requests were answered: traffic flowed, however loaded the box."""
        target = self.answered + count
        deadline = time.monotonic() + timeout_s
        while self.answered < target:
            assert time.monotonic() < deadline, f"{count} answers not within {timeout_s:g} s"
            time.sleep(0.05)

    def __enter__(self) -> _Clients:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def test_weight_changes_lose_no_request_of_keep_alive_clients(
    nginx: Nginx, backends: list[int]
) -> None:
    stable, canary, _ = backends
    nginx.apply(Routing({stable: 1}))
    with _Clients(nginx.url) as clients:
        for weight in (10, 25, 50, 100, 0, 100):  # canary steps, then switch back and forth
            clients.wait_for_answers(8)
            nginx.apply(Routing({stable: 100 - weight, canary: weight} if weight else {stable: 1}))
        clients.wait_for_answers(8)
    assert clients.errors == []
    assert clients.answered > 40


def test_a_hung_shadow_neither_stalls_nor_fails_a_client(nginx: Nginx, backends: list[int]) -> None:
    stable, _, shadow = backends
    HUNG.add(shadow)
    nginx.apply(Routing({stable: 1}, shadow_port=shadow))
    with _Clients(nginx.url) as clients:
        clients.wait_for_answers(40)  # a few seconds of mirroring to the hung shadow
        nginx.apply(Routing({stable: 1}))  # ending shadow mode: serving goes on
        clients.wait_for_answers(8)
    assert clients.errors == []
    assert clients.slowest_s < 2.0, f"a client waited {clients.slowest_s:.1f} s"
    assert httpx.post(f"{nginx.url}/predict", content=BODY).text == str(stable)
