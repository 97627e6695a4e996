"""The servers a rollout runs: started, smoke-tested, recorded, found again across runs."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from model.params import Params
from rollout.analysis import Disagreement, label_disagreement
from rollout.bento_server import DEFAULT_SERVICE, BentoServer, NotReadyError, stop_group
from rollout.nginx import Nginx
from rollout.state import Proxy, Server, ServingRecord, load_serving, save_serving
from rollout.traffic import (
    HELD_OUT_ROWS,
    Traffic,
    held_out_rows,
    model_inputs,
    request_bodies,
    request_body,
)
from serving.schema import TRAFFIC_SOURCE_HEADER

SMOKE_ROWS = 2  # held-out rows in the smoke test's one request
SAMPLE_REQUEST_ROWS = 8  # rows per request when two versions are compared on held-out rows
DRAIN_S = 0.5  # after routing away from a server, in-flight requests finish before it stops


def log(message: str) -> None:
    print(f"rollout: {message}", flush=True)


@dataclass(frozen=True)
class Setup:
    """What every rollout command shares: the plan, where it writes, what its clients send."""

    params: Params
    work_dir: Path
    rows: Path = HELD_OUT_ROWS  # held-out rows for smoke tests and traffic
    drive_traffic: bool = True  # False: real clients drive it

    def proxy(self) -> Nginx:
        return Nginx(self.work_dir / "nginx", self.params.rollout.nginx_port)


def sample_rows(info: dict[str, Any], rows_file: Path = HELD_OUT_ROWS) -> list[dict[str, Any]]:
    """Held-out rows as the model `info` describes takes them (a client's JSON rows)."""
    return held_out_rows(rows_file, model_inputs(info))


def sample_body(info: dict[str, Any], rows_file: Path = HELD_OUT_ROWS) -> str:
    """A /predict body of a few held-out rows for the model `info` describes: the smoke test."""
    return request_body(sample_rows(info, rows_file)[:SMOKE_ROWS])


def smoke_test(url: str, body: str, labels: Sequence[str] = ()) -> str | None:
    """None when the server answers a real request sensibly (one prediction per row, each a
    label of the model's own when `labels` are given), else what went wrong."""
    try:
        headers = {"content-type": "application/json", TRAFFIC_SOURCE_HEADER: "smoke-test"}
        response = httpx.post(f"{url}/predict", content=body, headers=headers, timeout=10)
    except httpx.HTTPError as error:
        return f"smoke test: {type(error).__name__}: {error}"
    if response.status_code != 200:
        return f"smoke test: HTTP {response.status_code}: {response.text[:200]}"
    try:
        predicted = [answer["label"] for answer in response.json()]
    except (ValueError, TypeError, KeyError):
        return f"smoke test: unexpected answer {response.text[:200]}"
    if len(predicted) != len(json.loads(body)["rows"]):
        return f"smoke test: unexpected answer {response.text[:200]}"
    if labels and (unknown := sorted({str(label) for label in predicted} - set(labels))):
        return f"smoke test: labels {unknown} are not the model's {list(labels)}"
    return None


def agreement_on_sample(
    old_info: dict[str, Any], new_info: dict[str, Any], old_url: str, new_url: str, rows: Path
) -> Disagreement | None:
    """Label disagreement between two servers on held-out rows (a smoke test for a new model).
    Each server gets the rows laid out for its own model's inputs; None when the held-out rows
    lack an input of the old model (a breaking change of inputs: nothing to compare on)."""
    try:
        old_rows = sample_rows(old_info, rows)
    except ValueError as error:
        log(f"agreement not measured: {error}")
        return None
    return label_disagreement(
        request_bodies(old_rows, SAMPLE_REQUEST_ROWS),
        old_url,
        new_url,
        canary_bodies=request_bodies(sample_rows(new_info, rows), SAMPLE_REQUEST_ROWS),
    )


def start_server(
    setup: Setup, tag: str, role: str, service: str = DEFAULT_SERVICE, port: int | None = None
) -> BentoServer:
    """A started (not yet ready) server for `tag`, logging to `<work_dir>/<role>.log`."""
    server = BentoServer(
        service,
        port=port,
        env={"SERVING_MODEL_TAG": tag},
        log=setup.work_dir / f"{role}.log",
        ready_timeout_s=setup.params.serving.ready_timeout_s,
    )
    server.start()
    log(f"{role}: starting {tag} on {server.url} (pid {server.pid})")
    return server


def start_ready(setup: Setup, tag: str, role: str, port: int | None = None) -> BentoServer:
    """A ready server for `tag`, on `port` if that is still free (nginx already routes to it)."""
    server = start_server(setup, tag, role, port=port)
    try:
        server.wait_ready()
    except NotReadyError:
        server.stop()
        if port is None:
            raise
        return start_ready(setup, tag, role)  # the old port is taken: a new one
    return server


def record(server: BentoServer, tag: str) -> Server:
    """What the state keeps of a server (its workers are known once it is ready)."""
    return Server(
        model_tag=tag, port=server.port, pid=server.pid, workers=server.family, url=server.url
    )


def attach(saved: Server) -> BentoServer:
    if saved.pid is None:
        raise SystemExit(f"rollout: {saved.model_tag} on port {saved.port} was stopped")
    return BentoServer.attach(saved.port, saved.pid, saved.workers)


def stop_recorded(server: Server | None) -> None:
    """Stop a server another run started, by the pids its record keeps."""
    if server is not None and server.pid:
        stop_group(server.pid, known=server.workers)


def proxy_record(nginx: Nginx) -> Proxy:
    return Proxy(prefix=str(nginx.prefix), url=nginx.url, port=nginx.listen_port)


def record_serving(work_dir: Path, nginx: Nginx, server: Server, previous: Server | None) -> None:
    save_serving(
        work_dir, ServingRecord(nginx=proxy_record(nginx), server=server, previous=previous)
    )


def proxy_of(record: Proxy, default_port: int) -> Nginx:
    return Nginx(Path(record.prefix), record.port or default_port)


def live_serving(work_dir: Path) -> ServingRecord | None:
    """The serving record when its nginx and server still run, else None."""
    serving = load_serving(work_dir)
    if serving is None or serving.server.pid is None:
        return None
    nginx = proxy_of(serving.nginx, 0)
    alive = BentoServer.attach(serving.server.port, serving.server.pid).alive()
    return serving if nginx.running() and alive else None


def hold(canary: BentoServer, seconds: float) -> bool:
    """Wait out a step; True as soon as the canary process is found dead."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not canary.alive():
            return True
        time.sleep(0.25)
    return not canary.alive()


def traffic(
    setup: Setup, nginx: Nginx, seconds: float, clients_model: Path
) -> contextlib.AbstractContextManager[object]:
    """`with traffic(...)`: Locust drives clients through nginx, or nothing when real clients do.
    Clients were written for the version that serves: `clients_model` is its model.json."""
    if not setup.drive_traffic:
        return contextlib.nullcontext()
    params = setup.params.rollout.traffic
    return Traffic(
        nginx.url, params, seconds, setup.work_dir, clients_model, setup.rows, nginx.access_log
    )
