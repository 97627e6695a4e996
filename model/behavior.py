"""Behavioural checks on a trained model, in the spirit of Made-With-ML's model tests.

Each takes a `predict` function (raw feature rows -> probabilities), so the same checks run on
the exported ONNX model in the gate and on anything else in tests. Nudges and directions apply to
numeric features only: a category has no "a little more".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

Predict = Callable[[pd.DataFrame], np.ndarray]


def invariance_flip_rate(
    predict: Predict, features: pd.DataFrame, columns: Sequence[str], relative_step: float
) -> float:
    """Share of (row, feature) nudges by `relative_step` that change the predicted class, over
    the numeric `columns` (nulls stay null)."""
    if not columns or features.empty:
        return 0.0
    base = predict(features).argmax(axis=1)
    flips = 0
    for column in columns:
        nudged = features.copy()
        nudged[column] = nudged[column].astype(np.float64) * (1 + relative_step)
        flips += int((predict(nudged).argmax(axis=1) != base).sum())
    return flips / (len(features) * len(columns))


def directional_share(
    predict: Predict,
    features: pd.DataFrame,
    column: str,
    step: float,
    target: int,
    direction: Literal["increases", "decreases"],
) -> float:
    """Share of rows whose probability of class `target` moves as expected when `column` rises
    by `step` (rows where it is null are left out)."""
    rows = features[features[column].notna()]
    if rows.empty:
        return 1.0
    raised = rows.copy()
    raised[column] = raised[column].astype(np.float64) + step
    change = predict(raised)[:, target] - predict(rows)[:, target]
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
    features: pd.DataFrame,
    std: Mapping[str, float],
    expectations: Mapping[str, tuple[int, Literal["increases", "decreases"]]],
    step_std: float,
) -> dict[str, float]:
    """`directional_share` for every expectation (feature: (class index, direction)), the step
    scaled by each feature's training std."""
    return {
        name: directional_share(predict, features, name, step_std * std[name], target, direction)
        for name, (target, direction) in expectations.items()
    }
