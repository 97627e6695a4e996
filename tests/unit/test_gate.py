"""Each gate's pure check passes what it should, fails what it should, and says why."""

from __future__ import annotations

import numpy as np
import pytest

from model.artifacts import Check
from model.baseline import NO_BASELINE
from model.checks import (
    edge_check,
    format_table,
    input_schema_check,
    latency_checks,
    metric_checks,
    ordered,
    parity_check,
)
from model.inputs import InputLayout, RawInput
from model.latency import LatencyProfile
from model.params import EdgeGate, LatencyGate, MetricGate

GATES = {
    "roc_auc": MetricGate(min=0.95, max_drop=0.01),
    "log_loss": MetricGate(max=0.3, max_rise=0.05),
}
BASELINE = {"roc_auc": 0.99, "log_loss": 0.10}
LATENCY = LatencyGate(
    threads=1, rounds=3, calls_per_round=10, batch_sizes=(1,), p99_budget_ms=1.0, max_p99_ratio=1.5
)


def _failed(checks: list[Check]) -> set[str]:
    return {check.name for check in checks if not check.passed}


def test_a_candidate_as_good_as_the_baseline_passes() -> None:
    assert _failed(metric_checks(BASELINE, BASELINE, GATES)) == set()


def test_a_worse_candidate_fails_against_the_baseline() -> None:
    """A drop within the floor but beyond `max_drop` is still stopped."""
    checks = metric_checks({"roc_auc": 0.97, "log_loss": 0.2}, BASELINE, GATES)
    assert _failed(checks) == {"roc_auc_vs_baseline", "log_loss_vs_baseline"}


def test_a_candidate_under_the_floor_fails_without_a_baseline() -> None:
    checks = metric_checks({"roc_auc": 0.9, "log_loss": 0.1}, None, GATES)
    assert _failed(checks) == {"roc_auc_floor"}
    assert not any(check.name.endswith("vs_baseline") for check in checks)


def test_a_missing_metric_fails() -> None:
    assert "log_loss" in _failed(metric_checks({"roc_auc": 0.99}, None, GATES))


def test_metric_bounds_must_pick_one_direction() -> None:
    with pytest.raises(ValueError, match="lower is better"):
        MetricGate(min=0.5, max=0.9)


def test_latency_ratio_over_the_limit_fails_and_names_both_p99s() -> None:
    slow = LatencyProfile(p50_ms=0.5, p99_ms=0.9, rows_per_second={1: 1000.0})
    fast = LatencyProfile(p50_ms=0.1, p99_ms=0.3, rows_per_second={1: 5000.0})
    checks = latency_checks(slow, fast, LATENCY)
    assert _failed(checks) == {"p99_ratio"}
    assert "0.9000 ms / baseline 0.3000 ms = 3.00x" in checks[1].why


def test_latency_without_baseline_checks_the_budget_only() -> None:
    slow = LatencyProfile(p50_ms=1.0, p99_ms=2.0, rows_per_second={1: 500.0})
    assert [check.name for check in latency_checks(slow, None, LATENCY)] == ["p99_budget"]
    assert _failed(latency_checks(slow, None, LATENCY)) == {"p99_budget"}


def test_parity_over_tolerance_fails() -> None:
    assert not parity_check(2e-5, 1e-5, 100).passed
    assert parity_check(1e-7, 1e-5, 100).passed


def test_edge_model_losing_too_much_accuracy_fails() -> None:
    assert not edge_check(0.98, 0.90, EdgeGate(max_accuracy_drop=0.02)).passed
    assert edge_check(0.98, 0.97, EdgeGate(max_accuracy_drop=0.02)).passed


def test_failing_checks_come_first_and_are_named_in_the_verdict() -> None:
    checks = [
        Check(gate="metric", name="a", passed=True, value=1.0, threshold=0.5, why="fine"),
        Check(gate="latency", name="p99_ratio", passed=False, value=3.0, threshold=1.5, why="slow"),
    ]
    assert [check.name for check in ordered(checks)] == ["p99_ratio", "a"]
    table = format_table(checks, NO_BASELINE)
    assert table.splitlines()[-1] == "gate: FAILED 1 of 2 checks: latency/p99_ratio"
    assert "only absolute floors apply" in table.splitlines()[0]


def test_every_check_is_json_ready() -> None:
    import json

    checks = metric_checks(BASELINE, BASELINE, GATES)
    assert json.loads(json.dumps([check.model_dump() for check in checks]))[0]["gate"] == "metric"
    assert np.isfinite([check.value for check in checks if isinstance(check.value, float)]).all()


