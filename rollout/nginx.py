"""nginx in front of the model servers: render its config, start it, reload it, stop it.

Two nginx masters. The *front* one holds the clients' connections on the public port and is
never reloaded; it only relays to the *back* one over loopback. The back one splits traffic by
upstream weights and is reloaded for every change (weights, servers, mirror). A reload closes
idle keep-alive connections, so with one nginx a client that reuses its connection loses the
request it sends just then; with two, only the front's connections to the back are closed, and
nginx retries a request that failed on a cached upstream connection on a fresh one. A request
that fails on one model server (refused connection, 5xx) is retried once on the other, so a
dying canary costs clients nothing. Every request is logged by the back as one JSON line with
each upstream attempt's address, status and time, and the request body, which the canary
analysis reads (rollout/analysis.py).

Shadow traffic goes through a *sink*: the back mirrors each request to a listener of its own that
answers at once and relays the copy to the shadow server. nginx keeps a client's connection until
its mirror subrequests end, so mirroring straight to a hung shadow would stall the client's next
request; the sink ends them at once, whatever the shadow does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from model.atomic import write_text_atomically
from rollout.ports import free_port

LOG_FORMAT = (
    "log_format rollout escape=json '{"
    '"msec":$msec,"status":$status,"uri":"$uri",'
    '"upstream":"$upstream_addr","upstream_status":"$upstream_status",'
    '"upstream_time":"$upstream_response_time","request_time":$request_time,'
    '"source":"$http_x_traffic_source",'
    '"body":"$request_body"'
    "}';"
)
SHADOW_CONNECTIONS = 256  # mirror copies in flight to the shadow; beyond, copies are dropped
SHADOW_TIMEOUT_S = 5  # a copy the shadow has not answered by then is dropped


@dataclass(frozen=True)
class Routing:
    """Where traffic goes: `weights` maps a loopback port to its share (any positive numbers)."""

    weights: dict[int, int]
    shadow_port: int | None = None  # gets a mirrored copy of every request; answers are dropped


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(path).exists()), None
    )
    if found is None:
        raise FileNotFoundError(
            "nginx is not installed: `sudo apt-get install nginx-light` (Debian/Ubuntu) or "
            "`brew install nginx`; `make rollout` installs it where it can"
        )
    return found


def _preamble(prefix: Path) -> str:
    user = "user root root;\n" if os.geteuid() == 0 else ""
    return f"""# Rendered by rollout/nginx.py: edit params.yaml (rollout), not this file.
{user}worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{
    worker_connections 4096;
}}"""


def _temp_paths(prefix: Path) -> str:
    return "\n".join(
        f"    {kind}_temp_path {prefix / folder};"
        for kind, folder in (
            ("client_body", "client_body"),
            ("proxy", "proxy"),
            ("fastcgi", "fastcgi"),
            ("uwsgi", "uwsgi"),
            ("scgi", "scgi"),
        )
    )


def render_front(prefix: Path, listen_port: int, back_port: int) -> str:
    """The never-reloaded listener: clients' connections, relayed to the back nginx."""
    return f"""{_preamble(prefix)}
http {{
    access_log off;
{_temp_paths(prefix)}
    upstream back {{
        server 127.0.0.1:{back_port} max_fails=0;
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{listen_port};
        keepalive_timeout 75s;
        client_max_body_size 1m;
        client_body_buffer_size 1m;
        location / {{
            proxy_pass http://back;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # a cached connection the back closed on reload: nginx tries again on a fresh one
            proxy_next_upstream error timeout non_idempotent;
            proxy_connect_timeout 2s;
            proxy_read_timeout 60s;
        }}
    }}
}}
"""


def _shadow_blocks(prefix: Path, shadow_port: int, sink_port: int | None) -> tuple[str, str, str]:
    """(mirror directives, the /__shadow location, the sink's upstream and server)."""
    if sink_port is None:
        raise ValueError("a shadow needs a sink port")
    mirror = "            mirror /__shadow;\n            mirror_request_body on;\n"
    shadow = """
        location = /__shadow {
            internal;
            proxy_pass http://sink$request_uri;
            proxy_set_header Connection close;
            proxy_connect_timeout 1s;
            proxy_read_timeout 2s;
        }"""
    # Answers the mirror at once (the static handler refuses a POST with 405 straight
    # away), after handing the copy to the shadow: clients never wait for the shadow.
    sink = f"""
    upstream sink {{
        server 127.0.0.1:{sink_port} max_conns={SHADOW_CONNECTIONS};
    }}
    server {{
        listen 127.0.0.1:{sink_port};
        root {prefix / "sink"};
        location / {{
            mirror /__to_shadow;
            mirror_request_body on;
            log_not_found off;
        }}
        location = /__to_shadow {{
            internal;
            proxy_pass http://127.0.0.1:{shadow_port}$request_uri;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Traffic-Source shadow;
            proxy_connect_timeout 1s;
            proxy_read_timeout {SHADOW_TIMEOUT_S}s;
            proxy_send_timeout {SHADOW_TIMEOUT_S}s;
            access_log {prefix / "shadow.log"} rollout;
            log_subrequest on;  # mirror requests are subrequests: log them for the comparison
        }}
    }}"""
    return mirror, shadow, sink


