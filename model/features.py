"""Preprocessing fitted on the training split: imputation, one-hot encoding and scaling.

`prepare` fits a `FeatureSchema` from the training rows and the data contract and writes it to
features.json. Training encodes rows with `encode` (numpy); `export` builds the same steps into
the ONNX graph (model/preprocess_graph.py), so serving never re-implements them. The parity check
holds the two to the same numbers, on raw rows with nulls and unseen categories included.

Encoded columns: every numeric and boolean feature, imputed then standardised, in contract order;
then per categorical feature one column per known value, plus a `missing` column
(impute: missing) and an `other` column (unseen: other).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from model.contract import BooleanFeature, CategoricalFeature, Contract, NumericFeature
from model.inputs import NULL_CATEGORY, InputLayout, RawInput

MISSING_COLUMN = "(missing)"
OTHER_COLUMN = "(other)"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NumericEncoding(_Frozen):
    """Null -> `fill`, then (value - mean) / std."""

    name: str
    kind: Literal["numeric", "boolean"]
    nullable: bool
    fill: float
    mean: float
    std: float = Field(gt=0)


class CategoricalEncoding(_Frozen):
    """One-hot over `categories`; null goes to the `missing` column or to `fill`'s column;
    an unseen value to the `other` column, or to no column at all (serving rejects it first)."""

    name: str
    nullable: bool
    categories: tuple[str, ...] = Field(min_length=1)
    fill: str | None = None  # the category a null becomes (impute: most_frequent / constant)
    missing_column: bool = False
    other_column: bool = False
    unseen: Literal["reject", "other"] = "reject"

    @property
    def columns(self) -> tuple[str, ...]:
        extra = (MISSING_COLUMN,) * self.missing_column + (OTHER_COLUMN,) * self.other_column
        return (*self.categories, *extra)

    def code(self, value: str) -> int:
        """Index of the one-hot column a raw value lights, or -1 for none."""
        if value == NULL_CATEGORY:
            if self.missing_column:
                return len(self.categories)
            value = self.fill if self.fill is not None else value
        if value in self.categories:
            return self.categories.index(value)
        return len(self.columns) - 1 if self.other_column else -1


class FeatureSchema(_Frozen):
    """What `prepare` learned and every later stage needs: written to features.json."""

    feature_names: tuple[str, ...] = Field(min_length=1)  # contract order
    label_name: str
    labels: tuple[str, ...] = Field(min_length=2)
    positive_label: str | None = None  # binary labels only
    numeric: tuple[NumericEncoding, ...] = ()
    categorical: tuple[CategoricalEncoding, ...] = ()

    @property
    def positive_index(self) -> int | None:
        return None if self.positive_label is None else self.labels.index(self.positive_label)

    @property
    def inputs(self) -> tuple[RawInput, ...]:
        """The raw inputs of the exported graph, in contract order (model.json carries them)."""
        by_name: dict[str, RawInput] = {}
        for item in self.numeric:
            by_name[item.name] = RawInput(name=item.name, kind=item.kind, nullable=item.nullable)
        for cat in self.categorical:
            by_name[cat.name] = RawInput(
                name=cat.name,
                kind="categorical",
                nullable=cat.nullable,
                categories=cat.categories,
                unseen=cat.unseen,
            )
        return tuple(by_name[name] for name in self.feature_names)

    @property
    def layout(self) -> InputLayout:
        return InputLayout(self.inputs)

    @property
    def encoded_names(self) -> tuple[str, ...]:
        names = [item.name for item in self.numeric]
        for cat in self.categorical:
            names += [f"{cat.name}={column}" for column in cat.columns]
        return tuple(names)

    @property
    def numeric_std(self) -> dict[str, float]:
        """Training std per numeric feature: the unit of the directional behaviour checks."""
        return {item.name: item.std for item in self.numeric}

    @classmethod
    def load(cls, path: Path) -> FeatureSchema:
        return cls.model_validate_json(path.read_text())


def fit_schema(train: pd.DataFrame, contract: Contract) -> FeatureSchema:
    """Fill values and scaling statistics from the training rows only: nothing leaks from val or
    test. Category sets come from the contract, so the encoding does not depend on the split."""
    numeric: list[NumericEncoding] = []
    categorical: list[CategoricalEncoding] = []
    for feature in contract.features:
        column = train[feature.name]
        if isinstance(feature, CategoricalFeature):
            categorical.append(_fit_categorical(column, feature))
        else:
            numeric.append(_fit_numeric(column, feature))
    return FeatureSchema(
        feature_names=contract.feature_names,
        label_name=contract.label.name,
        labels=contract.label.values,
        positive_label=contract.label.positive_label,
        numeric=tuple(numeric),
        categorical=tuple(categorical),
    )


def _fit_numeric(column: pd.Series, feature: NumericFeature | BooleanFeature) -> NumericEncoding:
    layout = InputLayout([RawInput(name="x", kind=feature.kind)])
    values = layout.column_feeds({"x": column})["numeric"][:, 0].astype(np.float64)
    present = values[~np.isnan(values)]
    if isinstance(feature, BooleanFeature):
        if feature.imputation == "constant":
            fill = float(bool(feature.fill))
        else:  # most_frequent; ties go to true
            fill = float(present.mean() >= 0.5) if present.size else 0.0
    elif feature.imputation == "constant":
        fill = float(feature.fill or 0.0)
    elif feature.imputation == "mean":
        fill = float(present.mean()) if present.size else 0.0
    else:
        fill = float(np.median(present)) if present.size else 0.0
    filled = np.where(np.isnan(values), fill, values)
    std = float(filled.std())
    return NumericEncoding(
        name=feature.name,
        kind=feature.kind,
        nullable=feature.nullable,
        fill=fill,
        mean=float(filled.mean()),
        std=std if std > 0 else 1.0,
    )


def _fit_categorical(column: pd.Series, feature: CategoricalFeature) -> CategoricalEncoding:
    fill = None
    if feature.nullable and feature.imputation == "constant":
        fill = feature.fill
    elif feature.nullable and feature.imputation == "most_frequent":
        counts = column.dropna().astype(str).value_counts()
        known = [value for value in counts.index if value in feature.values]
        # most frequent known value; ties by contract order, so the choice is deterministic
        fill = (
            min(known, key=lambda value: (-counts[value], feature.values.index(value)))
            if known
            else feature.values[0]
        )
    return CategoricalEncoding(
        name=feature.name,
        nullable=feature.nullable,
        categories=feature.values,
        fill=fill,
        missing_column=feature.nullable and feature.imputation == "missing",
        other_column=feature.unseen == "other",
        unseen=feature.unseen,
    )


def encode(frame: pd.DataFrame, schema: FeatureSchema) -> np.ndarray:
    """Raw rows -> (rows, n_encoded) float32, exactly as the exported graph computes it."""
    feeds = schema.layout.column_feeds(frame)
    parts: list[np.ndarray] = []
    if schema.numeric:
        raw = feeds["numeric"]  # float32, in the graph's own precision
        fill = np.array([item.fill for item in schema.numeric], dtype=np.float32)
        mean = np.array([item.mean for item in schema.numeric], dtype=np.float32)
        std = np.array([item.std for item in schema.numeric], dtype=np.float32)
        parts.append((np.where(np.isnan(raw), fill, raw) - mean) / std)
    for index, cat in enumerate(schema.categorical):
        codes = np.array([cat.code(value) for value in feeds["categorical"][:, index]])
        parts.append((codes[:, None] == np.arange(len(cat.columns))[None, :]).astype(np.float32))
    return np.concatenate(parts, axis=1).astype(np.float32, copy=False)


def label_codes(frame: pd.DataFrame, schema: FeatureSchema) -> np.ndarray:
    """(rows,) int64 class indices in the contract's label order."""
    codes = frame[schema.label_name].astype(str).map({v: i for i, v in enumerate(schema.labels)})
    if codes.isna().any():
        raise ValueError(f"labels outside {schema.labels} in the split")
    result: np.ndarray = codes.to_numpy(dtype=np.int64, copy=True)
    return result


def read_frame(path: Path, schema: FeatureSchema) -> pd.DataFrame:
    """A prepared split with every column as the contract means it: categoricals as strings
    (never parsed as numbers), so '01' stays '01'."""
    kinds = {cat.name: str for cat in schema.categorical} | {schema.label_name: str}
    return pd.read_csv(path, dtype=kinds, keep_default_na=True)


def read_split(path: Path, schema: FeatureSchema) -> tuple[pd.DataFrame, np.ndarray]:
    """Raw features (contract order) and class indices of one prepared split file."""
    frame = read_frame(path, schema)
    return frame.loc[:, list(schema.feature_names)], label_codes(frame, schema)


def feature_frame(rows: Sequence[dict[str, object]], schema: FeatureSchema) -> pd.DataFrame:
    """Rows as {feature: value} mappings to a raw feature frame (tests and benchmarks)."""
    return pd.DataFrame(list(rows), columns=list(schema.feature_names))
