"""The classifier: a small MLP on encoded features. Plain on purpose; swap freely.

Imputation, one-hot encoding and scaling happen before it (model/features.py, and in the exported
graph model/preprocess_graph.py), so the network sees standardised floats only.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from model.atomic import write_bytes_atomically


class Classifier(nn.Module):
    """Encoded features in, logits out."""

    def __init__(self, n_features: int, hidden_units: Sequence[int], n_classes: int) -> None:
        super().__init__()
        self.n_features = n_features
        self.hidden_units = tuple(hidden_units)
        self.n_classes = n_classes
        layers: list[nn.Module] = []
        width = n_features
        for units in self.hidden_units:
            layers += [nn.Linear(width, units), nn.ReLU()]
            width = units
        layers.append(nn.Linear(width, n_classes))
        self.mlp = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # (batch, n_encoded) -> (batch, n_classes)
        return self.mlp(features)


class Probabilities(nn.Module):
    """What we export and serve: class probabilities rather than logits."""

    def __init__(self, classifier: Classifier) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # (batch, n_features) -> (batch, n_classes), rows sum to 1
        return torch.softmax(self.classifier(features), dim=-1)


def checkpoint_bytes(network: Classifier) -> bytes:
    """The architecture and weights as one self-describing torch file."""
    buffer = io.BytesIO()
    torch.save(
        {
            "n_features": network.n_features,
            "hidden_units": list(network.hidden_units),
            "n_classes": network.n_classes,
            "state_dict": network.state_dict(),
        },
        buffer,
    )
    return buffer.getvalue()


def save_checkpoint(network: Classifier, path: Path) -> str:
    """Write atomically; returns the sha256 that ties MLflow runs to these exact weights."""
    data = checkpoint_bytes(network)
    write_bytes_atomically(path, data)
    return hashlib.sha256(data).hexdigest()


def load_checkpoint(path: Path) -> Classifier:
    checkpoint: dict[str, Any] = torch.load(path, weights_only=True)
    network = Classifier(
        checkpoint["n_features"], checkpoint["hidden_units"], checkpoint["n_classes"]
    )
    network.load_state_dict(checkpoint["state_dict"])
    return network.eval()
