"""DVC stage `export`: the model as one self-contained ONNX file, checked against torch.

The graph takes raw rows (model/inputs.py: numbers, strings, nulls) with a dynamic batch axis,
does the fitted preprocessing itself (model/preprocess_graph.py) and returns class probabilities,
so a server needs onnxruntime and nothing else. The stage fails, writing nothing, when
onnxruntime and torch disagree by more than `export.parity_tolerance` on the test split plus
edge rows (a null in each nullable feature, an unseen value in each categorical).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import torch

from model.atomic import write_bytes_atomically, write_json_atomically
from model.features import FeatureSchema, encode, read_split
from model.inference import INPUTS_PROPERTY, LABELS_PROPERTY, onnx_session, predict_proba
from model.inputs import OUTPUT_NAME, boolean_value
from model.lineage import file_digest
from model.network import Classifier, Probabilities, load_checkpoint
from model.params import Params
from model.preprocess_graph import ENCODED, with_preprocessing
from model.tracking import model_run

UNSEEN_CATEGORY = "\u27c2 a value no contract lists \u27c2"


class ParityError(RuntimeError):
    """onnxruntime and torch disagree on the same rows."""


def network_to_onnx(network: Classifier, example: np.ndarray, opset: int) -> onnx.ModelProto:
    """The network alone: `encoded` features in, probabilities out, batch axis dynamic.
    `example` (encoded rows) needs 2+ rows."""
    batch = torch.export.Dim("batch", min=1)
    # The exporter logs a warning per torchvision op it cannot register; we use none of them.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own deprecation chatter
        program = torch.onnx.export(
            Probabilities(network).eval(),
            (torch.from_numpy(example),),
            dynamo=True,
            input_names=[ENCODED],
            output_names=[OUTPUT_NAME],
            opset_version=opset,
            dynamic_shapes={"features": {0: batch}},
            verbose=False,
        )
    assert program is not None
    proto = program.model_proto
    # Per-node debug metadata holds stack traces with absolute paths: it would leak the build
    # machine's layout and make two identical trainings export different bytes.
    for node in [
        *proto.graph.node,
        *(node for function in proto.functions for node in function.node),
    ]:
        del node.metadata_props[:]
    return proto


def to_onnx(network: Classifier, schema: FeatureSchema, frame: pd.DataFrame, opset: int) -> bytes:
    """One serialized model: raw rows in (preprocessing inside), probabilities out."""
    example = encode(frame.head(8), schema)
    model = with_preprocessing(network_to_onnx(network, example, opset), schema)
    # The model describes its own inputs and classes, so a file alone is enough to call it.
    inputs = [item.model_dump(mode="json", exclude_defaults=True) for item in schema.inputs]
    onnx.helper.set_model_props(
        model,
        {
            INPUTS_PROPERTY: json.dumps(inputs, ensure_ascii=False),
            LABELS_PROPERTY: json.dumps(list(schema.labels), ensure_ascii=False),
        },
    )
    return bytes(model.SerializeToString())


def edge_rows(frame: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    """Rows the test split may lack: a null in each nullable feature, in turn, and an unseen
    value in each categorical. What parity must hold on besides ordinary rows."""
    base = frame.head(3)
    variants = []
    for item in schema.inputs:
        if item.nullable:
            variants.append(base.assign(**{item.name: None}))
        if item.kind == "categorical":
            variants.append(base.assign(**{item.name: UNSEEN_CATEGORY}))
    if any(item.nullable for item in schema.inputs):
        nullable = {item.name: None for item in schema.inputs if item.nullable}
        variants.append(base.assign(**nullable))  # every nullable feature null at once
    if not variants:
        return frame.iloc[0:0]
    return pd.concat(variants, ignore_index=True).astype(frame.dtypes.to_dict(), errors="ignore")


def parity_rows(frame: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    """The test split plus its edge rows."""
    return pd.concat([frame, edge_rows(frame, schema)], ignore_index=True)


def parity(
    network: Classifier, session: ort.InferenceSession, frame: pd.DataFrame, schema: FeatureSchema
) -> float:
    """Max |onnx - torch| over every probability of every raw row."""
    with torch.no_grad():
        expected = Probabilities(network)(torch.from_numpy(encode(frame, schema))).numpy()
    actual = predict_proba(session, schema.layout.column_feeds(frame))
    return float(np.max(np.abs(actual - expected)))


def example_rows(
    frame: pd.DataFrame, schema: FeatureSchema, count: int = 3
) -> list[dict[str, Any]]:
    """A few real test rows as a client would send them (null as None): the API's examples."""
    rows = []
    for _, raw in frame.head(count).iterrows():
        row: dict[str, Any] = {}
        for item in schema.inputs:
            value = raw[item.name]
            if pd.isna(value):
                row[item.name] = None
            elif item.kind == "numeric":
                row[item.name] = float(value)
            elif item.kind == "boolean":
                row[item.name] = bool(boolean_value(value))
            else:
                row[item.name] = str(value)
        rows.append(row)
    return rows


def metadata(schema: FeatureSchema, model: bytes, opset: int, **extra: Any) -> dict[str, Any]:
    """What a server or a gate needs to know about the model without opening it."""
    return {
        "feature_names": list(schema.feature_names),
        "inputs": [item.model_dump(mode="json", exclude_defaults=True) for item in schema.inputs],
        "labels": list(schema.labels),
        "positive_label": schema.positive_label,
        "input_names": sorted({item.tensor for item in schema.inputs}),
        "output_name": OUTPUT_NAME,
        "encoded_features": list(schema.encoded_names),
        "opset": opset,
        "sha256": hashlib.sha256(model).hexdigest(),
        "size_bytes": len(model),
        **extra,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("prepared", type=Path, help="folder written by `prepare`")
    parser.add_argument("checkpoint", type=Path, help="checkpoint written by `train`")
    parser.add_argument("raw", type=Path, help="raw CSV, hashed for lineage")
    parser.add_argument("onnx", type=Path, help="where to write the ONNX model")
    parser.add_argument("metadata", type=Path, help="where to write the model metadata (JSON)")
    args = parser.parse_args(argv)

    params = Params.load().export
    schema = FeatureSchema.load(args.prepared / "features.json")
    test_frame, _ = read_split(args.prepared / "test.csv", schema)
    frame = parity_rows(test_frame, schema)
    network = load_checkpoint(args.checkpoint)
    model = to_onnx(network, schema, test_frame, params.opset)
    max_diff = parity(network, onnx_session(model), frame, schema)
    if not max_diff <= params.parity_tolerance:
        print(
            f"export: parity FAILED, max |onnx - torch| = {max_diff:.3g} on {len(frame)} raw "
            f"rows, over export.parity_tolerance = {params.parity_tolerance:g}; nothing written",
            file=sys.stderr,
        )
        return 1
    weights_sha256 = file_digest(args.checkpoint)
    info = metadata(
        schema,
        model,
        params.opset,
        parity_max_abs_diff=max_diff,
        parity_rows=len(frame),
        examples=example_rows(test_frame, schema),
        weights_sha256=weights_sha256,
        data_md5=file_digest(args.raw, "md5"),
    )
    write_bytes_atomically(args.onnx, model)
    write_json_atomically(args.metadata, info)

    import mlflow

    with model_run(weights_sha256):
        mlflow.log_metric("parity_max_abs_diff", max_diff)
        mlflow.set_tag("onnx_sha256", info["sha256"])
    print(f"export: {args.onnx} ({len(model)} bytes), parity max diff {max_diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
