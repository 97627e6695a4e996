"""Typed view of params.yaml: the one source of truth for every tunable value."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_PARAMS_PATH = Path("params.yaml")


class Section(BaseModel):
    """Frozen, and a typo in params.yaml fails at load instead of being ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class PrepareParams(Section):
    seed: int
    test_fraction: float = Field(gt=0, lt=1)
    val_fraction: float = Field(gt=0, lt=1)

    @model_validator(mode="after")
    def _leaves_rows_to_train(self) -> PrepareParams:
        if self.test_fraction + self.val_fraction >= 0.9:
            raise ValueError("test_fraction + val_fraction must leave at least 10% for training")
        return self


class TrainParams(Section):
    seed: int
    hidden_units: tuple[int, ...] = Field(min_length=1)
    epochs: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    weight_decay: float = Field(ge=0)


class EvaluateParams(Section):
    calibration_bins: int = Field(ge=2)


class ExportParams(Section):
    opset: int = Field(ge=17)
    parity_tolerance: float = Field(gt=0)


class Params(Section):
    prepare: PrepareParams
    train: TrainParams
    evaluate: EvaluateParams
    export: ExportParams

    @classmethod
    def load(cls, path: Path = DEFAULT_PARAMS_PATH) -> Params:
        """Read and check params.yaml; raises pydantic.ValidationError naming the bad key."""
        return cls.model_validate(yaml.safe_load(path.read_text()))
