"""Locust users sending held-out rows to POST /predict; the run fails when the SLO is missed.

Mix: four single-row requests for every small batch (2-8 rows), rows drawn from the test split
(LOAD_TEST_ROWS, default data/prepared/test.csv) and sent as the model's clients send them: the
inputs the model describes (LOAD_TEST_MODEL, a model.json, default models/model.json), strings
for categoricals, true/false for booleans, null for a missing value. Each user paces itself
(`serving.slo.requests_per_user_s`), so the offered rate is bounded. When the run ends, the SLO
in params.yaml is checked (failure ratio, p95, p99, throughput), a summary is written as JSON for
the PR report (LOAD_TEST_SUMMARY, default reports/load_test.json), and the exit code is set to 1
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

from model.atomic import write_json_atomically
from model.params import Params, SloParams
from rollout.traffic import (
    BUDGET_ENV,
    HELD_OUT_ROWS,
    MIN_RPS_ENV,
    MODEL_INFO_ENV,
    ROWS_ENV,
    held_out_rows,
    model_inputs,
    request_body,
)
from serving.schema import TRAFFIC_SOURCE_HEADER

PARAMS = Params.load(Path(os.environ.get("PARAMS_PATH", "params.yaml")))
SLO = PARAMS.serving.slo
ROWS_FILE = Path(os.environ.get(ROWS_ENV, str(HELD_OUT_ROWS)))
MODEL_INFO = Path(os.environ.get(MODEL_INFO_ENV, "models/model.json"))
SUMMARY = Path(os.environ.get("LOAD_TEST_SUMMARY", "reports/load_test.json"))
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


def check_slo(stats: Any, slo: SloParams, min_rps: float | None = None) -> dict[str, Any]:
    """Every SLO figure with its budget and verdict, from Locust's aggregated stats. With
    `min_rps` (a rollout's traffic), only the failure ratio and that throughput are judged."""
    total = stats.total
    figures = {"failure_ratio": (total.fail_ratio, slo.max_failure_ratio, "max")}
    if min_rps is None:
        figures |= {
            "p95_ms": (total.get_response_time_percentile(0.95) or 0.0, slo.p95_ms, "max"),
            "p99_ms": (total.get_response_time_percentile(0.99) or 0.0, slo.p99_ms, "max"),
        }
    throughput = slo.min_rps if min_rps is None else min_rps
    figures["requests_per_s"] = (total.total_rps, throughput, "min")
    checks = {
        name: {
            "value": value,
            "budget": budget,
            "kind": kind,
            "passed": value <= budget if kind == "max" else value >= budget,
        }
        for name, (value, budget, kind) in figures.items()
    }
    return {
        "passed": all(check["passed"] for check in checks.values()),
        "requests": total.num_requests,
        "failures": total.num_failures,
        "median_ms": total.median_response_time,
        "checks": checks,
    }


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _enforce_slo(environment: Environment, **_: Any) -> None:
    summary = check_slo(environment.stats, SLO, MIN_RPS)
    summary |= {"budget": BUDGET, "onnx_sha256": INFO.get("sha256")}
    write_json_atomically(SUMMARY, summary)
    for name, check in summary["checks"].items():
        mark = "ok  " if check["passed"] else "MISS"
        print(f"  {mark} {name:<15} {check['value']:10.3f} ({check['kind']} {check['budget']:g})")
    if not summary["passed"]:
        missed = [name for name, check in summary["checks"].items() if not check["passed"]]
        print(f"load test: missed {', '.join(missed)} (budget: {BUDGET})")
        environment.process_exit_code = 1
    else:
        print(f"load test: {BUDGET} met ({summary['requests']} requests) -> {SUMMARY}")
