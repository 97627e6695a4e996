"""The load-test SLO (params.yaml serving.slo) decides at each budget's exact value: a figure at
its budget meets it, one step past misses it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from load_tests.slo import check_slo
from model.params import Params
from tests.conftest import REPO_ROOT

SLO = Params.load(REPO_ROOT / "params.yaml").serving.slo


@dataclass
class Totals:
    """The parts of Locust's aggregated `stats.total` the SLO reads."""

    fail_ratio: float = 0.0
    p95_ms: float | None = 1.0
    p99_ms: float | None = 1.0
    total_rps: float = SLO.min_rps * 2
    num_requests: int = 1000
    num_failures: int = 0
    median_response_time: float = 1.0

    def get_response_time_percentile(self, share: float) -> float | None:
        return {0.95: self.p95_ms, 0.99: self.p99_ms}[share]


@dataclass
class Stats:
    total: Totals = field(default_factory=Totals)


def _verdict(**figures: float) -> dict[str, object]:
    return check_slo(Stats(Totals(**figures)), SLO)  # type: ignore[arg-type]


def _next(value: float, up: bool) -> float:
    return math.nextafter(value, math.inf if up else -math.inf)


MAXIMA = [
    ("failure_ratio", "fail_ratio", SLO.max_failure_ratio),
    ("p95_ms", "p95_ms", SLO.p95_ms),
    ("p99_ms", "p99_ms", SLO.p99_ms),
]


@pytest.mark.parametrize(("check", "figure", "budget"), MAXIMA, ids=[m[0] for m in MAXIMA])
def test_a_figure_exactly_at_its_maximum_meets_the_slo_and_one_step_over_misses(
    check: str, figure: str, budget: float
) -> None:
    for where, value, passes in [
        ("at the budget", budget, True),
        ("just over", _next(budget, up=True), False),
        ("just under", _next(budget, up=False), True),
    ]:
        verdict = _verdict(**{figure: value})
        checks = verdict["checks"]
        assert isinstance(checks, dict)
        assert checks[check] == {"value": value, "budget": budget, "kind": "max", "passed": passes}
        assert verdict["passed"] is passes, f"{check} {where}"


def test_throughput_exactly_at_the_minimum_meets_the_slo_and_one_step_under_misses() -> None:
    for where, value, passes in [
        ("at the minimum", SLO.min_rps, True),
        ("just under", _next(SLO.min_rps, up=False), False),
        ("just over", _next(SLO.min_rps, up=True), True),
    ]:
        verdict = _verdict(total_rps=value)
        checks = verdict["checks"]
        assert isinstance(checks, dict)
        assert checks["requests_per_s"]["kind"] == "min"
        assert checks["requests_per_s"]["passed"] is passes, f"throughput {where}"
        assert verdict["passed"] is passes


def test_a_rollouts_traffic_is_judged_on_failures_and_its_own_throughput_only() -> None:
    slow = Stats(Totals(p95_ms=SLO.p95_ms * 10, p99_ms=SLO.p99_ms * 10, total_rps=5.0))
    verdict = check_slo(slow, SLO, min_rps=5.0)
    assert verdict["passed"] is True
    assert set(verdict["checks"]) == {"failure_ratio", "requests_per_s"}
    assert verdict["checks"]["requests_per_s"]["budget"] == 5.0
    assert check_slo(slow, SLO, min_rps=_next(5.0, up=True))["passed"] is False


def test_no_latency_recorded_counts_as_zero_not_a_crash() -> None:
    verdict = _verdict(p95_ms=None, p99_ms=None)  # type: ignore[arg-type]
    assert verdict["passed"] is True


def test_the_summary_carries_the_request_counts() -> None:
    verdict = _verdict(num_requests=7, num_failures=0, median_response_time=3.0)
    assert (verdict["requests"], verdict["failures"], verdict["median_ms"]) == (7, 0, 3.0)
