"""Behavioural checks measure what they claim on models whose behaviour we know."""

import numpy as np

from model.behavior import directional_share, invariance_flip_rate, per_class_recall


def _threshold_model(rows: np.ndarray) -> np.ndarray:
    """P(positive) = sigmoid(first feature - 1): increasing in feature 0, blind to the rest."""
    positive = 1 / (1 + np.exp(-(rows[:, 0] - 1.0)))
    return np.column_stack([1 - positive, positive])


ROWS = np.random.default_rng(0).normal(size=(200, 3)).astype(np.float32)


def test_a_stable_model_has_few_flips_under_tiny_nudges() -> None:
    assert invariance_flip_rate(_threshold_model, ROWS, 1e-4) <= 0.01


def test_rows_on_the_boundary_flip() -> None:
    """Rows sitting at the decision boundary flip when nudged: the check sees it."""
    boundary = np.full((10, 3), 5.0)
    boundary[:, 0] = 0.9999
    # Only feature 0 matters, so 1 flip in 3 nudges per row.
    assert invariance_flip_rate(_threshold_model, boundary, 1e-3) == 1 / 3


def test_directional_share_follows_the_model() -> None:
    assert directional_share(_threshold_model, ROWS, 0, 1.0, 1, "increases") == 1.0
    assert directional_share(_threshold_model, ROWS, 0, 1.0, 1, "decreases") < 0.05


def test_per_class_recall() -> None:
    labels = np.array([0, 0, 1, 1])
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.1, 0.9], [0.3, 0.7]])
    assert per_class_recall(labels, probabilities) == [0.5, 1.0]