def render_config(
    prefix: Path, listen_port: int, routing: Routing, sink_port: int | None = None
) -> str:
    """The back nginx: weighted upstreams on `listen_port` (loopback, behind the front)."""
    servers = "\n".join(
        f"        server 127.0.0.1:{port} weight={weight} max_fails=1 fail_timeout=2s;"
        for port, weight in sorted(routing.weights.items())
        if weight > 0
    )
    if not servers:
        raise ValueError("routing sends traffic nowhere: give one server a positive weight")
    mirror = shadow = sink = ""
    if routing.shadow_port is not None:
        mirror, shadow, sink = _shadow_blocks(prefix, routing.shadow_port, sink_port)
    return f"""{_preamble(prefix)}
http {{
    {LOG_FORMAT}
    access_log off;
{_temp_paths(prefix)}
    upstream model {{
{servers}
        keepalive 64;
    }}{sink}
    server {{
        listen 127.0.0.1:{listen_port};
        client_max_body_size 1m;
        client_body_buffer_size 1m;  # bodies stay in memory, so the log can carry them
        location / {{
{mirror}            proxy_pass http://model;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout http_500 http_502 http_503 http_504 non_idempotent;
            proxy_next_upstream_tries 2;
            proxy_connect_timeout 1s;
            proxy_read_timeout 10s;
            access_log {prefix / "access.log"} rollout;
        }}{shadow}
    }}
}}
"""


class _Master:
    """One nginx master process: a config file and a pid file under `prefix`."""

    def __init__(self, prefix: Path) -> None:
        self.prefix = prefix
        self.config = prefix / "nginx.conf"

    def _command(self, *extra: str) -> list[str]:
        return [nginx_binary(), "-p", str(self.prefix), "-c", str(self.config), *extra]

    def write(self, text: str) -> None:
        self.prefix.mkdir(parents=True, exist_ok=True)
        write_text_atomically(self.config, text)
        check = subprocess.run(self._command("-t", "-q"), capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx rejected {self.config}:\n{check.stderr}")

    def pid(self) -> int | None:
        try:
            return int((self.prefix / "nginx.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def start_or_reload(self) -> None:
        if self.running():
            subprocess.run(self._command("-s", "reload"), check=True, capture_output=True)
            time.sleep(0.3)  # new workers take over; old ones finish in-flight requests
            return
        subprocess.run(self._command(), check=True, capture_output=True)
        deadline = time.monotonic() + 5
        while not self.running() and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        if self.running():
            subprocess.run(self._command("-s", "quit"), check=False, capture_output=True)
            deadline = time.monotonic() + 10
            while self.running() and time.monotonic() < deadline:
                time.sleep(0.1)


class Nginx:
    """The front and back nginx under `prefix`, configured from a `Routing`."""

    def __init__(self, prefix: Path, listen_port: int) -> None:
        self.prefix = prefix.resolve()
        self.listen_port = listen_port
        self.url = f"http://127.0.0.1:{listen_port}"
        self.back = _Master(self.prefix)
        self.front = _Master(self.prefix / "front")

    @property
    def config(self) -> Path:
        return self.back.config

    @property
    def access_log(self) -> Path:
        return self.prefix / "access.log"

    @property
    def shadow_log(self) -> Path:
        return self.prefix / "shadow.log"

    def _port(self, name: str) -> int:
        """A loopback port of the back's, chosen once and kept while nginx runs."""
        path = self.prefix / f"{name}.port"
        try:
            return int(path.read_text())
        except (OSError, ValueError):
            port = free_port()
            self.prefix.mkdir(parents=True, exist_ok=True)
            write_text_atomically(path, str(port))
            return port

    def write(self, routing: Routing) -> None:
        sink = self._port("sink") if routing.shadow_port is not None else None
        (self.prefix / "sink").mkdir(parents=True, exist_ok=True)
        self.back.write(render_config(self.prefix, self._port("back"), routing, sink))

    def running(self) -> bool:
        return self.front.running() and self.back.running()

    def pid(self) -> int | None:
        return self.front.pid()

    def apply(self, routing: Routing) -> None:
        """Start nginx with this routing, or reload the back gracefully if it runs already;
        the front, which holds the clients' connections, is never reloaded."""
        self.write(routing)
        try:
            self.back.start_or_reload()
        except subprocess.CalledProcessError as error:
            if b"in use" not in (error.stderr or b"") or self.back.running():
                raise
            # a back port taken between choosing and binding: choose again, once
            for name in ("back", "sink"):
                (self.prefix / f"{name}.port").unlink(missing_ok=True)
            self.write(routing)
            self.back.start_or_reload()
        if not self.front.running():
            self.front.write(render_front(self.front.prefix, self.listen_port, self._port("back")))
            self.front.start_or_reload()

    def stop(self) -> None:
        """The front first (it finishes in-flight requests), then the back."""
        self.front.stop()
        self.back.stop()
        for name in ("back", "sink"):
            (self.prefix / f"{name}.port").unlink(missing_ok=True)
