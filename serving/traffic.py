"""A bounded Locust run in the background: the traffic that drives a rollout here and in CI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from model.params import TrafficParams


class Traffic:
    """`with Traffic(url, params, seconds, folder):` Locust sends held-out rows until it ends."""

    def __init__(self, url: str, params: TrafficParams, seconds: float, folder: Path) -> None:
        self.url = url
        self.params = params
        self.seconds = seconds
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Traffic:
        self.folder.mkdir(parents=True, exist_ok=True)
        locust = Path(sys.executable).with_name("locust")
        command = [
            str(locust), "--locustfile", "load_tests/locustfile.py", "--headless",
            "--host", self.url,
            "--users", str(self.params.users), "--spawn-rate", str(self.params.users),
            "--run-time", f"{int(self.seconds) + 1}s", "--stop-timeout", "2",
            "--only-summary", "--loglevel", "WARNING",
        ]  # fmt: skip
        env = os.environ | {
            "LOCUST_REQUESTS_PER_USER_S": str(self.params.requests_per_user_s),
            "LOAD_TEST_SUMMARY": str(self.folder / "traffic.json"),
        }
        with (self.folder / "traffic.log").open("wb") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
