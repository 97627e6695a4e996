"""A tiny exported model and input files for the batch-scoring tests (unit and PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from serving.model_store import METADATA_FILE, ONNX_FILE

FEATURES = ("f0", "f1", "f2", "f3")
LABELS = ("low", "mid", "high")


def export_tiny_model(directory: Path, seed: int = 0) -> Path:
    """model.onnx + model.json in `directory`, as `export` writes them, from a random network."""
    import torch

    from model.export import to_onnx
    from model.network import Classifier

    torch.manual_seed(seed)
    network = Classifier(len(FEATURES), (8,), len(LABELS), [1.0] * len(FEATURES), [2.0] * 4)
    example = np.zeros((2, len(FEATURES)), dtype=np.float32)
    data = to_onnx(network.eval(), example, opset=18)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ONNX_FILE).write_bytes(data)
    info = {
        "feature_names": list(FEATURES),
        "labels": list(LABELS),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    (directory / METADATA_FILE).write_text(json.dumps(info))
    return directory


def input_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """The features in another order than the model's, plus a column the model ignores."""
    values = np.random.default_rng(seed).normal(1.0, 3.0, size=(rows, len(FEATURES)))
    frame = pd.DataFrame(values, columns=list(FEATURES))
    frame.insert(0, "id", np.arange(rows))
    return frame[["id", *reversed(FEATURES)]]
