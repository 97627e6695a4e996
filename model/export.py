"""DVC stage `export`: the model as one self-contained ONNX file, checked against torch.

The graph takes raw features (scaling is folded in) with a dynamic batch axis and returns class
probabilities, so a server needs onnxruntime and nothing else. The stage fails, writing nothing,
when onnxruntime and torch disagree on the test split by more than `export.parity_tolerance`.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from model.atomic import write_bytes_atomically, write_json_atomically
from model.features import FeatureSchema, read_split
from model.inference import INPUT_NAME, OUTPUT_NAME, onnx_session, predict_proba
from model.lineage import file_digest, git_commit
from model.network import Classifier, Probabilities, load_checkpoint
from model.params import Params
from model.tracking import model_run


class ParityError(RuntimeError):
    """onnxruntime and torch disagree on the same rows."""


def to_onnx(network: Classifier, example: np.ndarray, opset: int) -> bytes:
    """Serialized ONNX model, weights inline, batch axis dynamic. `example` needs 2+ rows."""
    batch = torch.export.Dim("batch", min=1)
    # The exporter logs a warning per torchvision op it cannot register; we use none of them.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own deprecation chatter
        program = torch.onnx.export(
            Probabilities(network).eval(),
            (torch.from_numpy(example),),
            dynamo=True,
            input_names=[INPUT_NAME],
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
    return bytes(proto.SerializeToString())


def parity(network: Classifier, session: ort.InferenceSession, features: np.ndarray) -> float:
    """Max |onnx - torch| over every probability of every row."""
    with torch.no_grad():
        expected = Probabilities(network)(torch.from_numpy(features)).numpy()
    return float(np.max(np.abs(predict_proba(session, features) - expected)))


def metadata(schema: FeatureSchema, model: bytes, opset: int, **extra: Any) -> dict[str, Any]:
    """What a server or a gate needs to know about the model without opening it."""
    return {
        "feature_names": list(schema.feature_names),
        "labels": list(schema.labels),
        "positive_label": schema.positive_label,
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "input_dtype": "float32",
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
    features, _ = read_split(args.prepared / "test.csv", schema)
    network = load_checkpoint(args.checkpoint)
    model = to_onnx(network, features[:8], params.opset)
    max_diff = parity(network, onnx_session(model), features)
    if not max_diff <= params.parity_tolerance:
        print(
            f"export: parity FAILED, max |onnx - torch| = {max_diff:.3g} on {len(features)} test "
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
        parity_rows=len(features),
        weights_sha256=weights_sha256,
        training_commit=git_commit(),
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
