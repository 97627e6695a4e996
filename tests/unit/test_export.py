"""The exported ONNX model takes raw rows (strings, nulls, unseen categories), does the fitted
preprocessing itself and matches torch on the encoded rows."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from model.export import UNSEEN_CATEGORY, edge_rows, example_rows, metadata, parity, to_onnx
from model.features import FeatureSchema, encode, fit_schema
from model.inference import layout_of, onnx_session, predict_proba
from model.network import Classifier
from model.quantize import quantize
from tests.tables import mixed_contract, mixed_frame

CONTRACT = mixed_contract()
RAW = mixed_frame()
FRAME = RAW.loc[:, list(CONTRACT.feature_names)]
SCHEMA = fit_schema(RAW, CONTRACT)


def _network(seed: int, schema: FeatureSchema = SCHEMA) -> Classifier:
    import torch

    torch.manual_seed(seed)
    return Classifier(len(schema.encoded_names), (16, 8), len(schema.labels)).eval()


@pytest.fixture(scope="module")
def exported() -> tuple[Classifier, bytes, ort.InferenceSession]:
    network = _network(0)
    model = to_onnx(network, SCHEMA, FRAME, opset=18)
    return network, model, onnx_session(model)


@st.composite
def raw_rows(draw: st.DrawFn) -> pd.DataFrame:
    """Rows of the mixed table with nulls where allowed and unseen categories anywhere."""
    rows = FRAME.sample(draw(st.integers(1, 64)), random_state=draw(st.integers(0, 999)))
    rows = rows.reset_index(drop=True).astype(object)
    for item in SCHEMA.inputs:
        if item.nullable and draw(st.booleans()):
            rows.loc[0, item.name] = None
        if item.kind == "categorical" and draw(st.booleans()):
            rows.loc[len(rows) - 1, item.name] = draw(st.text(max_size=12))
    return rows


@given(rows=raw_rows())
def test_onnx_matches_torch_on_any_raw_rows(
    exported: tuple[Classifier, bytes, ort.InferenceSession], rows: pd.DataFrame
) -> None:
    network, _, session = exported
    assert parity(network, session, rows, SCHEMA) <= 1e-5


def test_outputs_are_probabilities(
    exported: tuple[Classifier, bytes, ort.InferenceSession],
) -> None:
    _, _, session = exported
    probabilities = predict_proba(session, SCHEMA.layout.column_feeds(FRAME.head(3)))
    assert probabilities.shape == (3, 3)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)


def test_rows_and_columns_give_the_same_feeds(
    exported: tuple[Classifier, bytes, ort.InferenceSession],
) -> None:
    """What the service builds from JSON rows equals what batch scoring builds from a frame."""
    _, _, session = exported
    rows = example_rows(FRAME, SCHEMA, count=20)
    from_rows = predict_proba(session, SCHEMA.layout.feeds(rows))
    from_columns = predict_proba(session, SCHEMA.layout.column_feeds(FRAME.head(20)))
    np.testing.assert_allclose(from_rows, from_columns, atol=1e-6)


def test_edge_rows_hold_a_null_for_every_nullable_feature_and_an_unseen_value() -> None:
    edges = edge_rows(FRAME, SCHEMA)
    for item in SCHEMA.inputs:
        if item.nullable:
            assert edges[item.name].isna().any(), item.name
        if item.kind == "categorical":
            assert (edges[item.name] == UNSEEN_CATEGORY).any(), item.name


def test_parity_catches_a_different_model(
    exported: tuple[Classifier, bytes, ort.InferenceSession],
) -> None:
    _, _, session = exported
    assert parity(_network(1), session, FRAME.head(20), SCHEMA) > 1e-3


def test_the_file_describes_its_own_inputs(
    exported: tuple[Classifier, bytes, ort.InferenceSession],
) -> None:
    _, _, session = exported
    layout = layout_of(session)
    assert layout is not None
    assert layout.inputs == SCHEMA.inputs
    assert {item.name for item in session.get_inputs()} == {"numeric", "categorical"}


def test_a_numeric_only_table_has_no_string_input() -> None:
    numeric = CONTRACT.model_copy(
        update={"features": tuple(f for f in CONTRACT.features if f.kind == "numeric")}
    )
    schema = fit_schema(RAW, numeric)
    frame = RAW.loc[:, list(schema.feature_names)]
    session = onnx_session(to_onnx(_network(0, schema), schema, frame, 18))
    assert [item.name for item in session.get_inputs()] == ["numeric"]
    assert parity(_network(0, schema), session, frame, schema) <= 1e-5


def test_export_is_byte_for_byte_repeatable(
    exported: tuple[Classifier, bytes, ort.InferenceSession],
) -> None:
    network, model, _ = exported
    assert to_onnx(network, SCHEMA, FRAME, opset=18) == model


def test_the_int8_copy_takes_the_same_raw_rows(
    exported: tuple[Classifier, bytes, ort.InferenceSession], tmp_path: Path
) -> None:
    _, model, session = exported
    (tmp_path / "model.onnx").write_bytes(model)
    quantize(tmp_path / "model.onnx", tmp_path / "int8.onnx")
    int8 = onnx_session(tmp_path / "int8.onnx")
    feeds = SCHEMA.layout.column_feeds(edge_rows(FRAME, SCHEMA))
    np.testing.assert_allclose(predict_proba(int8, feeds), predict_proba(session, feeds), atol=0.1)


def test_metadata_hashes_the_exact_bytes_and_lists_the_inputs(
    exported: tuple[Classifier, bytes, ort.InferenceSession],
) -> None:
    _, model, _ = exported
    info = metadata(SCHEMA, model, 18, examples=example_rows(FRAME, SCHEMA))
    assert info["sha256"] == hashlib.sha256(model).hexdigest()
    assert info["feature_names"] == list(SCHEMA.feature_names)
    assert [item["name"] for item in info["inputs"]] == list(SCHEMA.feature_names)
    assert info["labels"] == list(CONTRACT.label.values)
    assert info["positive_label"] is None
    assert len(info["encoded_features"]) == encode(FRAME.head(1), SCHEMA).shape[1]


def test_example_rows_are_json_a_client_sends() -> None:
    import json

    rows = example_rows(FRAME.assign(**{"weight.kg": None}), SCHEMA)
    text = json.dumps(rows)
    assert "NaN" not in text
    assert all(row["weight.kg"] is None for row in rows)
    assert all(isinstance(row["Is Active"], bool | None) for row in rows)
