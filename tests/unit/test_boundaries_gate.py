"""Every gate threshold in params.yaml decides at its exact value: at the limit passes, the next
float past it fails, the next float inside it passes. Limits are read from params.yaml, never
written here, so a changed limit moves these tests with it."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from model import checks as gate
from model.artifacts import Check
from model.checks import behavior_checks, edge_check, latency_checks, metric_checks
from model.checks import parity_check as gate_parity_check
from model.features import fit_schema
from model.latency import LatencyProfile
from model.params import DirectionalExpectation, MetricGate, Params
from tests.conftest import REPO_ROOT
from tests.tables import mixed_contract, mixed_frame

PARAMS = Params.load(REPO_ROOT / "params.yaml")
GATES = PARAMS.gate
METRICS = sorted(GATES.metrics)


def _past(limit: float, upper: bool) -> float:
    """The next float beyond `limit` on its failing side (above a maximum, below a minimum)."""
    return math.nextafter(limit, math.inf if upper else -math.inf)


def _inside(limit: float, upper: bool) -> float:
    """The next float on the passing side of `limit`."""
    return _past(limit, not upper)


def _one(checks: list[Check], name: str) -> Check:
    [check] = [check for check in checks if check.name == name]
    return check


def _sides(limit: float, upper: bool) -> list[tuple[str, float, bool]]:
    """(where, value, passes) at, just past and just inside a limit."""
    return [
        ("at the limit", limit, True),
        ("just past it", _past(limit, upper), False),
        ("just inside it", _inside(limit, upper), True),
    ]


# --- metric gate: the absolute floor or ceiling -----------------------------------------------


@pytest.mark.parametrize("name", METRICS)
def test_a_metric_exactly_at_its_floor_or_ceiling_passes_and_one_step_past_fails(
    name: str,
) -> None:
    bounds = GATES.metrics[name]
    upper = not bounds.higher_is_better
    limit = bounds.max if upper else bounds.min
    assert limit is not None, f"gate.metrics.{name} has no absolute bound"
    check_name = f"{name}_ceiling" if upper else f"{name}_floor"
    for where, value, passes in _sides(limit, upper):
        check = _one(metric_checks({name: value}, None, {name: bounds}), check_name)
        assert check.passed is passes, f"{name} {where} ({value!r} vs {limit!r})"
        assert check.threshold == limit


# --- metric gate: the change against the baseline ---------------------------------------------


@pytest.mark.parametrize("name", METRICS)
def test_a_change_exactly_at_the_allowed_drop_or_rise_passes_and_one_step_past_fails(
    name: str,
) -> None:
    bounds = GATES.metrics[name]
    upper = not bounds.higher_is_better
    allowed = bounds.max_rise if upper else bounds.max_drop
    assert allowed is not None, f"gate.metrics.{name} has no bound against the baseline"
    base = 0.5
    limit = base + allowed if upper else base - allowed  # as the gate computes it
    for where, value, passes in _sides(limit, upper):
        checks = metric_checks({name: value}, {name: base}, {name: bounds})
        check = _one(checks, f"{name}_vs_baseline")
        assert check.passed is passes, f"{name} {where} ({value!r}, baseline {base})"
        assert (check.threshold, check.baseline) == (limit, base)


@pytest.mark.parametrize("name", METRICS)
def test_a_change_past_its_limit_is_forgiven_only_while_the_interval_reaches_the_limit(
    name: str,
) -> None:
    """With block_only_beyond_noise, a change past the limit passes when the paired interval's
    nearer end lies at the allowed change (or inside it), and blocks one step beyond."""
    bounds = GATES.metrics[name]
    upper = not bounds.higher_is_better
    allowed = bounds.max_rise if upper else bounds.max_drop
    assert allowed is not None
    base = 0.5
    value = base + 2 * allowed + 0.01 if upper else base - 2 * allowed - 0.01  # clearly past
    edge = allowed if upper else -allowed  # the interval's nearer end, at the allowed change
    for where, end, passes in _sides(edge, upper):
        pair = (
            {"low": end, "high": end + 1.0, "beyond_noise": False}
            if upper
            else {"low": end - 1.0, "high": end, "beyond_noise": False}
        )
        strict = metric_checks({name: value}, {name: base}, {name: bounds}, {name: pair})
        lenient = metric_checks({name: value}, {name: base}, {name: bounds}, {name: pair}, True)
        assert not _one(strict, f"{name}_vs_baseline").passed, "the default blocks as measured"
        check = _one(lenient, f"{name}_vs_baseline")
        assert check.passed is passes, f"interval end {where} ({end!r} vs {edge!r})"
        assert ("not blocking" in check.why) is passes


@pytest.mark.parametrize("upper", [False, True], ids=["higher-is-better", "lower-is-better"])
def test_a_change_within_its_limit_passes_whatever_the_interval(upper: bool) -> None:
    bounds = MetricGate(max_rise=0.05) if upper else MetricGate(max_drop=0.05)
    pair = {"low": -9.0, "high": 9.0, "beyond_noise": False}
    checks = metric_checks({"m": 0.5}, {"m": 0.5}, {"m": bounds}, {"m": pair}, True)
    assert _one(checks, "m_vs_baseline").passed
    assert "not blocking" not in _one(checks, "m_vs_baseline").why


def test_a_metric_missing_from_the_candidate_fails_by_name() -> None:
    [check] = metric_checks({}, None, {METRICS[0]: GATES.metrics[METRICS[0]]})
    assert (check.name, check.passed, check.why) == (
        METRICS[0],
        False,
        "metric missing from metrics",
    )


def test_without_a_baseline_value_only_the_absolute_bound_is_checked() -> None:
    name = METRICS[0]
    checks = metric_checks({name: 0.5}, {"another metric": 0.5}, {name: GATES.metrics[name]})
    assert not any(check.name.endswith("_vs_baseline") for check in checks)


# --- latency gate -----------------------------------------------------------------------------


def _profile(p99_ms: float) -> LatencyProfile:
    return LatencyProfile(p50_ms=p99_ms / 2, p99_ms=p99_ms, rows_per_second={1: 1000.0})


def test_a_p99_exactly_at_the_budget_passes_and_one_step_over_fails() -> None:
    budget = GATES.latency.p99_budget_ms
    for where, value, passes in _sides(budget, upper=True):
        check = _one(latency_checks(_profile(value), None, GATES.latency), "p99_budget")
        assert check.passed is passes, f"p99 {where}"
        assert (check.value, check.threshold) == (value, budget)


def test_a_p99_ratio_exactly_at_the_limit_passes_and_one_step_over_fails() -> None:
    limit = GATES.latency.max_p99_ratio
    baseline = _profile(1.0)  # a ratio to 1.0 ms is the candidate's p99 itself, exactly
    for where, value, passes in _sides(limit, upper=True):
        check = _one(latency_checks(_profile(value), baseline, GATES.latency), "p99_ratio")
        assert check.passed is passes, f"ratio {where}"
        assert (check.value, check.threshold, check.baseline) == (value, limit, 1.0)


def test_the_p99_ratio_is_candidate_over_baseline() -> None:
    checks = latency_checks(_profile(0.5), _profile(0.25), GATES.latency)
    assert _one(checks, "p99_ratio").value == 2.0


# --- parity and edge --------------------------------------------------------------------------


def test_parity_exactly_at_the_tolerance_passes_and_one_step_over_fails() -> None:
    tolerance = PARAMS.export.parity_tolerance
    for where, value, passes in _sides(tolerance, upper=True):
        check = gate_parity_check(value, tolerance, 10)
        assert check.passed is passes, f"max difference {where}"
        assert (check.gate, check.name, check.value) == ("parity", "onnx_matches_torch", value)


def test_an_int8_drop_exactly_at_the_limit_passes_and_one_step_over_fails() -> None:
    limit = GATES.edge.max_accuracy_drop
    for where, drop, passes in _sides(limit, upper=True):
        fp32 = drop  # an int8 accuracy of 0 makes the drop the fp32 accuracy itself, exactly
        check = edge_check(fp32, 0.0, GATES.edge)
        assert check.value == drop
        assert check.passed is passes, f"drop {where}"


def test_the_edge_drop_is_fp32_minus_int8() -> None:
    """An int8 model better than fp32 is a negative drop, which passes."""
    check = edge_check(0.5, 0.75, GATES.edge)
    assert (check.value, check.passed) == (-0.25, True)


# --- behaviour gate: the comparisons, with the measurements fixed -----------------------------

CONTRACT = mixed_contract()
FRAME = mixed_frame(60, seed=3)
SCHEMA = fit_schema(FRAME, CONTRACT)
NUMERIC = next(item.name for item in SCHEMA.numeric if item.kind == "numeric")
# The project's behaviour limits, with one directional expectation on a feature this table has.
BEHAVIOR = GATES.behavior.model_copy(
    update={
        "directional": {
            NUMERIC: DirectionalExpectation(effect="increases", label=SCHEMA.labels[-1])
        }
    }
)


def _behavior(
    monkeypatch: pytest.MonkeyPatch, flip_rate: float, share: float, recalls: list[float]
) -> list[Check]:
    """The behaviour checks with the measurements (tested in test_behavior.py) fixed, so only
    the gate's comparisons with its limits are under test."""
    monkeypatch.setattr(gate, "invariance_flip_rate", lambda *_: flip_rate)
    monkeypatch.setattr(gate, "directional_shares", lambda *_: {NUMERIC: share})
    monkeypatch.setattr(gate, "per_class_recall", lambda *_: np.array(recalls))
    features = FRAME.loc[:, list(SCHEMA.feature_names)]

    def predict(rows: pd.DataFrame) -> np.ndarray:
        return np.full((len(rows), len(SCHEMA.labels)), 1 / len(SCHEMA.labels))

    labels = np.zeros(len(features), dtype=np.int64)
    return behavior_checks(predict, features, labels, SCHEMA, BEHAVIOR)


