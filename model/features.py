"""Feature handling shared by training and serving: column order, labels, scaling statistics.

Torch-free on purpose: serving imports this module, never the training code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator


class FeatureSchema(BaseModel):
    """What `prepare` learned and every later stage needs: written to features.json."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    feature_names: tuple[str, ...] = Field(min_length=1)
    label_name: str
    labels: tuple[str, ...] = Field(min_length=2)
    positive_label: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @model_validator(mode="after")
    def _consistent(self) -> FeatureSchema:
        n_features = len(self.feature_names)
        if len(self.mean) != n_features or len(self.std) != n_features:
            raise ValueError("mean and std need one entry per feature")
        if any(value <= 0 for value in self.std):
            raise ValueError("std must be positive (constant features get 1.0)")
        return self

    @property
    def positive_index(self) -> int:
        return self.labels.index(self.positive_label)

    @classmethod
    def load(cls, path: Path) -> FeatureSchema:
        return cls.model_validate_json(path.read_text())


def frame_to_arrays(frame: pd.DataFrame, schema: FeatureSchema) -> tuple[np.ndarray, np.ndarray]:
    """(rows, n_features) float32 features in schema order, and (rows,) int64 class indices."""
    features = frame.loc[:, list(schema.feature_names)].to_numpy(dtype=np.float32, copy=True)
    codes = (
        frame[schema.label_name]
        .astype(str)
        .map({label: i for i, label in enumerate(schema.labels)})
    )
    if codes.isna().any():
        raise ValueError(f"labels outside {schema.labels} in the split")
    return features, codes.to_numpy(dtype=np.int64, copy=True)


def read_split(path: Path, schema: FeatureSchema) -> tuple[np.ndarray, np.ndarray]:
    """Features and class indices of one prepared split file."""
    return frame_to_arrays(pd.read_csv(path), schema)
