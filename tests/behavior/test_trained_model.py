"""Behavioural tests of the model the pipeline actually trained and exported (ONNX)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.behavior import directional_shares, invariance_flip_rate
from model.features import FeatureSchema, read_split
from model.inference import onnx_session, predict_proba
from model.params import Params

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(pipeline_repo: Path) -> tuple[object, FeatureSchema, Params]:
    session = onnx_session(pipeline_repo / "models/model.onnx")
    schema = FeatureSchema.load(pipeline_repo / "data/prepared/features.json")
    return session, schema, Params.load(pipeline_repo / "params.yaml")


def test_typical_cases_get_their_own_label(
    pipeline_repo: Path, trained: tuple[object, FeatureSchema, Params]
) -> None:
    """Minimum functionality: the median training row of each class is predicted as that class."""
    session, schema, _ = trained
    train = pd.read_csv(pipeline_repo / "data/prepared/train.csv")
    for index, label in enumerate(schema.labels):
        rows = train[train[schema.label_name] == label][list(schema.feature_names)]
        typical = rows.median().to_numpy(dtype=np.float32)[None, :]
        assert predict_proba(session, typical).argmax() == index, label


def test_tiny_nudges_do_not_flip_predictions(
    pipeline_repo: Path, trained: tuple[object, FeatureSchema, Params]
) -> None:
    session, schema, params = trained
    features, _ = read_split(pipeline_repo / "data/prepared/test.csv", schema)
    behavior = params.gate.behavior
    rate = invariance_flip_rate(
        lambda rows: predict_proba(session, rows),
        features,
        behavior.invariance_relative_step,
    )
    assert rate <= behavior.max_invariance_flip_rate


def test_larger_concave_regions_raise_the_malignant_probability(
    pipeline_repo: Path, trained: tuple[object, FeatureSchema, Params]
) -> None:
    """Directional: the expectations declared in params.yaml hold for most test rows."""
    session, schema, params = trained
    features, _ = read_split(pipeline_repo / "data/prepared/test.csv", schema)
    behavior = params.gate.behavior
    shares = directional_shares(
        lambda rows: predict_proba(session, rows),
        features,
        schema.feature_names,
        schema.std,
        behavior.directional,
        behavior.directional_step_std,
        schema.positive_index,
    )
    assert shares
    assert min(shares.values()) >= behavior.min_directional_share
