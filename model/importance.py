"""Global feature importance: how much worse the model gets when one feature is shuffled.

Permutation importance (scikit-learn's `permutation_importance`) on any `predict_proba`, so it
runs on the exported ONNX model, exactly what serving runs, and on a baseline model alike. It
needs no access to the model's internals and no extra dependency, and on a model this size it
takes well under a second.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as sk
from sklearn.inspection import permutation_importance

from model.params import ImportanceParams

PredictProba = Callable[[pd.DataFrame], np.ndarray]  # raw feature rows -> probabilities


@dataclass(frozen=True)
class FeatureImportance:
    feature: str
    rank: int  # 1 = most important
    importance: float  # mean score drop when the feature is shuffled (higher = more important)
    std: float  # over the shuffles


class _Fitted:
    """The least scikit-learn needs to treat a prediction function as an estimator."""

    def __init__(self, predict_proba: PredictProba) -> None:
        self.predict_proba = predict_proba

    def fit(self, features: pd.DataFrame, labels: np.ndarray) -> _Fitted:
        return self


def _scorer(metric: str, n_classes: int) -> Callable[[_Fitted, pd.DataFrame, np.ndarray], float]:
    """A score where higher is better, so the importance is the drop under shuffling."""
    classes = list(range(n_classes))

    def score(model: _Fitted, features: pd.DataFrame, labels: np.ndarray) -> float:
        probabilities = model.predict_proba(features)
        if metric == "log_loss":
            return -float(sk.log_loss(labels, probabilities, labels=classes))
        if metric == "accuracy":
            return float(np.mean(probabilities.argmax(axis=1) == labels))
        if n_classes == 2:
            return float(sk.roc_auc_score(labels == 1, probabilities[:, 1]))
        return float(sk.roc_auc_score(labels, probabilities, multi_class="ovr", labels=classes))

    return score


def permutation_ranking(
    predict_proba: PredictProba,
    features: pd.DataFrame,
    labels: np.ndarray,
    n_classes: int,
    params: ImportanceParams,
) -> list[FeatureImportance]:
    """Every raw feature (a categorical is shuffled as one column), most important first; ties
    broken by name so the order is stable."""
    result = permutation_importance(
        _Fitted(predict_proba),
        features,
        labels,
        scoring=_scorer(params.metric, n_classes),
        n_repeats=params.repeats,
        random_state=params.seed,
    )
    rows = sorted(
        zip(
            [str(name) for name in features.columns],
            result.importances_mean,
            result.importances_std,
            strict=True,
        ),
        key=lambda row: (-round(float(row[1]), 9), row[0]),
    )
    return [
        FeatureImportance(name, rank, round(float(mean), 6), round(float(std), 6))
        for rank, (name, mean, std) in enumerate(rows, start=1)
    ]


def as_json(ranking: Sequence[FeatureImportance], params: ImportanceParams) -> dict[str, Any]:
    """What `evaluate` writes: the method, so a reader knows what the numbers mean, and the rows."""
    return {
        "method": "permutation",
        "metric": params.metric,
        "repeats": params.repeats,
        "features": [asdict(row) for row in ranking],
    }


def importance_label(metric: str) -> str:
    """What the importance numbers are, in words: shuffling raises a loss and lowers a score."""
    return f"{metric} {'rise' if metric == 'log_loss' else 'drop'} when shuffled"


def rank_moves(
    candidate: Sequence[Mapping[str, Any]], baseline: Sequence[Mapping[str, Any]] | None
) -> dict[str, int | None]:
    """Per candidate feature: baseline rank minus candidate rank (positive = moved up), or None
    when the baseline has no rank for it."""
    before = {str(row["feature"]): int(row["rank"]) for row in baseline or ()}
    return {
        str(row["feature"]): (
            before[str(row["feature"])] - int(row["rank"])
            if str(row["feature"]) in before
            else None
        )
        for row in candidate
    }
