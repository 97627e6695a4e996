"""Behavioural tests of the model the pipeline actually trained and exported (ONNX), fed raw rows.

Everything they know of the data comes from features.json and params.yaml."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest

from model.behavior import directional_shares, invariance_flip_rate
from model.features import FeatureSchema, read_frame, read_split
from model.inference import onnx_session, predict_proba
from model.params import Params

pytestmark = pytest.mark.slow

Trained = tuple[ort.InferenceSession, FeatureSchema, Params]


@pytest.fixture(scope="module")
def trained(pipeline_repo: Path) -> Trained:
    session = onnx_session(pipeline_repo / "models/model.onnx")
    schema = FeatureSchema.load(pipeline_repo / "data/prepared/features.json")
    return session, schema, Params.load(pipeline_repo / "params.yaml")


def _predict(
    session: ort.InferenceSession, schema: FeatureSchema, rows: pd.DataFrame
) -> np.ndarray:
    return predict_proba(session, schema.layout.column_feeds(rows))


def _typical(rows: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    """The median of each numeric feature, the most frequent value of every other one."""
    numeric = {item.name for item in schema.numeric if item.kind == "numeric"}
    return pd.DataFrame(
        [
            {
                name: rows[name].median() if name in numeric else rows[name].mode(dropna=True)[0]
                for name in schema.feature_names
            }
        ]
    )


def test_typical_cases_get_their_own_label(pipeline_repo: Path, trained: Trained) -> None:
    """Minimum functionality: the typical training row of each class is predicted as that class."""
    session, schema, _ = trained
    train = read_frame(pipeline_repo / "data/prepared/train.csv", schema)
    for index, label in enumerate(schema.labels):
        rows = train[train[schema.label_name] == label]
        assert _predict(session, schema, _typical(rows, schema)).argmax() == index, label


def test_tiny_nudges_do_not_flip_predictions(pipeline_repo: Path, trained: Trained) -> None:
    session, schema, params = trained
    features, _ = read_split(pipeline_repo / "data/prepared/test.csv", schema)
    behavior = params.gate.behavior
    numeric = [item.name for item in schema.numeric if item.kind == "numeric"]
    rate = invariance_flip_rate(
        lambda rows: _predict(session, schema, rows),
        features,
        numeric,
        behavior.invariance_relative_step,
    )
    assert rate <= behavior.max_invariance_flip_rate


def test_declared_directions_hold(pipeline_repo: Path, trained: Trained) -> None:
    """Directional: the expectations declared in params.yaml hold for most test rows."""
    session, schema, params = trained
    behavior = params.gate.behavior
    expectations = behavior.expectations()
    if not expectations:
        pytest.skip("params.yaml declares no directional expectation for this table")
    features, _ = read_split(pipeline_repo / "data/prepared/test.csv", schema)
    shares = directional_shares(
        lambda rows: _predict(session, schema, rows),
        features,
        schema.numeric_std,
        {
            name: (schema.labels.index(item.label or str(schema.positive_label)), item.effect)
            for name, item in expectations.items()
        },
        behavior.directional_step_std,
    )
    assert min(shares.values()) >= behavior.min_directional_share


def test_nulls_and_unseen_values_still_get_probabilities(
    pipeline_repo: Path, trained: Trained
) -> None:
    """Raw rows with every nullable feature null and every categorical unseen are answered."""
    session, schema, _ = trained
    from model.export import edge_rows

    features, _ = read_split(pipeline_repo / "data/prepared/test.csv", schema)
    rows = pd.concat([features.head(5), edge_rows(features, schema)], ignore_index=True)
    probabilities = _predict(session, schema, rows)
    assert np.isfinite(probabilities).all()
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
