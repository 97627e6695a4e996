"""Locust users sending held-out rows to POST /predict; the run fails when the SLO is missed.

Mix: four single-row requests for every small batch (2-8 rows), rows drawn from the test split
(LOAD_TEST_ROWS, a CSV) and sent as the model's clients send them: the
inputs the model describes (LOAD_TEST_MODEL, a model.json), strings
for categoricals, true/false for booleans, null for a missing value. Each user paces itself
(`serving.slo.requests_per_user_s`), so the offered rate is bounded. When the run ends, the SLO
in params.yaml is checked (failure ratio, p95, p99, throughput), a summary is written as JSON for
the PR report (LOAD_TEST_SUMMARY), and the exit code is set to 1
on any miss. The summary names the model it measured (its ONNX digest), so a rollout knows
whether the verdict is about the release it ships.

Every request says it is a load test (`X-Traffic-Source: load-test`), so the service's prediction
log never counts it as production. A rollout drives its traffic with this file too, judged on its
own throughput target (LOAD_TEST_MIN_RPS) and failure ratio: latency there is the canary
analysis's business, and the serving SLO's throughput is not what a rollout offers.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant_throughput, events, task
from locust.env import Environment

from load_tests.slo import check_slo
from model.artifacts import LoadTestSummary, write_artifact
from model.params import Params
from rollout.traffic import (
    BUDGET_ENV,
    MIN_RPS_ENV,
    MODEL_INFO_ENV,
    ROWS_ENV,
    SUMMARY_ENV,
    held_out_rows,
    model_inputs,
    request_body,
)
from serving.schema import TRAFFIC_SOURCE_HEADER


def _path(variable: str) -> Path:
    """A file the caller names (load_tests/run.py from dvc.yaml's arguments, or a rollout)."""
    if not os.environ.get(variable):
        raise SystemExit(f"locustfile: set {variable} (`python -m load_tests.run` sets it)")
    return Path(os.environ[variable])


PARAMS = Params.load(Path(os.environ.get("PARAMS_PATH", "params.yaml")))
SLO = PARAMS.serving.slo
ROWS_FILE = _path(ROWS_ENV)
MODEL_INFO = _path(MODEL_INFO_ENV)
SUMMARY = _path(SUMMARY_ENV)
HEADERS = {"content-type": "application/json", TRAFFIC_SOURCE_HEADER: "load-test"}
MIN_RPS = float(os.environ[MIN_RPS_ENV]) if MIN_RPS_ENV in os.environ else None
BUDGET = os.environ.get(BUDGET_ENV, "params.yaml serving.slo")

INFO = json.loads(MODEL_INFO.read_text())
ROWS = held_out_rows(ROWS_FILE, model_inputs(INFO))


class PredictUser(FastHttpUser):
    """One client: mostly single rows, sometimes a small batch."""

    # A rollout drives traffic at its own rate (params.yaml rollout.traffic).
    wait_time = constant_throughput(
        float(os.environ.get("LOCUST_REQUESTS_PER_USER_S", SLO.requests_per_user_s))
    )

    @task(4)
    def single_row(self) -> None:
        self._predict(1)

    @task(1)
    def small_batch(self) -> None:
        self._predict(random.randint(2, 8))

    def _predict(self, size: int) -> None:
        rows = random.sample(ROWS, min(size, len(ROWS)))
        size = len(rows)
        with self.client.post(
            "/predict",
            data=request_body(rows),
            headers=HEADERS,
            name=f"/predict [{'1 row' if size == 1 else 'batch'}]",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
            elif len(response.json()) != size:
                response.failure(f"asked for {size} predictions, got {len(response.json())}")


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _enforce_slo(environment: Environment, **_: Any) -> None:
    summary = check_slo(environment.stats, SLO, MIN_RPS)
    summary |= {"budget": BUDGET, "onnx_sha256": INFO.get("sha256")}
    # through the model the gate, the report and the rollout read it with: a mismatch fails here
    write_artifact(SUMMARY, LoadTestSummary.model_validate(summary))
    for name, check in summary["checks"].items():
        mark = "ok  " if check["passed"] else "MISS"
        print(f"  {mark} {name:<15} {check['value']:10.3f} ({check['kind']} {check['budget']:g})")
    if not summary["passed"]:
        missed = [name for name, check in summary["checks"].items() if not check["passed"]]
        print(f"load test: missed {', '.join(missed)} (budget: {BUDGET})")
        environment.process_exit_code = 1
    else:
        print(f"load test: {BUDGET} met ({summary['requests']} requests) -> {SUMMARY}")
