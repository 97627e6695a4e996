"""What a rollout's traffic is judged on, and what a release must show before it goes out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from model.params import TrafficParams
from rollout.traffic import Traffic
from rollout.versions import release_problems

BREAKING_GATE = {"breaking": True, "candidate": {"onnx_sha256": "abc"}}
PASSED_LOAD_TEST: dict[str, Any] = {"passed": True, "checks": {}}
FAILED_LOAD_TEST = {
    "passed": False,
    "checks": {"p99_ms": {"passed": False}, "failure_ratio": {"passed": True}},
}


def test_rollout_traffic_is_judged_on_its_own_offered_rate() -> None:
    params = TrafficParams(users=8, requests_per_user_s=10, min_offered_share=0.8)
    traffic = Traffic("http://127.0.0.1:1", params, 5, Path("unused"), Path("model.json"))
    assert traffic.min_rps == 64.0


def test_a_release_that_breaks_clients_is_never_canaried() -> None:
    problems = release_problems({}, BREAKING_GATE, None, strategy="canary", allow_breaking=True)
    assert len(problems) == 1
    assert "breaking" in problems[0]
    assert "--allow-breaking" in problems[0]


def test_a_breaking_release_needs_an_explicit_blue_green() -> None:
    refused = release_problems({}, BREAKING_GATE, None, strategy="blue-green", allow_breaking=False)
    allowed = release_problems({}, BREAKING_GATE, None, strategy="blue-green", allow_breaking=True)
    assert refused
    assert not allowed


def test_a_failed_load_test_stops_the_release_and_is_named() -> None:
    problems = release_problems({}, None, FAILED_LOAD_TEST, strategy="canary", allow_breaking=False)
    assert problems == ["its load test failed: p99_ms missed"]


def test_a_release_with_clean_reports_goes_out() -> None:
    gate = {"breaking": False}
    assert not release_problems({}, gate, PASSED_LOAD_TEST, strategy="canary", allow_breaking=False)
