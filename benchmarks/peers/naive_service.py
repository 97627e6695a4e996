"""Benchmark peer (c): the naive BentoML service, torch eager on the training checkpoint.

What a first version of the service often looks like, kept as a yardstick for serving/service.py:
the torch checkpoint instead of the exported ONNX graph, one forward pass per request (no
adaptive batching), torch's default threads, rows taken as plain dicts. The request and response
JSON are the real service's: POST /predict {"rows": [{feature: number, ...}]} -> a list of
{"label", "probabilities", "model_version"}. Serve from the repository root with
`bentoml serve benchmarks.peers.naive_service:NaivePeer`.
"""

from __future__ import annotations

import json
from pathlib import Path

import bentoml
import torch

from model.network import Probabilities, load_checkpoint
from serving.schema import Prediction

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "models/model.pt"
METADATA = ROOT / "models/model.json"


@bentoml.service(name="naive-peer", workers=1)
class NaivePeer:
    """POST /predict {"rows": [...]} -> one prediction per row, one torch call per request."""

    def __init__(self) -> None:
        info = json.loads(METADATA.read_text())
        self.features: list[str] = info["feature_names"]
        self.labels: list[str] = info["labels"]
        self.version = f"torch-{info['weights_sha256'][:12]}"
        self.network = Probabilities(load_checkpoint(CHECKPOINT)).eval()

    @bentoml.api  # type: ignore[untyped-decorator]  # BentoML's SDK package has no py.typed
    def predict(self, rows: list[dict[str, float]]) -> list[Prediction]:
        # (rows, n_features) in the model's feature order -> (rows, n_classes)
        features = torch.tensor([[row[name] for name in self.features] for row in rows])
        with torch.no_grad():
            probabilities = self.network(features).tolist()
        return [
            Prediction(
                label=self.labels[max(range(len(row)), key=row.__getitem__)],
                probabilities=dict(zip(self.labels, row, strict=True)),
                model_version=self.version,
            )
            for row in probabilities
        ]
