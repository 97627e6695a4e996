"""The ONNX export matches torch for any batch size and refuses a disagreeing model."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import given
from hypothesis import strategies as st

from model.export import metadata, parity, to_onnx
from model.features import FeatureSchema
from model.inference import onnx_session
from model.network import Classifier

N_FEATURES = 5
SCHEMA = FeatureSchema(
    feature_names=tuple(f"f{i}" for i in range(N_FEATURES)),
    label_name="y",
    labels=("a", "b", "c"),
    positive_label="b",
    mean=(1.0,) * N_FEATURES,
    std=(2.0,) * N_FEATURES,
)


def _network(seed: int) -> Classifier:
    import torch

    torch.manual_seed(seed)
    return Classifier(N_FEATURES, (16, 8), 3, SCHEMA.mean, SCHEMA.std).eval()


@pytest.fixture(scope="module")
def exported() -> tuple[Classifier, bytes, ort.InferenceSession]:
    network = _network(0)
    example = np.random.default_rng(0).normal(size=(4, N_FEATURES)).astype(np.float32)
    model = to_onnx(network, example, opset=18)
    return network, model, onnx_session(model)


@given(batch=st.integers(1, 300), seed=st.integers(0, 1000))
def test_onnx_matches_torch_for_any_batch(
    exported: tuple[Classifier, bytes, ort.InferenceSession], batch: int, seed: int
) -> None:
    network, _, session = exported
    rows = np.random.default_rng(seed).normal(0, 50, size=(batch, N_FEATURES)).astype(np.float32)
    assert parity(network, session, rows) <= 1e-5


def test_outputs_are_probabilities(
    exported: tuple[Classifier, bytes, ort.InferenceSession],
) -> None:
    _, _, session = exported
    rows = np.ones((3, N_FEATURES), dtype=np.float32)
    probabilities = session.run(["probabilities"], {"features": rows})[0]
    assert probabilities.shape == (3, 3)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)


def test_parity_catches_a_different_model(
    exported: tuple[Classifier, bytes, ort.InferenceSession],
) -> None:
    _, _, session = exported
    rows = np.random.default_rng(1).normal(size=(20, N_FEATURES)).astype(np.float32)
    assert parity(_network(1), session, rows) > 1e-3


def test_metadata_hashes_the_exact_bytes(
    exported: tuple[Classifier, bytes, ort.InferenceSession],
) -> None:
    import hashlib

    _, model, _ = exported
    info = metadata(SCHEMA, model, 18)
    assert info["sha256"] == hashlib.sha256(model).hexdigest()
    assert info["feature_names"] == list(SCHEMA.feature_names)
    assert info["labels"] == ["a", "b", "c"]
