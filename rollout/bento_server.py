"""Start a `bentoml serve` process on loopback, wait until it is ready, and always stop it.

A BentoML worker that fails at start-up is restarted in a loop while `bentoml serve` stays up
and /readyz never turns 200, so readiness is awaited with a deadline and the whole process group
is killed on the way out, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import psutil

from model.model_store import DEFAULT_BENTOML_HOME
from rollout.ports import free_port

DEFAULT_SERVICE = "serving.service:Classifier"


class NotReadyError(RuntimeError):
    """The server did not answer /readyz with 200 before the deadline."""


def is_ready(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def stop_group(pid: int, grace_s: float = 10.0, known: Iterable[int] = ()) -> None:
    """End a server started by `BentoServer` (possibly by another process) and all it started.

    BentoML's workers call setsid(), so they leave the server's process group: they are found
    as descendants instead, before the parent goes, and stopped with it.
    """
    processes = []
    for candidate in [pid, *known]:
        with contextlib.suppress(psutil.NoSuchProcess):
            process = psutil.Process(candidate)
            processes += [process, *process.children(recursive=True)]
    processes = list({process.pid: process for process in processes}.values())
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=grace_s)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(alive, timeout=5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def family(pid: int) -> list[int]:
    """The pids a process started, however deep."""
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


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
        self._own_port = port is None  # chosen here: another may be chosen if it gets taken
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cwd = cwd or Path.cwd()
        # The project-local store unless told otherwise: `bentoml serve` fixes its home before it
        # imports the service, so the variable must be set in its environment from the start.
        project_store = str((self.cwd / DEFAULT_BENTOML_HOME).resolve())
        self.env = (
            {"BENTOML_HOME": project_store}
            | os.environ
            | {"BENTOML_DO_NOT_TRACK": "true"}
            | (env or {})
        )
        self.log = log or self.cwd / f".bentoml-serve-{self.port}.log"
        self.ready_timeout_s = ready_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.family: list[int] = []  # worker pids, recorded once ready: they outlive their parent
        self._attached_pid: int | None = None

    @classmethod
    def attach(cls, port: int, pid: int, workers: Iterable[int] = ()) -> BentoServer:
        """A handle on a server another process started (to resume a rollout, say)."""
        server = cls(port=port)
        server._attached_pid = pid
        server.family = list(workers)
        return server

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

    def _rebind(self) -> bool:
        """Start again on another free port when the chosen one was taken between choosing and
        binding (another process got it first); False when the exit had another cause."""
        if not self._own_port or "address already in use" not in self.tail(40).lower():
            return False
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start()
        return True

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        rebinds = 3
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                if rebinds and self._rebind():
                    rebinds -= 1
                    continue
                raise NotReadyError(
                    f"{self.service} exited ({self.process.returncode}):\n{self.tail()}"
                )
            if is_ready(self.url):
                self.family = family(self.process.pid) if self.process else []
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

    @property
    def pid(self) -> int | None:
        """Also the process group id: `stop_group(pid)` ends the server from another process."""
        return self._attached_pid if self.process is None else self.process.pid

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        if self._attached_pid is None:
            return False
        try:
            return bool(psutil.Process(self._attached_pid).status() != psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            return False

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the server and every process it started, SIGKILL what is left after `grace_s`."""
        if self.pid is None:
            return
        stop_group(self.pid, grace_s, known=self.family)
        if self.process is not None:
            self.process.wait()

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
