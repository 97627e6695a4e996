"""Shared fixtures and hypothesis profiles (`dev` locally, `ci` in CI and the Makefile)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, settings

from model.contract import Contract
from model.params import Params, TuneParams
from model.tracking import TELEMETRY_OFF
from model.validate import read_raw
from tests.tables import mixed_contract, shipped_raw_path, write_mixed_table

for _name, _value in TELEMETRY_OFF.items():
    os.environ.setdefault(_name, _value)

# `dev` explores (new examples each run, failures kept in .hypothesis/); `ci` is derandomized:
# the same examples on every run and machine, so a red CI run is reproducible and a green one
# is not luck. HYPOTHESIS_PROFILE chooses (the Makefile's test targets set `ci`); with CI set
# (GitHub Actions sets it) the default is `ci`.
settings.register_profile("dev", max_examples=30, deadline=None)
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

pytest_plugins = ["tests.pipeline_fixtures"]

REPO_ROOT = Path(__file__).resolve().parents[1]
RAW_DATA = shipped_raw_path(REPO_ROOT)  # whatever table dvc.yaml points at
CONTRACT = REPO_ROOT / "data" / "contract.yaml"


@dataclass(frozen=True)
class Table:
    """A contract and a raw frame that honours it."""

    name: str
    contract: Contract
    frame: pd.DataFrame


def _read(path: Path, contract: Contract) -> pd.DataFrame:
    frame = read_raw(path, contract)
    assert isinstance(frame, pd.DataFrame), frame
    return frame


@pytest.fixture(scope="session")
def contract() -> Contract:
    """The project's contract, whichever table it describes."""
    return Contract.load(CONTRACT)


@pytest.fixture(scope="session")
def raw_frame(contract: Contract) -> pd.DataFrame:
    """The project's raw table, read as `validate` reads it."""
    return _read(RAW_DATA, contract)


@pytest.fixture(scope="session", params=["project", "mixed"])
def table(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Table:
    """Each test that takes it runs on the project's table and on the generated mixed one."""
    if request.param == "project":
        project = Contract.load(CONTRACT)
        return Table("project", project, _read(RAW_DATA, project))
    csv, _ = write_mixed_table(tmp_path_factory.mktemp("mixed"))
    return Table("mixed", mixed_contract(), _read(csv, mixed_contract()))


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
