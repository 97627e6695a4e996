"""nginx in front of the model servers: render its config, start it, reload it, stop it.

Traffic is split by upstream weights; a change of weights is a graceful reload (old workers
finish their requests), so no client request fails. A request that fails on one server (refused
connection, 5xx) is retried once on the other, so a dying canary costs clients nothing. Every
request is logged as one JSON line with each upstream attempt's address, status and time, and the
request body, which the canary analysis reads (serving/analysis.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from model.atomic import write_text_atomically

LOG_FORMAT = (
    "log_format rollout escape=json '{"
    '"msec":$msec,"status":$status,"uri":"$uri",'
    '"upstream":"$upstream_addr","upstream_status":"$upstream_status",'
    '"upstream_time":"$upstream_response_time","request_time":$request_time,'
    '"body":"$request_body"'
    "}';"
)


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


def render_config(prefix: Path, listen_port: int, routing: Routing) -> str:
    """A complete nginx.conf for one listener in front of the weighted model servers."""
    servers = "\n".join(
        f"        server 127.0.0.1:{port} weight={weight} max_fails=1 fail_timeout=2s;"
        for port, weight in sorted(routing.weights.items())
        if weight > 0
    )
    if not servers:
        raise ValueError("routing sends traffic nowhere: give one server a positive weight")
    shadow = ""
    mirror = ""
    if routing.shadow_port is not None:
        mirror = "            mirror /__shadow;\n            mirror_request_body on;\n"
        shadow = f"""
        location = /__shadow {{
            internal;
            proxy_pass http://127.0.0.1:{routing.shadow_port}$request_uri;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 1s;
            proxy_read_timeout 10s;
            access_log {prefix / "shadow.log"} rollout;
            log_subrequest on;  # mirror requests are subrequests: log them for the comparison
        }}"""
    user = "user root root;\n" if os.geteuid() == 0 else ""
    return f"""# Rendered by serving/nginx.py: edit params.yaml (rollout), not this file.
{user}worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{
    worker_connections 1024;
}}
http {{
    {LOG_FORMAT}
    access_log off;
    client_body_temp_path {prefix / "client_body"};
    proxy_temp_path {prefix / "proxy"};
    fastcgi_temp_path {prefix / "fastcgi"};
    uwsgi_temp_path {prefix / "uwsgi"};
    scgi_temp_path {prefix / "scgi"};
    upstream model {{
{servers}
        keepalive 64;
    }}
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


class Nginx:
    """One nginx master under `prefix`, configured from a `Routing`."""

    def __init__(self, prefix: Path, listen_port: int) -> None:
        self.prefix = prefix.resolve()
        self.listen_port = listen_port
        self.config = self.prefix / "nginx.conf"
        self.url = f"http://127.0.0.1:{listen_port}"

    @property
    def access_log(self) -> Path:
        return self.prefix / "access.log"

    @property
    def shadow_log(self) -> Path:
        return self.prefix / "shadow.log"

    def _command(self, *extra: str) -> list[str]:
        return [nginx_binary(), "-p", str(self.prefix), "-c", str(self.config), *extra]

    def write(self, routing: Routing) -> None:
        self.prefix.mkdir(parents=True, exist_ok=True)
        text = render_config(self.prefix, self.listen_port, routing)
        write_text_atomically(self.config, text)
        check = subprocess.run(self._command("-t", "-q"), capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx rejected {self.config}:\n{check.stderr}")

    def running(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def pid(self) -> int | None:
        try:
            return int((self.prefix / "nginx.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def apply(self, routing: Routing) -> None:
        """Start nginx with this routing, or reload it gracefully if it runs already."""
        self.write(routing)
        if self.running():
            subprocess.run(self._command("-s", "reload"), check=True, capture_output=True)
            time.sleep(0.3)  # new workers take over; old ones finish in-flight requests
        else:
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