def _layout(*inputs: RawInput) -> InputLayout:
    return InputLayout(inputs)


NUMBER = RawInput(name="x", kind="numeric")
COLOUR = RawInput(name="colour", kind="categorical", categories=("red", "blue"))


def test_same_inputs_are_not_a_change() -> None:
    check = input_schema_check(_layout(NUMBER, COLOUR), _layout(NUMBER, COLOUR))
    assert (check.passed, check.value) == (True, "same")


def test_an_added_nullable_feature_is_a_change_not_a_break() -> None:
    extra = RawInput(name="new one", kind="numeric", nullable=True)
    check = input_schema_check(_layout(NUMBER, extra), _layout(NUMBER))
    assert (check.passed, check.value) == (True, "changed")
    assert "added: new one" in check.why


@pytest.mark.parametrize(
    ("candidate", "named"),
    [
        ((NUMBER,), "removed: colour"),
        ((NUMBER, COLOUR, RawInput(name="z", kind="boolean")), "added: z"),
        ((NUMBER, COLOUR.model_copy(update={"categories": ("red",)})), "retyped: colour"),
        ((RawInput(name="x", kind="categorical", categories=("1",)), COLOUR), "retyped: x"),
    ],
)
def test_a_change_that_refuses_old_clients_is_breaking_yet_passes(
    candidate: tuple[RawInput, ...], named: str
) -> None:
    """A changed input schema is a fact to report, not a failed gate."""
    check = input_schema_check(_layout(*candidate), _layout(NUMBER, COLOUR))
    assert (check.passed, check.value) == (True, "breaking")
    assert named in check.why
    assert "BREAKING" in check.why


def test_an_unknown_baseline_schema_is_said() -> None:
    assert input_schema_check(_layout(NUMBER), None).value == "unknown"


def _probabilities(labels: np.ndarray, skill: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scores = skill * np.eye(2)[labels] + rng.normal(0, 0.5, (len(labels), 2))
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    probabilities: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return probabilities


def test_a_model_compared_with_itself_is_within_noise_with_a_zero_interval() -> None:
    from model.evaluate import paired_bootstrap
    from model.params import BootstrapParams

    labels = np.arange(200) % 2
    probabilities = _probabilities(labels, 1.0, 0)
    params = BootstrapParams(resamples=50, confidence=0.95, seed=0)
    result = paired_bootstrap(labels, probabilities, probabilities, 1, 10, params)
    assert result["roc_auc"] == {
        "candidate": result["roc_auc"]["candidate"],
        "baseline": result["roc_auc"]["candidate"],
        "delta": 0.0,
        "low": 0.0,
        "high": 0.0,
        "beyond_noise": False,
    }


def test_a_much_better_model_is_beyond_noise_on_the_same_rows() -> None:
    from model.evaluate import paired_bootstrap
    from model.params import BootstrapParams

    labels = np.arange(300) % 2
    params = BootstrapParams(resamples=100, confidence=0.95, seed=0)
    good, poor = _probabilities(labels, 3.0, 1), _probabilities(labels, 0.3, 2)
    result = paired_bootstrap(labels, good, poor, 1, 10, params)
    assert result["roc_auc"]["beyond_noise"]
    assert result["roc_auc"]["low"] > 0


def test_a_drop_within_noise_blocks_by_default_and_passes_when_asked() -> None:
    gates = {"roc_auc": MetricGate(max_drop=0.01)}
    paired = {"roc_auc": {"low": -0.04, "high": 0.01, "beyond_noise": False}}
    strict = metric_checks({"roc_auc": 0.95}, {"roc_auc": 0.97}, gates, paired)
    lenient = metric_checks({"roc_auc": 0.95}, {"roc_auc": 0.97}, gates, paired, True)
    assert _failed(strict) == {"roc_auc_vs_baseline"}
    assert "within noise" in strict[0].why
    assert _failed(lenient) == set()
    assert "not blocking" in lenient[0].why


def test_a_drop_beyond_noise_blocks_even_when_only_noise_is_forgiven() -> None:
    gates = {"roc_auc": MetricGate(max_drop=0.01)}
    paired = {"roc_auc": {"low": -0.05, "high": -0.02, "beyond_noise": True}}
    checks = metric_checks({"roc_auc": 0.95}, {"roc_auc": 0.985}, gates, paired, True)
    assert _failed(checks) == {"roc_auc_vs_baseline"}
