"""Permutation importance finds the feature that decides the label (a categorical, shuffled as one
column), on the exported ONNX model fed raw rows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from model.contract import Contract
from model.export import to_onnx
from model.features import FeatureSchema, encode, fit_schema, label_codes
from model.importance import as_json, permutation_ranking, rank_moves
from model.inference import layout_of, onnx_session, predict_proba
from model.params import ImportanceParams, TrainParams
from model.train import train

NAMES = ("noise a", "noise.b", "decider", "noise/c", "noise d")
PARAMS = ImportanceParams(metric="log_loss", repeats=5, seed=0)
CONTRACT = Contract.parse(
    {
        "label": {"name": "y", "values": ["no", "yes"]},
        "features": [
            {"name": "noise a"},
            {"name": "noise.b"},
            {"name": "decider", "kind": "categorical", "values": ["low", "high", "mid"]},
            {"name": "noise/c"},
            {"name": "noise d", "kind": "boolean"},
        ],
        "table": {"min_rows": 1, "max_duplicate_fraction": 1, "min_class_fraction": 0},
    }
)


def _one_feature_decides(rows: int = 400) -> tuple[pd.DataFrame, np.ndarray, FeatureSchema]:
    """Five raw features of three kinds and different scales; the label is whether the
    categorical `decider` is `high`: permuting it, one column of strings, must hurt most."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "noise a": rng.normal(size=rows),
            "noise.b": rng.normal(size=rows) * 50,
            "decider": rng.choice(["low", "high", "mid"], rows),
            "noise/c": rng.normal(size=rows) * 0.1,
            "noise d": rng.random(rows) < 0.5,
        }
    )
    frame["y"] = np.where(frame["decider"] == "high", "yes", "no")
    schema = fit_schema(frame, CONTRACT)
    return frame.loc[:, list(NAMES)], label_codes(frame, schema), schema


@pytest.fixture(scope="module")
def onnx_model() -> bytes:
    frame, labels, schema = _one_feature_decides()
    params = TrainParams(seed=0, hidden_units=(16,), epochs=150, learning_rate=0.03, weight_decay=0)
    network, _ = train(encode(frame, schema), labels, schema, params)
    return to_onnx(network, schema, frame, 18)


def _predict(model: bytes) -> Callable[[pd.DataFrame], np.ndarray]:
    session = onnx_session(model)
    layout = layout_of(session)
    assert layout is not None
    return lambda rows: predict_proba(session, layout.column_feeds(rows))


@pytest.mark.parametrize("metric", ["log_loss", "accuracy", "roc_auc"])
def test_the_deciding_feature_ranks_first(onnx_model: bytes, metric: str) -> None:
    features, labels, _ = _one_feature_decides()
    params = ImportanceParams.model_validate({"metric": metric, "repeats": 5, "seed": 0})
    ranking = permutation_ranking(_predict(onnx_model), features, labels, 2, params)
    assert ranking[0].feature == "decider"
    assert ranking[0].importance > 10 * max(abs(row.importance) for row in ranking[1:])
    assert [row.rank for row in ranking] == [1, 2, 3, 4, 5]


def test_same_seed_same_ranking(onnx_model: bytes) -> None:
    features, labels, _ = _one_feature_decides()
    predict = _predict(onnx_model)

    def rank() -> dict[str, object]:
        return as_json(permutation_ranking(predict, features, labels, 2, PARAMS), PARAMS)

    assert rank() == rank()


def test_a_model_that_ignores_every_feature_has_zero_importance() -> None:
    features, labels, _ = _one_feature_decides(50)
    ranking = permutation_ranking(
        lambda rows: np.tile([0.3, 0.7], (len(rows), 1)), features, labels, 2, PARAMS
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
