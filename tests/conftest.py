"""Shared fixtures and hypothesis profiles (`dev` locally, `ci` in .ci/run)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, settings

from model.contract import Contract
from model.params import Params, TuneParams
from model.tracking import TELEMETRY_OFF

for _name, _value in TELEMETRY_OFF.items():
    os.environ.setdefault(_name, _value)

settings.register_profile("dev", max_examples=30, deadline=None)
settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

pytest_plugins = ["tests.pipeline_fixtures"]

REPO_ROOT = Path(__file__).resolve().parents[1]
RAW_DATA = REPO_ROOT / "data" / "raw" / "breast_cancer.csv"
CONTRACT = REPO_ROOT / "data" / "contract.yaml"


@pytest.fixture(scope="session")
def contract() -> Contract:
    return Contract.load(CONTRACT)


@pytest.fixture(scope="session")
def raw_frame() -> pd.DataFrame:
    return pd.read_csv(RAW_DATA)


@pytest.fixture
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A private MLflow SQLite store, so tests never touch the project's mlflow.db."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def tune_params(**changes: Any) -> TuneParams:
    """The project's `tune` section with `changes`, validated as params.yaml would be."""
    current = Params.load(REPO_ROOT / "params.yaml").tune.model_dump()
    return TuneParams.model_validate(current | changes)
