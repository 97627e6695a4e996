"""The data contract file is typed and refuses contradictions."""

import pydantic
import pytest

from model.contract import Contract


def _contract(**changes: object) -> dict[str, object]:
    raw: dict[str, object] = {
        "label": {"name": "y", "values": ["a", "b"], "positive": "b"},
        "features": [{"name": "x", "min": 0, "max": 1}],
        "table": {"min_rows": 1, "max_duplicate_fraction": 0, "min_class_fraction": 0},
    }
    raw.update(changes)
    return raw


def test_repository_contract_matches_the_data(contract: Contract) -> None:
    """The committed contract names 30 features and a binary label."""
    assert len(contract.feature_names) == 30
    assert contract.label.positive in contract.label.values


def test_positive_label_must_be_a_value() -> None:
    with pytest.raises(pydantic.ValidationError, match="positive"):
        Contract.model_validate(
            _contract(label={"name": "y", "values": ["a", "b"], "positive": "c"})
        )


def test_a_column_cannot_be_named_twice() -> None:
    with pytest.raises(pydantic.ValidationError, match="named twice"):
        Contract.model_validate(_contract(features=[{"name": "y", "min": 0, "max": 1}]))


def test_range_must_be_ordered() -> None:
    with pytest.raises(pydantic.ValidationError, match="above max"):
        Contract.model_validate(_contract(features=[{"name": "x", "min": 2, "max": 1}]))


def test_unknown_contract_key_is_rejected() -> None:
    with pytest.raises(pydantic.ValidationError, match="maximum"):
        Contract.model_validate(_contract(features=[{"name": "x", "min": 0, "maximum": 1}]))
