"""The drift verdict pinned where `make mutation` found it unpinned: the whole report of a window
too short to judge, and how `judge` combines the feature, prediction and concept verdicts, with
those measurements fixed (they have their own tests in test_drift.py, too slow to repeat per
mutant)."""

from __future__ import annotations

from itertools import product
from typing import Any, cast

import pytest

import monitoring.drift as drift
from monitoring.calibration import Calibration
from monitoring.drift import judge
from monitoring.report import ConceptDrift, DriftReport, FeatureDrift, PredictionDrift, quoted
from tests.unit.test_boundaries_drift import DRIFT, FEATURES, _reference, _window


def test_a_window_too_short_to_judge_reports_every_part_as_not_judged() -> None:
    reference, window = _reference(), _window(DRIFT.min_rows - 1)
    summary = f"only {DRIFT.min_rows - 1} logged rows, fewer than {DRIFT.min_rows}: no verdict"
    assert judge(reference, window, 0.9, DRIFT) == DriftReport(
        retrain=False,
        rows=DRIFT.min_rows - 1,
        reference_rows=len(reference),
        summary=summary,
        drifted_features=[],
        features=[],
        prediction=PredictionDrift("none", False, summary),
        concept=ConceptDrift(judged=False, rows=0, why=summary),
        window=window.summary(),
        false_alarm_rate=DRIFT.false_alarm_rate,
        data_false_alarm_rate=DRIFT.false_alarm_rate,
        effective_rows=0,
    )


def test_a_judged_concept_carries_the_evaluation_accuracy() -> None:
    rows = DRIFT.min_feedback_rows
    concept = drift.concept_drift(_window(rows, rows, rows), 0.9, DRIFT, 0.01)
    assert (concept.judged, concept.evaluation_accuracy) == (True, 0.9)


def _feature(name: str, drifted: bool, fired: list[str]) -> FeatureDrift:
    return FeatureDrift(
        feature=name,
        kind="numeric",
        drifted=drifted,
        fired=fired,
        why="fixed",
        test="ks",
        statistic=0.0,
        threshold=0.0,
        pvalue=1.0,
        psi=None,
        reference_missing=0.0,
        current_missing=0.0,
        missing_threshold=0.0,
        missing_pvalue=1.0,
        unseen=0,
        unseen_share=0.0,
        unseen_examples=[],
    )


@pytest.mark.parametrize(
    ("features", "prediction", "concept"), list(product([False, True], repeat=3))
)
def test_any_one_drifted_verdict_is_enough_to_retrain(
    monkeypatch: pytest.MonkeyPatch, features: bool, prediction: bool, concept: bool
) -> None:
    first, second, third = FEATURES[:3]
    columns = [
        _feature(first, features, ["ks", "missing_rate"] if features else []),
        _feature(second, False, []),
        _feature(third, features, ["ks"] if features else []),
    ]
    predicted = PredictionDrift("predicted_labels", prediction, "fixed")
    judged = ConceptDrift(judged=True, rows=9, why="fixed", drifted=concept)
    calls: dict[str, tuple[Any, ...]] = {}

    def concept_drift(*args: Any) -> ConceptDrift:
        calls["concept"] = args
        return judged

    monkeypatch.setattr(drift, "feature_drift", lambda *_: columns)
    monkeypatch.setattr(drift, "prediction_drift", lambda *_: predicted)
    monkeypatch.setattr(drift, "concept_drift", concept_drift)
    calibration = cast(Calibration, type("Fixed", (), {"window_rows": 7})())
    reference, window = _reference(), _window(DRIFT.min_rows, DRIFT.min_feedback_rows)
    report = judge(reference, window, 0.9, DRIFT, calibration)

    half = DRIFT.false_alarm_rate / 2
    assert calls["concept"] == (window, 0.9, DRIFT, half)
    summary = (
        f"Drifted features: {quoted(first)} (ks, missing_rate), {quoted(third)} (ks)."
        if features
        else "No feature drifted."
    )
    assert report == DriftReport(
        retrain=features or prediction or concept,
        rows=len(window),
        reference_rows=len(reference),
        summary=summary,
        drifted_features=[first, third] if features else [],
        features=columns,
        prediction=predicted,
        concept=judged,
        window=window.summary(),
        false_alarm_rate=DRIFT.false_alarm_rate,
        data_false_alarm_rate=half,
        effective_rows=7,
    )
