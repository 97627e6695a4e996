"""The exported model's raw inputs: which features, of which kind, and how rows become ONNX feeds.

The graph takes raw values and does imputation, encoding and scaling itself, so every consumer
(the service, batch scoring, the gates, benchmarks) only has to lay rows out as two tensors:

- `numeric`: float32 (rows, n_numeric), numeric and boolean features in contract order,
  booleans as 1.0/0.0 and null as NaN;
- `categorical`: string (rows, n_categorical), categorical features in contract order, null as
  the empty string.

A tensor is absent from the graph when no feature has its kind. numpy and pydantic only: the
Bento imports this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

NUMERIC_INPUT = "numeric"
CATEGORICAL_INPUT = "categorical"
OUTPUT_NAME = "probabilities"
NULL_CATEGORY = ""  # how a null categorical value is fed to the graph


class RawInput(BaseModel):
    """One feature as a client sends it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    kind: Literal["numeric", "categorical", "boolean"]
    nullable: bool = False
    categories: tuple[str, ...] = ()  # categorical: the known values
    unseen: Literal["reject", "other"] = "reject"  # categorical: what a value outside them does

    @property
    def tensor(self) -> str:
        return CATEGORICAL_INPUT if self.kind == "categorical" else NUMERIC_INPUT


class InputLayout:
    """Where each feature sits in the graph's input tensors."""

    def __init__(self, inputs: Sequence[RawInput]) -> None:
        self.inputs = tuple(inputs)
        self.numeric = tuple(item.name for item in self.inputs if item.tensor == NUMERIC_INPUT)
        self.categorical = tuple(
            item.name for item in self.inputs if item.tensor == CATEGORICAL_INPUT
        )
        self.booleans = frozenset(item.name for item in self.inputs if item.kind == "boolean")

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> InputLayout:
        """From model.json's `inputs` list (what `export` writes)."""
        return cls([RawInput.model_validate(item) for item in metadata["inputs"]])

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(item.name for item in self.inputs)

    def feeds(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        """ONNX feeds for rows given as {feature: value} mappings (None = null)."""
        feeds: dict[str, np.ndarray] = {}
        if self.numeric:
            # (rows, n_numeric); None becomes NaN, True/False 1.0/0.0
            feeds[NUMERIC_INPUT] = np.array(
                [[row[name] for name in self.numeric] for row in rows], dtype=np.float32
            ).reshape(len(rows), len(self.numeric))
        if self.categorical:
            # (rows, n_categorical) of str; None becomes the empty string
            feeds[CATEGORICAL_INPUT] = np.array(
                [[_category(row[name]) for name in self.categorical] for row in rows],
                dtype=object,
            ).reshape(len(rows), len(self.categorical))
        return feeds

    def column_feeds(self, columns: Mapping[str, Iterable[Any]]) -> dict[str, np.ndarray]:
        """ONNX feeds from whole columns (a DataFrame works), the fast path for many rows."""
        feeds: dict[str, np.ndarray] = {}
        if self.numeric:
            feeds[NUMERIC_INPUT] = np.column_stack(
                [_numeric_column(columns[name], name in self.booleans) for name in self.numeric]
            ).astype(np.float32, copy=False)
        if self.categorical:
            feeds[CATEGORICAL_INPUT] = np.column_stack(
                [_category_column(columns[name]) for name in self.categorical]
            )
        return feeds


def _category(value: Any) -> str:
    return NULL_CATEGORY if value is None else str(value)


_TRUE = {"true", "1", "1.0", "yes", "t", "y"}
_FALSE = {"false", "0", "0.0", "no", "f", "n"}


def boolean_value(value: Any) -> float:
    """1.0, 0.0 or NaN for null; booleans in a CSV come as True/False, 1/0 or yes/no."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return float("nan")
    if isinstance(value, bool | np.bool_):
        return float(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return 1.0
    if text in _FALSE:
        return 0.0
    if text in {"", "nan", "none", "null"}:
        return float("nan")
    raise ValueError(f"{value!r} is not a boolean (true/false, 1/0, yes/no)")


def _numeric_column(values: Iterable[Any], boolean: bool) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind in "biuf":
        return array.astype(np.float64)
    if boolean:
        return np.array([boolean_value(value) for value in array], dtype=np.float64)
    return array.astype(np.float64)  # None becomes NaN


def _category_column(values: Iterable[Any]) -> np.ndarray:
    return np.array(
        [
            NULL_CATEGORY
            if value is None or (isinstance(value, float) and np.isnan(value))
            else str(value)
            for value in values
        ],
        dtype=object,
    )
