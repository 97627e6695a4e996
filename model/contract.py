"""The data contract (data/contract.yaml): what the raw data must look like, in one typed file.

Three kinds of feature: `numeric` (int or float, optional range), `categorical` (strings from a
known set, with a rule for values outside it) and `boolean`. A nullable feature declares how its
empty values are filled (fitted on the training split only). Columns to leave out of the model
(ids, timestamps) are listed under `ignore`. Torch- and pandera-free, so that serving and the
contract drafter can read it too. A malformed file raises `ContractError`, whose message names
every bad key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

FeatureKind = Literal["numeric", "categorical", "boolean"]


class ContractError(ValueError):
    """The contract file itself is wrong: unreadable YAML or keys that break its rules."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NumericFeature(_Strict):
    """A number; `min`/`max` are optional bounds the data must stay within."""

    name: str = Field(min_length=1)
    kind: Literal["numeric"] = "numeric"
    dtype: Literal["float64", "int64"] = "float64"
    min: float | None = None
    max: float | None = None
    nullable: bool = False
    impute: Literal["median", "mean", "constant"] | None = None
    fill: float | None = None  # the constant, with impute: constant

    @model_validator(mode="after")
    def _consistent(self) -> NumericFeature:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"feature {self.name!r}: min {self.min} is above max {self.max}")
        _check_imputation(self.name, self.nullable, self.impute, self.fill)
        return self

    @property
    def imputation(self) -> str:
        return self.impute or "median"


class CategoricalFeature(_Strict):
    """A string from `values`; `unseen` says what a value outside the set does at serving time:
    `reject` (a 400 / a refused row) or `other` (its own bucket in the encoding)."""

    name: str = Field(min_length=1)
    kind: Literal["categorical"]
    values: tuple[str, ...] = Field(min_length=1)
    unseen: Literal["reject", "other"] = "reject"
    nullable: bool = False
    impute: Literal["most_frequent", "constant", "missing"] | None = None
    fill: str | None = None  # the constant, with impute: constant (one of `values`)

    @model_validator(mode="after")
    def _consistent(self) -> CategoricalFeature:
        if len(set(self.values)) != len(self.values):
            raise ValueError(f"feature {self.name!r}: values has duplicates")
        if "" in self.values:
            raise ValueError(f"feature {self.name!r}: the empty string means null, not a value")
        _check_imputation(self.name, self.nullable, self.impute, self.fill)
        if self.fill is not None and self.fill not in self.values:
            raise ValueError(f"feature {self.name!r}: fill {self.fill!r} is not one of values")
        return self

    @property
    def imputation(self) -> str:
        return self.impute or "missing"


class BooleanFeature(_Strict):
    """true/false (also 1/0, yes/no in the CSV); fed to the model as 1.0/0.0."""

    name: str = Field(min_length=1)
    kind: Literal["boolean"]
    nullable: bool = False
    impute: Literal["most_frequent", "constant"] | None = None
    fill: bool | None = None

    @model_validator(mode="after")
    def _consistent(self) -> BooleanFeature:
        _check_imputation(self.name, self.nullable, self.impute, self.fill)
        return self

    @property
    def imputation(self) -> str:
        return self.impute or "most_frequent"


def _check_imputation(name: str, nullable: bool, impute: str | None, fill: object) -> None:
    if impute is not None and not nullable:
        raise ValueError(f"feature {name!r}: impute is set but the feature is not nullable")
    if impute == "constant" and fill is None:
        raise ValueError(f"feature {name!r}: impute: constant needs a fill value")
    if fill is not None and impute != "constant":
        raise ValueError(f"feature {name!r}: fill is only used with impute: constant")


def _feature_kind(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("kind", "numeric"))
    return str(getattr(value, "kind", "numeric"))


Feature = Annotated[
    Annotated[NumericFeature, Tag("numeric")]
    | Annotated[CategoricalFeature, Tag("categorical")]
    | Annotated[BooleanFeature, Tag("boolean")],
    Discriminator(_feature_kind),
]


class LabelSpec(_Strict):
    name: str = Field(min_length=1)
    values: tuple[str, ...] = Field(min_length=2)  # order = class index in the model's output
    positive: str | None = None  # binary labels only: the class ROC/PR curves are drawn for

    @model_validator(mode="after")
    def _positive_is_a_value(self) -> LabelSpec:
        if len(set(self.values)) != len(self.values):
            raise ValueError("label.values has duplicates")
        if self.positive is not None:
            if len(self.values) != 2:
                raise ValueError(
                    "label.positive only means something for two classes; with "
                    f"{len(self.values)} the metrics are one-vs-rest and macro: remove it"
                )
            if self.positive not in self.values:
                raise ValueError(f"label.positive {self.positive!r} is not one of {self.values}")
        return self

    @property
    def positive_label(self) -> str | None:
        """The positive class of a binary label (the second value unless named), else None."""
        if len(self.values) != 2:
            return None
        return self.positive or self.values[1]


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
    features: tuple[Feature, ...] = Field(min_length=1)
    ignore: tuple[str, ...] = ()  # columns in the CSV that the model never sees (ids, dates)
    table: TableSpec

    @model_validator(mode="after")
    def _unique_columns(self) -> Contract:
        names = [feature.name for feature in self.features] + [self.label.name, *self.ignore]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"columns named twice in the contract: {duplicated}")
        return self

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Feature columns in contract order."""
        return tuple(feature.name for feature in self.features)

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the model's stages read: features and label (ignored ones left out)."""
        return (*self.feature_names, self.label.name)

    def feature(self, name: str) -> NumericFeature | CategoricalFeature | BooleanFeature:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(name)

    @classmethod
    def parse(cls, data: Any, source: str = "data contract") -> Contract:
        """Validate already-loaded YAML; every broken rule in one `ContractError`."""
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise ContractError(describe_errors(error, source)) from None

    @classmethod
    def load(cls, path: Path) -> Contract:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ContractError(f"{path}: no such file") from None
        except yaml.YAMLError as error:
            raise ContractError(f"{path}: not valid YAML: {error}") from None
        if not isinstance(data, dict):
            raise ContractError(f"{path}: expected a mapping with label, features and table")
        return cls.parse(data, str(path))


def describe_errors(error: ValidationError, source: str) -> str:
    """One line per broken rule: the key path (`features.3.max`) and what is wrong with it."""
    lines = [f"{source}: {error.error_count()} problem(s):"]
    for item in error.errors(include_url=False, include_input=False):
        # Discriminated unions add the tag to the path: features.2.numeric.max -> features.2.max
        loc = [
            str(part) for part in item["loc"] if part not in ("numeric", "categorical", "boolean")
        ]
        key = ".".join(loc) or "(top level)"
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"  x {key}: {message}")
    return "\n".join(lines)
