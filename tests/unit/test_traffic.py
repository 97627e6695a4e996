"""What a rollout's traffic is judged on, and what a release must show before it goes out."""

from __future__ import annotations

from pathlib import Path

from model.artifacts import GateReport, LoadTestSummary, read_artifact
from model.params import TrafficParams
from rollout.traffic import Traffic
from rollout.versions import release_problems

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures/report/passing/reports"
CLEAN_GATE = read_artifact(FIXTURE / "gate.json", GateReport)
BREAKING_GATE = CLEAN_GATE.model_copy(update={"breaking": True})
PASSED_LOAD_TEST = read_artifact(FIXTURE / "load_test.json", LoadTestSummary)
FAILED_LOAD_TEST = PASSED_LOAD_TEST.model_copy(
    update={
        "passed": False,
        "checks": {
            **PASSED_LOAD_TEST.checks,
            "p99_ms": PASSED_LOAD_TEST.checks["p99_ms"].model_copy(update={"passed": False}),
        },
    }
)


def test_rollout_traffic_is_judged_on_its_own_offered_rate() -> None:
    params = TrafficParams(users=8, requests_per_user_s=10, min_offered_share=0.8)
    traffic = Traffic("http://127.0.0.1:1", params, 5, Path("unused"), Path("model.json"))
    assert traffic.min_rps == 64.0


def test_a_release_that_breaks_clients_is_never_canaried() -> None:
    problems = release_problems(BREAKING_GATE, None, strategy="canary", allow_breaking=True)
    assert len(problems) == 1
    assert "breaking" in problems[0]
    assert "--allow-breaking" in problems[0]


def test_a_breaking_release_needs_an_explicit_blue_green() -> None:
    refused = release_problems(BREAKING_GATE, None, strategy="blue-green", allow_breaking=False)
    allowed = release_problems(BREAKING_GATE, None, strategy="blue-green", allow_breaking=True)
    assert refused
    assert not allowed


def test_a_failed_load_test_stops_the_release_and_is_named() -> None:
    problems = release_problems(None, FAILED_LOAD_TEST, strategy="canary", allow_breaking=False)
    assert problems == ["its load test failed: p99_ms missed"]


def test_a_release_with_clean_reports_goes_out() -> None:
    assert not CLEAN_GATE.breaks_clients
    assert not release_problems(
        CLEAN_GATE, PASSED_LOAD_TEST, strategy="canary", allow_breaking=False
    )
