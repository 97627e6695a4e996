"""Request and response types of POST /predict, built from the model's own feature list.

Validation happens here, per request and before adaptive batching, so one bad request gets its
own 400 naming the row and field (pydantic's `loc`, e.g. ["rows", 3, "mean_radius"]) and never
spoils a batch shared with other requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

# Strict: "1.5" (a string) and true (a bool) are not numbers; NaN and inf are refused.
FeatureValue = Annotated[float, Field(strict=True, allow_inf_nan=False)]


def row_model(feature_names: Sequence[str]) -> type[BaseModel]:
    """One row: every feature required, nothing else allowed."""
    fields: dict[str, Any] = {name: (FeatureValue, ...) for name in feature_names}
    return create_model(
        "Row",
        __config__=ConfigDict(extra="forbid", frozen=True),
        **fields,
    )


def example_row(feature_names: Sequence[str], mean: Sequence[float]) -> dict[str, float]:
    """A typical row (the training means), used as the API's documented sample."""
    return {name: round(value, 6) for name, value in zip(feature_names, mean, strict=True)}


class Prediction(BaseModel):
    """The answer for one row."""

    model_config = ConfigDict(frozen=True)

    label: str
    probabilities: dict[str, float]
    model_version: str


class ModelInfo(BaseModel):
    """GET /metadata."""

    model_version: str
    model_tag: str
    feature_names: list[str]
    labels: list[str]
    positive_label: str
    onnx_sha256: str
    training_commit: str
    data_md5: str
    max_rows: int
