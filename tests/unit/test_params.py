"""params.yaml is read through typed, frozen models that reject typos."""

from pathlib import Path

import pydantic
import pytest
import yaml

from model.contract import Contract
from model.params import Params, contract_problems, load_checked
from tests.conftest import REPO_ROOT
from tests.tables import mixed_contract, write_mixed_table


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


def _with_directional(directional: dict[str, object]) -> Params:
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    raw["gate"]["behavior"]["directional"] = directional
    return Params.model_validate(raw)


def test_the_repository_params_fit_the_repository_contract(contract: Contract) -> None:
    assert contract_problems(Params.load(REPO_ROOT / "params.yaml"), contract) == []


def test_a_directional_check_on_a_feature_the_contract_lacks_is_named() -> None:
    problems = contract_problems(_with_directional({"gone": "increases"}), mixed_contract())
    assert any("gate.behavior.directional.gone" in p and "not a feature" in p for p in problems)


def test_a_direction_needs_a_numeric_feature() -> None:
    params = _with_directional({"Région": {"effect": "increases", "label": "red.0"}})
    [problem] = contract_problems(params, mixed_contract())
    assert "categorical" in problem


def test_three_classes_need_the_class_named() -> None:
    problems = contract_problems(_with_directional({"Size (cm)": "increases"}), mixed_contract())
    assert any("name the class" in problem for problem in problems)
    named = _with_directional({"Size (cm)": {"effect": "increases", "label": "red.0"}})
    assert contract_problems(named, mixed_contract()) == []


def test_an_unknown_class_is_named() -> None:
    params = _with_directional({"Size (cm)": {"effect": "decreases", "label": "purple"}})
    [problem] = contract_problems(params, mixed_contract())
    assert "purple" in problem


def test_load_checked_lists_every_problem(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    raw["gate"]["behavior"]["directional"] = {"a": "increases", "b": "decreases"}
    params_path, contract_path = tmp_path / "params.yaml", tmp_path / "contract.yaml"
    params_path.write_text(yaml.safe_dump(raw))
    write_mixed_table(tmp_path)
    with pytest.raises(ValueError, match=r"(?s)directional\.a.*directional\.b"):
        load_checked(params_path, contract_path)
