"""Test-only: import into the BentoML store a model that answers the opposite label.

Run in a project copy (`python -m tests.rollout.make_flipped`): it swaps the output layer of the
trained network, exports it like `export` does, and imports it with registry version `flipped`.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from model.export import to_onnx
from model.network import load_checkpoint
from serving.model_store import import_model, use_project_store


def main() -> None:
    use_project_store()
    network = load_checkpoint(Path("models/model.pt"))
    last = network.mlp[-1]
    assert isinstance(last, torch.nn.Linear)
    with torch.no_grad():
        last.weight.copy_(last.weight.flip(0))
        last.bias.copy_(last.bias.flip(0))
    model = to_onnx(network, np.ones((4, network.n_features), dtype=np.float32), 18)
    info = json.loads(Path("models/model.json").read_text())
    info["sha256"] = hashlib.sha256(model).hexdigest()
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "model.onnx"
        path.write_bytes(model)
        tag, _ = import_model("breast-cancer-classifier", path, info, "flipped")
    print(tag)


if __name__ == "__main__":
    main()
