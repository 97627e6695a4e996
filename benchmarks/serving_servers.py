"""The HTTP contenders of benchmarks.serving, started with rollout/bento_server.py's launcher.

BentoML servers get their own BENTOML_HOME in a scratch folder (the real service sees the
project's model store through a symlink): `bentoml serve` empties its home's Prometheus folder at
start-up, which would wipe the metrics of a service already running from the project store. The
FastAPI peer runs under uvicorn, started and stopped by the same launcher.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from model.inference import Feeds
from model.inputs import InputLayout
from rollout.bento_server import BentoServer, NotReadyError

ROOT = Path(__file__).resolve().parents[1]
UVICORN_FLAGS = ("--workers", "1", "--no-access-log", "--loop", "uvloop", "--http", "httptools")
DESCRIPTIONS = {
    "onnx": "onnxruntime in-process, 1 thread (the limit)",
    "service": "serving/service.py: BentoML, ONNX, batching",
    "fastapi": "FastAPI + uvicorn, ONNX, no batching",
    "naive": "BentoML, torch eager, no batching",
}


class UvicornServer(BentoServer):
    """The FastAPI peer: `BentoServer`'s readiness wait and process-group stop, uvicorn's start."""

    def start(self) -> UvicornServer:
        command = [sys.executable, "-m", "uvicorn", "benchmarks.peers.fastapi_app:app"]
        command += [*UVICORN_FLAGS, "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self


def bentoml_home(scratch: Path, name: str, model_store: Path | None) -> str:
    """A private BENTOML_HOME, seeing `model_store` (a `models` folder) through a symlink."""
    home = scratch / f"bentoml-{name}"
    home.mkdir()
    if model_store is not None:
        (home / "models").symlink_to(model_store, target_is_directory=True)
    return str(home)


def contenders(scratch: Path, model_store: Path, naive: bool) -> dict[str, BentoServer]:
    """The HTTP servers to compare, by name, not yet started."""
    servers: dict[str, BentoServer] = {
        "service": BentoServer(
            cwd=ROOT,
            env={"BENTOML_HOME": bentoml_home(scratch, "service", model_store)},
            log=scratch / "service.log",
        ),
        "fastapi": UvicornServer(
            cwd=ROOT, env={"PEER_ONNX_MODEL": "models/model.onnx"}, log=scratch / "fastapi.log"
        ),
    }
    if naive:
        servers["naive"] = BentoServer(
            "benchmarks.peers.naive_service:NaivePeer",
            cwd=ROOT,
            env={"BENTOML_HOME": bentoml_home(scratch, "naive", None)},
            log=scratch / "naive.log",
        )
    return servers


@contextmanager
def started(servers: Mapping[str, BentoServer]) -> Iterator[Mapping[str, BentoServer]]:
    """Start every server at once, wait until all are ready, and stop them all on the way out."""
    with ExitStack() as stack:
        for server in servers.values():
            server.start()
            stack.callback(server.stop)
        for name, server in servers.items():
            try:
                server.wait_ready()
            except NotReadyError as error:
                raise SystemExit(f"{name} did not start: {error}") from None
            print(f"{name} ready on {server.url} (log {server.log})", flush=True)
        try:
            yield servers
        except BaseException:  # SystemExit too: wrk failing is how a dead server shows
            for name, server in servers.items():
                state = "still running" if server.alive() else "stopped"
                print(f"{name} ({state}), its log ends:\n{server.tail()}", file=sys.stderr)
            raise


def sample_row(info: Mapping[str, Any]) -> tuple[Feeds, bytes]:
    """The model's first example row (model.json): its feeds for onnxruntime and the JSON body."""
    examples = info.get("examples") or []
    if not examples:
        raise SystemExit("models/model.json has no examples: export the model again (dvc repro)")
    row = examples[0]
    return InputLayout.from_metadata(info).feeds([row]), json.dumps({"rows": [row]}).encode()


def predict_label(name: str, url: str, body: bytes) -> str:
    """POST the sample body once and return the label of its only row."""
    request = urllib.request.Request(
        f"{url}/predict", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise SystemExit(f"{name} answered {error.code}: {error.read()[:500]!r}") from None
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        raise SystemExit(f"{name} did not answer the sample row: {error}") from None
    return str(answer[0]["label"])


def model_store() -> Path:
    store = Path(os.environ.get("BENTOML_HOME", ROOT / ".bentoml")) / "models"
    if not store.is_dir():
        raise SystemExit(f"no BentoML model store at {store}: run `make package` first")
    return store
