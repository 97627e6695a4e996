"""Metrics behave at their known extremes; calibration error is bounded."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from model.evaluate import compute_metrics, curve_frames, expected_calibration_error
from model.features import FeatureSchema

SCHEMA = FeatureSchema(
    feature_names=("a",), label_name="y", labels=("neg", "pos"), positive_label="pos"
)
THREE = FeatureSchema(feature_names=("a",), label_name="y", labels=("p", "q", "r"))


def test_perfect_confident_predictions_score_perfectly() -> None:
    labels = np.array([0, 1, 1, 0])
    probabilities = np.eye(2)[labels]
    metrics = compute_metrics(labels, probabilities, positive=1, calibration_bins=10)
    assert metrics["accuracy"] == metrics["f1_macro"] == metrics["roc_auc"] == 1.0
    assert metrics["ece"] == pytest.approx(0.0)
    assert metrics["brier"] == pytest.approx(0.0)
    assert metrics["log_loss"] < 1e-6


def test_multiclass_roc_auc_is_one_vs_rest() -> None:
    labels = np.array([0, 1, 2, 2])
    metrics = compute_metrics(labels, np.eye(3)[labels], positive=1, calibration_bins=5)
    assert metrics["roc_auc"] == 1.0


def test_calibration_error_of_an_honest_coin_is_zero() -> None:
    """Confidence 0.5 with half of the answers right is perfectly calibrated."""
    labels = np.array([0, 1] * 50)
    probabilities = np.full((100, 2), 0.5)
    assert expected_calibration_error(labels, probabilities, bins=10) == pytest.approx(0.0)


@given(
    positives=arrays(np.float64, st.integers(1, 200), elements=st.floats(0, 1)),
    seed=st.integers(0, 1000),
)
def test_calibration_error_is_between_zero_and_one(positives: np.ndarray, seed: int) -> None:
    labels = np.random.default_rng(seed).integers(0, 2, size=len(positives))
    probabilities = np.column_stack([1 - positives, positives])
    assert 0.0 <= expected_calibration_error(labels, probabilities, bins=10) <= 1.0


def test_curves_cover_zero_to_one() -> None:
    labels = np.array([0, 0, 1, 1])
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    frames = curve_frames(labels, probabilities, SCHEMA)
    assert frames["roc"]["fpr"].iloc[0] == 0.0
    assert frames["roc"]["tpr"].iloc[-1] == 1.0
    assert set(frames["roc"]["class"]) == {"pos"}
    assert frames["confusion"]["actual"].tolist() == ["neg", "neg", "pos", "pos"]


def test_three_classes_get_one_vs_rest_curves_and_a_full_confusion_table() -> None:
    labels = np.array([0, 1, 2, 0, 1, 2])
    probabilities = np.eye(3)[[0, 1, 2, 1, 1, 0]] * 0.8 + 0.2 / 3
    frames = curve_frames(labels, probabilities, THREE)
    assert set(frames["roc"]["class"]) == {"p", "q", "r"}
    assert set(frames["precision_recall"]["class"]) == {"p", "q", "r"}
    assert frames["confusion"]["predicted"].tolist() == ["p", "q", "r", "q", "q", "p"]


def test_metrics_need_no_positive_class_for_three_classes() -> None:
    labels = np.array([0, 1, 2, 2])
    metrics = compute_metrics(labels, np.eye(3)[labels], positive=None, calibration_bins=5)
    assert metrics["roc_auc"] == metrics["accuracy"] == 1.0


def test_bootstrap_intervals_hold_the_point_estimate_and_narrow_with_more_rows() -> None:
    from model.evaluate import bootstrap_intervals
    from model.params import BootstrapParams

    params = BootstrapParams(resamples=200, confidence=0.9, seed=1)
    rng = np.random.default_rng(0)

    def widths(rows: int) -> dict[str, float]:
        labels = rng.integers(0, 2, rows)
        p_one = np.clip(labels * 0.3 + rng.uniform(0, 0.7, rows), 0.01, 0.99)
        probabilities = np.column_stack([1 - p_one, p_one])
        point = compute_metrics(labels, probabilities, positive=1, calibration_bins=10)
        intervals = bootstrap_intervals(labels, probabilities, 1, 10, params)
        for name, interval in intervals.items():
            assert interval["low"] - 1e-6 <= point[name] <= interval["high"] + 1e-6, name
        return {name: i["high"] - i["low"] for name, i in intervals.items()}

    small, large = widths(60), widths(2000)
    assert set(small) == {"accuracy", "f1_macro", "roc_auc", "log_loss", "ece", "brier"}
    assert all(large[name] < small[name] for name in small)