def test_a_flip_rate_exactly_at_the_limit_passes_and_one_step_over_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limit = BEHAVIOR.max_invariance_flip_rate
    recalls = [1.0] * len(SCHEMA.labels)
    for where, rate, passes in _sides(limit, upper=True):
        check = _one(_behavior(monkeypatch, rate, 1.0, recalls), "invariance")
        assert check.passed is passes, f"flip rate {where}"
        assert (check.gate, check.value, check.threshold) == ("behavior", rate, limit)


def test_a_directional_share_exactly_at_the_minimum_passes_and_one_step_under_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    minimum = BEHAVIOR.min_directional_share
    recalls = [1.0] * len(SCHEMA.labels)
    for where, share, passes in _sides(minimum, upper=False):
        check = _one(_behavior(monkeypatch, 0.0, share, recalls), f"directional_{NUMERIC}")
        assert check.passed is passes, f"share {where}"
        assert (check.value, check.threshold) == (share, minimum)
        assert NUMERIC in check.why


def test_a_recall_exactly_at_the_minimum_passes_and_one_step_under_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    minimum = BEHAVIOR.min_recall
    weakest = SCHEMA.labels[-1]
    for where, recall, passes in _sides(minimum, upper=False):
        recalls = [1.0] * (len(SCHEMA.labels) - 1) + [recall]
        checks = _behavior(monkeypatch, 0.0, 1.0, recalls)
        failed = {check.name for check in checks if not check.passed}
        assert failed == (set() if passes else {f"recall_{weakest}"}), f"recall {where}"


def test_every_behaviour_check_can_fail_and_each_names_its_own_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checks = _behavior(monkeypatch, 1.0, 0.0, [0.0] * len(SCHEMA.labels))
    assert {check.name for check in checks if not check.passed} == {
        "invariance",
        f"directional_{NUMERIC}",
        *(f"recall_{label}" for label in SCHEMA.labels),
    }
    assert all(check.gate == "behavior" for check in checks)
