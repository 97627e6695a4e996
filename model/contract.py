"""The data contract (data/contract.yaml): what the raw data must look like, in one typed file.

Torch- and pandera-free, so that serving can read the feature order from it too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FeatureSpec(_Strict):
    name: str = Field(min_length=1)
    dtype: Literal["float64", "int64"] = "float64"
    min: float
    max: float
    nullable: bool = False

    @model_validator(mode="after")
    def _ordered_range(self) -> FeatureSpec:
        if self.min > self.max:
            raise ValueError(f"feature {self.name!r}: min {self.min} is above max {self.max}")
        return self


class LabelSpec(_Strict):
    name: str = Field(min_length=1)
    values: tuple[str, ...] = Field(min_length=2)
    positive: str

    @model_validator(mode="after")
    def _positive_is_a_value(self) -> LabelSpec:
        if self.positive not in self.values:
            raise ValueError(f"label.positive {self.positive!r} is not one of {self.values}")
        if len(set(self.values)) != len(self.values):
            raise ValueError("label.values has duplicates")
        return self


class TableSpec(_Strict):
    min_rows: int = Field(ge=1)
    max_duplicate_fraction: float = Field(ge=0, le=1)
    min_class_fraction: float = Field(ge=0, le=1)


class DatasetSpec(_Strict):
    """Where the data comes from and under which terms: the model card quotes it."""

    name: str = Field(min_length=1)
    source: str = Field(min_length=1)
    licence: str = Field(min_length=1)
    url: str = ""


class Contract(_Strict):
    dataset: DatasetSpec | None = None
    label: LabelSpec
    features: tuple[FeatureSpec, ...] = Field(min_length=1)
    table: TableSpec

    @model_validator(mode="after")
    def _unique_columns(self) -> Contract:
        names = [feature.name for feature in self.features] + [self.label.name]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"columns named twice in the contract: {duplicated}")
        return self

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Feature columns in model-input order."""
        return tuple(feature.name for feature in self.features)

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.feature_names, self.label.name)

    @classmethod
    def load(cls, path: Path) -> Contract:
        return cls.model_validate(yaml.safe_load(path.read_text()))
