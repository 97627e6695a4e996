"""The SLO verdict of a load test: every figure against its budget from params.yaml.

Apart from the locustfile (which reads the model and the rows when imported), so unit tests and
mutation testing reach it without a trained model.
"""

from __future__ import annotations

from typing import Any

from model.params import SloParams


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
