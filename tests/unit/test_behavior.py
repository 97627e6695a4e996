"""Behavioural checks measure what they claim on models whose behaviour we know."""

import numpy as np
import pandas as pd

from model.behavior import directional_share, invariance_flip_rate, per_class_recall

COLUMNS = ["a 1", "b.2", "c/3"]


def _threshold_model(rows: pd.DataFrame) -> np.ndarray:
    """P(positive) = sigmoid(first feature - 1): increasing in it, blind to the rest (a null
    counts as 0)."""
    first = rows["a 1"].astype(np.float64).fillna(0.0).to_numpy()
    positive = 1 / (1 + np.exp(-(first - 1.0)))
    return np.column_stack([1 - positive, positive])


ROWS = pd.DataFrame(np.random.default_rng(0).normal(size=(200, 3)), columns=COLUMNS)


def test_a_stable_model_has_few_flips_under_tiny_nudges() -> None:
    assert invariance_flip_rate(_threshold_model, ROWS, COLUMNS, 1e-4) <= 0.01


def test_rows_on_the_boundary_flip() -> None:
    """Rows sitting at the decision boundary flip when nudged: the check sees it."""
    boundary = pd.DataFrame(np.full((10, 3), 5.0), columns=COLUMNS)
    boundary["a 1"] = 0.9999
    # Only the first feature matters, so 1 flip in 3 nudges per row.
    assert invariance_flip_rate(_threshold_model, boundary, COLUMNS, 1e-3) == 1 / 3


def test_only_the_named_columns_are_nudged() -> None:
    boundary = pd.DataFrame(np.full((10, 3), 5.0), columns=COLUMNS)
    boundary["a 1"] = 0.9999
    assert invariance_flip_rate(_threshold_model, boundary, ["b.2", "c/3"], 1e-3) == 0.0
    assert invariance_flip_rate(_threshold_model, boundary, [], 1e-3) == 0.0


def test_directional_share_follows_the_model() -> None:
    assert directional_share(_threshold_model, ROWS, "a 1", 1.0, 1, "increases") == 1.0
    assert directional_share(_threshold_model, ROWS, "a 1", 1.0, 1, "decreases") < 0.05


def test_rows_with_a_null_are_left_out_of_directions() -> None:
    rows = ROWS.astype(object)
    rows.loc[:99, "a 1"] = None
    assert directional_share(_threshold_model, rows, "a 1", 1.0, 1, "increases") == 1.0


def test_per_class_recall() -> None:
    labels = np.array([0, 0, 1, 1])
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.1, 0.9], [0.3, 0.7]])
    assert per_class_recall(labels, probabilities) == [0.5, 1.0]
