"""A tiny exported model of the mixed table, and input files, for the batch-scoring tests (unit
and PostgreSQL): categoricals, a boolean, nulls, three classes and odd names, none named here."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from model.model_store import METADATA_FILE, ONNX_FILE
from tests.tables import mixed_contract, mixed_frame

OPSET = 18


def export_tiny_model(directory: Path, seed: int = 0) -> Path:
    """model.onnx + model.json in `directory`, as `export` writes them, from an untrained network
    on the mixed table's fitted preprocessing."""
    import torch

    from model.export import metadata, to_onnx
    from model.features import fit_schema
    from model.network import Classifier

    frame = mixed_frame(200, seed)
    schema = fit_schema(frame, mixed_contract())
    torch.manual_seed(seed)
    network = Classifier(len(schema.encoded_names), (8,), len(schema.labels)).eval()
    data = to_onnx(network, schema, frame.loc[:, list(schema.feature_names)], OPSET)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ONNX_FILE).write_bytes(data)
    info = metadata(schema, data, OPSET)
    (directory / METADATA_FILE).write_text(json.dumps(info, ensure_ascii=False))
    return directory


def input_frame(rows: int, seed: int = 1) -> pd.DataFrame:
    """Raw rows with nulls, in another column order than the model's, with the id and label
    columns the model does not take."""
    frame = mixed_frame(rows, seed)
    return frame[list(reversed(frame.columns))]
