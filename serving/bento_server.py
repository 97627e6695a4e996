"""Start a `bentoml serve` process on loopback, wait until it is ready, and always stop it.

A BentoML worker that fails at start-up is restarted in a loop while `bentoml serve` stays up
and /readyz never turns 200, so readiness is awaited with a deadline and the whole process group
is killed on the way out, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

DEFAULT_SERVICE = "serving.service:Classifier"


class NotReadyError(RuntimeError):
    """The server did not answer /readyz with 200 before the deadline."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def is_ready(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


class BentoServer:
    """`with BentoServer(port=...) as server:` serves `service` until the block ends."""

    def __init__(
        self,
        service: str = DEFAULT_SERVICE,
        *,
        port: int | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        log: Path | None = None,
        ready_timeout_s: float = 60.0,
    ) -> None:
        self.service = service
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cwd = cwd or Path.cwd()
        self.env = os.environ | {"BENTOML_DO_NOT_TRACK": "true"} | (env or {})
        self.log = log or self.cwd / f".bentoml-serve-{self.port}.log"
        self.ready_timeout_s = ready_timeout_s
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> BentoServer:
        bentoml = Path(sys.executable).with_name("bentoml")
        command = [str(bentoml), "serve", self.service, "--host", "127.0.0.1"]
        command += ["--port", str(self.port)]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() reaches the workers
            )
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise NotReadyError(
                    f"{self.service} exited ({self.process.returncode}):\n{self.tail()}"
                )
            if is_ready(self.url):
                return
            time.sleep(0.2)
        waited = f"{self.ready_timeout_s:g} s"
        raise NotReadyError(
            f"{self.service} on {self.url} not ready after {waited}:\n{self.tail()}"
        )

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL what is left after `grace_s`."""
        if self.process is None or self.process.poll() is not None:
            return
        group = os.getpgid(self.process.pid)
        os.killpg(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self.process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)  # workers that outlived their parent

    def __enter__(self) -> BentoServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
