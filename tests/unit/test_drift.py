"""Drift detection: quiet on traffic like the training data, loud and specific on drift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from model.params import DriftParams, Params
from monitoring.drift import judge, psi
from tests.conftest import REPO_ROOT

PARAMS = Params.load(REPO_ROOT / "params.yaml").monitoring.drift
FEATURES = [
    c for c in pd.read_csv(REPO_ROOT / "data/raw/breast_cancer.csv").columns if c != "diagnosis"
]


@pytest.fixture(scope="module")
def reference(raw_frame: pd.DataFrame) -> pd.DataFrame:
    return raw_frame[FEATURES]


def _traffic(reference: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """Live traffic drawn from the reference distribution (a resample), as the log has it."""
    sample = reference.sample(rows, replace=True, random_state=seed).reset_index(drop=True)
    positive = np.random.default_rng(seed).uniform(size=rows)
    sample["_request_id"] = [f"r{i}" for i in range(rows)]
    sample["_row"] = 0
    sample["_label"] = np.where(positive > 0.5, "malignant", "benign")
    sample["_probabilities"] = [[1 - p, p] for p in positive]
    return sample


def _judge(
    reference: pd.DataFrame,
    logged: pd.DataFrame,
    feedback: pd.DataFrame | None = None,
    params: DriftParams = PARAMS,
) -> dict:  # type: ignore[type-arg]
    scores = np.random.default_rng(0).uniform(size=len(reference))
    return judge(reference, scores, logged, feedback if feedback is not None else pd.DataFrame(),
                 0.98, 1, params)  # fmt: skip


@given(seed=st.integers(0, 10_000))
def test_psi_is_never_negative(seed: int) -> None:
    rng = np.random.default_rng(seed)
    assert psi(rng.normal(size=300), rng.normal(rng.uniform(-1, 1), size=200), 10) >= 0


def test_psi_of_a_sample_against_itself_is_near_zero() -> None:
    values = np.random.default_rng(1).normal(size=2000)
    assert psi(values, values, 10) < 1e-6


def test_traffic_like_the_training_data_shows_no_drift(reference: pd.DataFrame) -> None:
    report = _judge(reference, _traffic(reference, 2000, seed=3))
    assert report["drifted_features"] == []
    assert report["retrain"] is False


def test_a_shifted_feature_is_detected_and_named(reference: pd.DataFrame) -> None:
    logged = _traffic(reference, 2000, seed=4)
    logged["mean_radius"] += 1.0 * reference["mean_radius"].std()
    report = _judge(reference, logged)
    assert report["drifted_features"] == ["mean_radius"]
    assert report["retrain"] is True


def test_a_rescaled_feature_is_detected_and_named(reference: pd.DataFrame) -> None:
    logged = _traffic(reference, 2000, seed=5)
    logged["worst_area"] *= 1.5  # e.g. a unit change upstream
    assert "worst_area" in _judge(reference, logged)["drifted_features"]


def test_label_flips_are_concept_drift(reference: pd.DataFrame) -> None:
    logged = _traffic(reference, 500, seed=6)
    flipped = {"malignant": "benign", "benign": "malignant"}
    feedback = pd.DataFrame(
        {
            "request_id": logged["_request_id"],
            "row": 0,
            "true_label": [flipped[label] for label in logged["_label"]],
        }
    )
    report = _judge(reference, logged, feedback)
    assert report["concept"]["drifted"] is True
    assert report["retrain"] is True


def test_too_little_traffic_gives_no_verdict(reference: pd.DataFrame) -> None:
    report = _judge(reference, _traffic(reference, PARAMS.min_rows - 1, seed=7))
    assert report["retrain"] is False
    assert "no verdict" in report["summary"]


def test_thresholds_come_from_params(reference: pd.DataFrame) -> None:
    """The same shift passes once params.yaml tolerates it."""
    logged = _traffic(reference, 2000, seed=8)
    logged["mean_radius"] += 1.0 * reference["mean_radius"].std()
    lenient = PARAMS.model_copy(update={"max_psi": 10.0, "ks_alpha": 1e-300})
    assert _judge(reference, logged, params=lenient)["drifted_features"] == []
