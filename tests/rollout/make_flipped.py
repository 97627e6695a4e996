"""Test-only: import into the BentoML store a model that answers another label for every row.

Run in a project copy (`python -m tests.rollout.make_flipped`): it rotates the rows of the trained
network's output layer by one class (for two classes, the opposite label), exports it as `export`
does (raw inputs, the fitted preprocessing inside the graph, the model describing itself), and
imports it with registry version `flipped`.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import torch

from model.export import to_onnx
from model.features import FeatureSchema, read_split
from model.model_store import import_model, use_project_store
from model.network import load_checkpoint
from model.params import Params


def main() -> None:
    use_project_store()
    params = Params.load()
    schema = FeatureSchema.load(Path("data/prepared/features.json"))
    frame, _ = read_split(Path("data/prepared/test.csv"), schema)
    network = load_checkpoint(Path("models/model.pt"))
    last = network.mlp[-1]
    assert isinstance(last, torch.nn.Linear)
    with torch.no_grad():
        # logit k becomes the old logit k-1: the argmax moves to the next class on every row
        last.weight.copy_(last.weight.roll(1, dims=0))
        last.bias.copy_(last.bias.roll(1, dims=0))
    model = to_onnx(network, schema, frame, params.export.opset)
    info = json.loads(Path("models/model.json").read_text())
    info |= {"sha256": hashlib.sha256(model).hexdigest(), "size_bytes": len(model)}
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "model.onnx"
        path.write_bytes(model)
        tag, _ = import_model(params.registry.model_name, path, info, "flipped")
    print(tag)


if __name__ == "__main__":
    main()
