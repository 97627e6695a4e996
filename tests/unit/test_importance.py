"""Permutation importance finds the feature that decides the label, on the exported ONNX model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from model.export import to_onnx
from model.features import FeatureSchema
from model.importance import as_json, permutation_ranking, rank_moves
from model.inference import onnx_session, predict_proba
from model.params import ImportanceParams, TrainParams
from model.train import train

NAMES = ("noise_a", "noise_b", "decider", "noise_c", "noise_d")
PARAMS = ImportanceParams(metric="log_loss", repeats=5, seed=0)


def _one_feature_decides(rows: int = 400) -> tuple[np.ndarray, np.ndarray, FeatureSchema]:
    """Five features on different scales; the label is whether `decider` is above 0."""
    rng = np.random.default_rng(3)
    features = rng.normal(size=(rows, len(NAMES))) * np.array([1.0, 50.0, 2.0, 0.1, 7.0])
    labels = (features[:, NAMES.index("decider")] > 0).astype(np.int64)
    schema = FeatureSchema(
        feature_names=NAMES,
        label_name="y",
        labels=("no", "yes"),
        positive_label="yes",
        mean=tuple(features.mean(axis=0).tolist()),
        std=tuple(features.std(axis=0).tolist()),
    )
    return features.astype(np.float32), labels, schema


@pytest.fixture(scope="module")
def onnx_model() -> bytes:
    features, labels, schema = _one_feature_decides()
    params = TrainParams(seed=0, hidden_units=(16,), epochs=150, learning_rate=0.03, weight_decay=0)
    network, _ = train(features, labels, schema, params)
    return to_onnx(network, features[:8], 18)


@pytest.mark.parametrize("metric", ["log_loss", "accuracy", "roc_auc"])
def test_the_deciding_feature_ranks_first(onnx_model: bytes, metric: str) -> None:
    features, labels, _ = _one_feature_decides()
    session = onnx_session(onnx_model)
    params = ImportanceParams.model_validate({"metric": metric, "repeats": 5, "seed": 0})
    ranking = permutation_ranking(
        lambda rows: predict_proba(session, rows), features, labels, NAMES, 2, params
    )
    assert ranking[0].feature == "decider"
    assert ranking[0].importance > 10 * max(abs(row.importance) for row in ranking[1:])
    assert [row.rank for row in ranking] == [1, 2, 3, 4, 5]


def test_same_seed_same_ranking(onnx_model: bytes) -> None:
    features, labels, _ = _one_feature_decides()
    session = onnx_session(onnx_model)

    def rank() -> dict[str, object]:
        ranking = permutation_ranking(
            lambda rows: predict_proba(session, rows), features, labels, NAMES, 2, PARAMS
        )
        return as_json(ranking, PARAMS)

    assert rank() == rank()


def test_a_model_that_ignores_every_feature_has_zero_importance() -> None:
    features, labels, _ = _one_feature_decides(50)
    ranking = permutation_ranking(
        lambda rows: np.tile([0.3, 0.7], (len(rows), 1)), features, labels, NAMES, 2, PARAMS
    )
    assert all(row.importance == 0 for row in ranking)
    assert [row.feature for row in ranking] == sorted(NAMES)  # ties: by name, stable


def _rows(names: list[str]) -> list[dict[str, object]]:
    return [{"feature": name, "rank": rank} for rank, name in enumerate(names, start=1)]


@given(st.permutations(list(NAMES)), st.permutations(list(NAMES)))
def test_rank_moves_undo_the_permutation(before: list[str], after: list[str]) -> None:
    moves = rank_moves(_rows(after), _rows(before))
    for rank, name in enumerate(after, start=1):
        assert before.index(name) + 1 - rank == moves[name]
    assert sum(value or 0 for value in moves.values()) == 0


def test_rank_moves_without_a_baseline_or_for_a_new_feature() -> None:
    assert rank_moves(_rows(["a", "b"]), None) == {"a": None, "b": None}
    assert rank_moves(_rows(["a", "new"]), _rows(["a", "b"])) == {"a": 0, "new": None}
