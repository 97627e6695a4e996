"""Behavioural checks on a trained model, in the spirit of Made-With-ML's model tests.

Each takes a `predict` function (features -> probabilities), so the same checks run on the
exported ONNX model in the gate and on anything else in tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]


def invariance_flip_rate(predict: Predict, features: np.ndarray, relative_step: float) -> float:
    """Share of (row, feature) nudges by `relative_step` that change the predicted class."""
    base = predict(features).argmax(axis=1)
    flips = 0
    for column in range(features.shape[1]):
        nudged = features.copy()
        nudged[:, column] *= 1 + relative_step
        flips += int((predict(nudged).argmax(axis=1) != base).sum())
    return flips / features.size


def directional_share(
    predict: Predict,
    features: np.ndarray,
    column: int,
    step: float,
    positive: int,
    direction: Literal["increases", "decreases"],
) -> float:
    """Share of rows whose positive-class probability moves as expected when `column` rises."""
    raised = features.copy()
    raised[:, column] += step
    change = predict(raised)[:, positive] - predict(features)[:, positive]
    # A saturated probability cannot move further: count "did not go the wrong way".
    tolerance = 1e-6
    moved = change >= -tolerance if direction == "increases" else change <= tolerance
    return float(moved.mean())


def per_class_recall(labels: np.ndarray, probabilities: np.ndarray) -> list[float]:
    predicted = probabilities.argmax(axis=1)
    return [
        float((predicted[labels == index] == index).mean()) if (labels == index).any() else 1.0
        for index in range(probabilities.shape[1])
    ]


def directional_shares(
    predict: Predict,
    features: np.ndarray,
    feature_names: Sequence[str],
    std: Sequence[float],
    expectations: Mapping[str, Literal["increases", "decreases"]],
    step_std: float,
    positive: int,
) -> dict[str, float]:
    """`directional_share` for every expectation, the step scaled by each feature's std."""
    shares = {}
    for name, direction in expectations.items():
        column = list(feature_names).index(name)
        step = step_std * std[column]
        shares[name] = directional_share(predict, features, column, step, positive, direction)
    return shares
