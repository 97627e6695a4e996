"""Benchmark peer (c): the naive BentoML service, torch eager on the training checkpoint.

What a first version of the service often looks like, kept as a yardstick for serving/service.py:
the torch checkpoint instead of the exported ONNX graph, the training code's own preprocessing
(pandas, model/features.py) on every request, one forward pass per request (no batching),
torch's default threads, rows taken as plain dicts. The request and response JSON are the real
service's: POST /predict {"rows": [{feature: value, ...}]} -> a list of
{"label", "probabilities", "model_version"}. Serve from the repository root with
`bentoml serve benchmarks.peers.naive_service:NaivePeer`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import bentoml
import torch

from model.features import FeatureSchema, encode, feature_frame
from model.network import Probabilities, load_checkpoint
from serving.schema import Prediction

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "models/model.pt"
METADATA = ROOT / "models/model.json"
FEATURES = ROOT / "data/prepared/features.json"


@bentoml.service(name="naive-peer", workers=1)
class NaivePeer:
    """POST /predict {"rows": [...]} -> one prediction per row, one torch call per request."""

    def __init__(self) -> None:
        info = json.loads(METADATA.read_text())
        self.schema = FeatureSchema.load(FEATURES)
        self.labels: list[str] = info["labels"]
        self.version = f"torch-{info['weights_sha256'][:12]}"
        self.network = Probabilities(load_checkpoint(CHECKPOINT)).eval()

    @bentoml.api  # type: ignore[untyped-decorator]  # BentoML's SDK package has no py.typed
    def predict(self, rows: list[dict[str, Any]]) -> list[Prediction]:
        # raw rows -> (rows, n_encoded) as training encodes them -> (rows, n_classes)
        features = torch.from_numpy(encode(feature_frame(rows, self.schema), self.schema))
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
