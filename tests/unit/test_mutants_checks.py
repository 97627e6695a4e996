"""The gate's checks pinned where `make mutation` found them unpinned: each check compared
whole (value, threshold, baseline and the sentence a reviewer reads), the measurements the
behaviour gate asks for, and the table `gate` prints. The limits come from params.yaml; the
sentences are built from them, so a changed limit changes no test."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from model import checks as gate
from model.artifacts import Check
from model.baseline import NO_BASELINE, Baseline
from model.checks import (
    behavior_checks,
    edge_check,
    format_table,
    input_changes,
    input_schema_check,
    metric_checks,
    parity_check,
)
from model.features import fit_schema
from model.inputs import InputLayout, RawInput
from model.params import DirectionalExpectation, MetricGate, Params
from tests.conftest import REPO_ROOT
from tests.tables import mixed_contract, mixed_frame

PARAMS = Params.load(REPO_ROOT / "params.yaml")
GATES = PARAMS.gate
HIGHER = next(name for name, item in GATES.metrics.items() if item.higher_is_better)
LOWER = next(name for name, item in GATES.metrics.items() if not item.higher_is_better)


def _f(value: float) -> str:
    return f"{value:.4g}"


def _floor_gate() -> MetricGate:
    item = GATES.metrics[HIGHER]
    assert item.min is not None
    assert item.max_drop is not None
    return item


def test_a_floor_check_carries_value_floor_baseline_and_says_which_side() -> None:
    item = _floor_gate()
    assert item.min is not None
    for value, sign in [(item.min, ">="), (item.min / 2, "<")]:
        [floor] = [c for c in metric_checks({HIGHER: value}, None, {HIGHER: item})]
        assert floor == Check(
            gate="metric",
            name=f"{HIGHER}_floor",
            passed=sign == ">=",
            value=value,
            threshold=item.min,
            why=f"{_f(value)} {sign} floor {_f(item.min)}",
            baseline=None,
        )


def test_a_ceiling_check_says_which_side() -> None:
    item = MetricGate(max=1.0)
    [ok] = metric_checks({LOWER: 1.0}, None, {LOWER: item})
    [bad] = metric_checks({LOWER: 2.0}, None, {LOWER: item})
    assert (ok.why, bad.why) == ("1 <= ceiling 1", "2 > ceiling 1")
    assert (ok.name, ok.value, ok.threshold) == (f"{LOWER}_ceiling", 1.0, 1.0)


def test_a_change_against_the_baseline_says_change_noise_and_allowance() -> None:
    item = _floor_gate()
    assert item.max_drop is not None
    assert item.min is not None
    base = item.min + 4 * item.max_drop
    value = base - 2 * item.max_drop  # past the allowed drop, above the floor
    pair = {"low": -3 * item.max_drop, "high": -item.max_drop / 2, "beyond_noise": True}
    floor, change = metric_checks({HIGHER: value}, {HIGHER: base}, {HIGHER: item}, {HIGHER: pair})
    assert floor.baseline == base
    noise = f" (paired 95% interval {pair['low']:+.4g} to {pair['high']:+.4g}: beyond noise)"
    assert change == Check(
        gate="metric",
        name=f"{HIGHER}_vs_baseline",
        passed=False,
        value=value,
        threshold=base - item.max_drop,
        why=f"{_f(value)} vs baseline {_f(base)}: change {value - base:+.4g}{noise}, "
        f"allowed drop {_f(item.max_drop)}",
        baseline=base,
    )
    within = pair | {"beyond_noise": False}
    [_, quiet] = metric_checks({HIGHER: value}, {HIGHER: base}, {HIGHER: item}, {HIGHER: within})
    assert ": within noise)" in quiet.why
    assert "beyond noise" not in quiet.why
    [_, plain] = metric_checks({HIGHER: value}, {HIGHER: base}, {HIGHER: item})
    assert plain.why.startswith(f"{_f(value)} vs baseline {_f(base)}: change {value - base:+.4g},")


def test_a_rise_against_the_baseline_is_called_a_rise() -> None:
    item = MetricGate(max_rise=0.5)
    [change] = metric_checks({LOWER: 2.0}, {LOWER: 1.0}, {LOWER: item})
    assert change.why == "2 vs baseline 1: change +1, allowed rise 0.5"
    assert (change.value, change.threshold, change.passed) == (2.0, 1.5, False)


def test_a_missing_metric_fails_and_the_others_are_still_checked() -> None:
    item = _floor_gate()
    assert item.min is not None
    checks = metric_checks({"other": 1.0}, None, {"absent": item, "other": item})
    assert [(c.name, c.passed, c.value) for c in checks] == [
        ("absent", False, None),
        ("other_floor", True, 1.0),
    ]


# --- behaviour: what is measured, and on what ------------------------------------------------

CONTRACT = mixed_contract()
FRAME = mixed_frame(60, seed=3)
SCHEMA = fit_schema(FRAME, CONTRACT)
NUMERIC = [item.name for item in SCHEMA.numeric if item.kind == "numeric"]
# No label named: the expectation is on the schema's positive label (the first one here).
SCHEMA = SCHEMA.model_copy(update={"positive_label": SCHEMA.labels[0]})
BEHAVIOR = GATES.behavior.model_copy(
    update={"directional": {NUMERIC[0]: DirectionalExpectation(effect="increases")}}
)


def _predict(rows: pd.DataFrame) -> np.ndarray:
    return np.full((len(rows), len(SCHEMA.labels)), 1 / len(SCHEMA.labels))


def test_behaviour_measures_the_model_on_the_rows_with_the_configured_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, tuple[Any, ...]] = {}

    def flips(*args: Any) -> float:
        seen["flips"] = args
        return 0.0

    def shares(*args: Any) -> dict[str, float]:
        seen["shares"] = args
        return {NUMERIC[0]: 1.0}

    def recall(*args: Any) -> np.ndarray:
        seen["recall"] = args
        return np.full(len(SCHEMA.labels), BEHAVIOR.min_recall)

    monkeypatch.setattr(gate, "invariance_flip_rate", flips)
    monkeypatch.setattr(gate, "directional_shares", shares)
    monkeypatch.setattr(gate, "per_class_recall", recall)
    features = FRAME.loc[:, list(SCHEMA.feature_names)]
    labels = np.zeros(len(features), dtype=np.int64)
    checks = behavior_checks(_predict, features, labels, SCHEMA, BEHAVIOR)

    assert seen["flips"][0] is _predict
    assert seen["flips"][1] is features
    assert list(seen["flips"][2]) == NUMERIC
    assert NUMERIC
    assert seen["flips"][3] == BEHAVIOR.invariance_relative_step
    positive = SCHEMA.labels.index(str(SCHEMA.positive_label))
    assert seen["shares"][0] is _predict
    assert seen["shares"][1] is features
    assert seen["shares"][2] == SCHEMA.numeric_std
    assert seen["shares"][3] == {NUMERIC[0]: (positive, "increases")}
    assert seen["shares"][4] == BEHAVIOR.directional_step_std
    assert seen["recall"][0] is labels
    assert np.array_equal(seen["recall"][1], _predict(features))

    label = SCHEMA.labels[0]
    assert checks[-len(SCHEMA.labels)] == Check(
        gate="behavior",
        name=f"recall_{label}",
        passed=True,
        value=BEHAVIOR.min_recall,
        threshold=BEHAVIOR.min_recall,
        why=f"recall of {label} {BEHAVIOR.min_recall:.3f} >= {BEHAVIOR.min_recall}",
    )
    monkeypatch.setattr(gate, "per_class_recall", lambda *_: np.zeros(len(SCHEMA.labels)))
    low = behavior_checks(_predict, features, labels, SCHEMA, BEHAVIOR)[-1]
    assert low.why == f"recall of {SCHEMA.labels[-1]} {0:.3f} < {BEHAVIOR.min_recall}"
    monkeypatch.setattr(gate, "per_class_recall", lambda *_: np.zeros(len(SCHEMA.labels) - 1))
    with pytest.raises(ValueError, match="zip"):
        behavior_checks(_predict, features, labels, SCHEMA, BEHAVIOR)


# --- input schema, parity, edge, the printed table ---------------------------------------------

NUMBER = RawInput(name="x", kind="numeric", nullable=True)
COLOUR = RawInput(name="colour", kind="categorical", categories=("red", "blue"))


def test_no_baseline_inputs_is_a_passing_unknown() -> None:
    assert input_schema_check(InputLayout([NUMBER]), None) == Check(
        gate="interface",
        name="input_schema",
        passed=True,
        value="unknown",
        threshold=None,
        why="no baseline inputs",
    )


def test_an_input_schema_check_lists_every_change_and_says_breaking() -> None:
    strict = NUMBER.model_copy(update={"nullable": False})
    loose = RawInput(name="w", kind="numeric", nullable=True)
    extra = RawInput(name="y", kind="numeric", nullable=True)
    more = RawInput(name="z", kind="numeric", nullable=True)
    changes = input_changes(
        InputLayout([strict, extra, more, loose.model_copy(update={"nullable": False})]),
        InputLayout([NUMBER, COLOUR, loose]),
    )
    assert changes.now_required == ("x", "w")
    assert input_changes(InputLayout([NUMBER]), InputLayout([NUMBER])).now_required == ()
    check = input_schema_check(
        InputLayout([strict, extra, more, loose.model_copy(update={"nullable": False})]),
        InputLayout([NUMBER, COLOUR, loose]),
    )
    assert check == Check(
        gate="interface",
        name="input_schema",
        passed=True,
        value="breaking",
        threshold=None,
        why="added: y, z; removed: colour; null no longer allowed: x, w "
        "(BREAKING: clients of the baseline would be refused)",
    )
    same = input_schema_check(InputLayout([NUMBER]), InputLayout([NUMBER]))
    assert (same.why, same.name, same.passed) == (
        "same inputs as the baseline",
        "input_schema",
        True,
    )
    added = input_schema_check(InputLayout([NUMBER, extra]), InputLayout([NUMBER]))
    assert added.why == "added: y"


def test_parity_and_edge_checks_carry_their_thresholds() -> None:
    tolerance = PARAMS.export.parity_tolerance
    parity = parity_check(tolerance, tolerance, 7)
    assert (parity.name, parity.threshold, parity.passed) == ("onnx_matches_torch", tolerance, True)
    edge = PARAMS.gate.edge
    check = edge_check(0.9, 0.9 - edge.max_accuracy_drop, edge)
    assert (check.name, check.threshold, check.gate) == (
        "int8_accuracy_drop",
        edge.max_accuracy_drop,
        "edge",
    )


def _check(name: str, passed: bool) -> Check:
    return Check(gate="metric", name=name, passed=passed, value=1.0, threshold=1.0, why="because")


def test_the_printed_table_puts_failures_first_and_names_them() -> None:
    checks = [_check("good", True), _check("bad", False), _check("worse", False)]
    assert format_table(checks, NO_BASELINE) == "\n".join(
        [
            f"gate: baseline none ({NO_BASELINE.note})",
            f"  {'':4} {'gate':<9} {'check':<32} why",
            f"  {'FAIL':<4} {'metric':<9} {'bad':<32} because",
            f"  {'FAIL':<4} {'metric':<9} {'worse':<32} because",
            f"  {'ok':<4} {'metric':<9} {'good':<32} because",
            "gate: FAILED 2 of 3 checks: metric/bad, metric/worse",
        ]
    )
    passed = format_table([_check("good", True)], Baseline("git", "git main"))
    assert passed.splitlines()[0] == "gate: baseline git main"
    assert passed.splitlines()[-1] == "gate: passed all 1 checks"
