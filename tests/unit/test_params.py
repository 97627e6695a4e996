"""params.yaml is read through typed, frozen models that reject typos."""

from pathlib import Path

import pydantic
import pytest
import yaml

from model.params import Params
from tests.conftest import REPO_ROOT


def _write(tmp_path: Path, mutate: dict[str, dict[str, object]]) -> Path:
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    for section, values in mutate.items():
        raw[section].update(values)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_repository_params_load() -> None:
    """The committed params.yaml is valid."""
    params = Params.load(REPO_ROOT / "params.yaml")
    assert params.train.epochs >= 1


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    """A typo fails at load and names the key."""
    with pytest.raises(pydantic.ValidationError, match="epoch"):
        Params.load(_write(tmp_path, {"train": {"epoch": 3}}))


def test_fractions_must_leave_rows_to_train(tmp_path: Path) -> None:
    """Test and validation shares that eat the training split are refused."""
    with pytest.raises(pydantic.ValidationError, match="at least 10%"):
        Params.load(_write(tmp_path, {"prepare": {"test_fraction": 0.5, "val_fraction": 0.45}}))


def test_params_are_frozen() -> None:
    """Code cannot change a loaded value behind the file's back."""
    params = Params.load(REPO_ROOT / "params.yaml")
    with pytest.raises(pydantic.ValidationError):
        params.train.epochs = 1  # type: ignore[misc]
