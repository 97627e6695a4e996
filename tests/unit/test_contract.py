"""The data contract file is typed, refuses contradictions and says which key is wrong."""

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from model.contract import CategoricalFeature, Contract, ContractError, NumericFeature
from tests.tables import MIXED_CONTRACT


def _contract(**changes: object) -> dict[str, object]:
    raw: dict[str, object] = {
        "label": {"name": "y", "values": ["a", "b"], "positive": "b"},
        "features": [{"name": "x", "min": 0, "max": 1}],
        "table": {"min_rows": 1, "max_duplicate_fraction": 0, "min_class_fraction": 0},
    }
    raw.update(changes)
    return raw


def test_repository_contract_loads(contract: Contract) -> None:
    """Whatever table the project ships, its contract names features and 2+ classes."""
    assert contract.feature_names
    assert len(contract.label.values) >= 2


def test_a_feature_without_a_kind_is_numeric() -> None:
    contract = Contract.parse(_contract())
    assert isinstance(contract.features[0], NumericFeature)


def test_the_mixed_contract_has_every_kind() -> None:
    kinds = {feature.kind for feature in Contract.parse(MIXED_CONTRACT).features}
    assert kinds == {"numeric", "categorical", "boolean"}


def test_ranges_are_optional() -> None:
    contract = Contract.parse(_contract(features=[{"name": "x"}]))
    feature = contract.features[0]
    assert isinstance(feature, NumericFeature)
    assert (feature.min, feature.max) == (None, None)


def test_positive_label_must_be_a_value() -> None:
    with pytest.raises(ContractError, match="positive"):
        Contract.parse(_contract(label={"name": "y", "values": ["a", "b"], "positive": "c"}))


def test_positive_label_is_refused_for_three_classes() -> None:
    label = {"name": "y", "values": ["a", "b", "c"], "positive": "c"}
    with pytest.raises(ContractError, match="one-vs-rest"):
        Contract.parse(_contract(label=label))


def test_a_binary_label_has_a_positive_class_by_default() -> None:
    contract = Contract.parse(_contract(label={"name": "y", "values": ["no", "yes"]}))
    assert contract.label.positive_label == "yes"


def test_three_classes_have_no_positive_class() -> None:
    contract = Contract.parse(_contract(label={"name": "y", "values": ["a", "b", "c"]}))
    assert contract.label.positive_label is None


def test_a_column_cannot_be_named_twice() -> None:
    with pytest.raises(ContractError, match="named twice"):
        Contract.parse(_contract(features=[{"name": "y", "min": 0, "max": 1}]))


def test_an_ignored_column_cannot_be_a_feature() -> None:
    with pytest.raises(ContractError, match="named twice"):
        Contract.parse(_contract(ignore=["x"]))


def test_range_must_be_ordered() -> None:
    with pytest.raises(ContractError, match="above max"):
        Contract.parse(_contract(features=[{"name": "x", "min": 2, "max": 1}]))


def test_unknown_key_is_named_by_its_path() -> None:
    with pytest.raises(ContractError, match=r"features\.0\.maximum"):
        Contract.parse(_contract(features=[{"name": "x", "min": 0, "maximum": 1}]))


def test_unknown_kind_is_named() -> None:
    with pytest.raises(ContractError, match=r"features\.0"):
        Contract.parse(_contract(features=[{"name": "x", "kind": "text"}]))


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        ({"name": "c", "kind": "categorical", "values": ["a", "a"]}, "duplicates"),
        ({"name": "c", "kind": "categorical", "values": ["a", ""]}, "empty string"),
        ({"name": "c", "kind": "categorical", "values": []}, "at least 1"),
        ({"name": "x", "impute": "median"}, "not nullable"),
        ({"name": "x", "nullable": True, "impute": "constant"}, "needs a fill"),
        ({"name": "x", "nullable": True, "fill": 3}, "only used with impute: constant"),
        (
            {
                "name": "c",
                "kind": "categorical",
                "values": ["a"],
                "nullable": True,
                "impute": "constant",
                "fill": "z",
            },
            "not one of values",
        ),
        ({"name": "b", "kind": "boolean", "impute": "median", "nullable": True}, "impute"),
    ],
)
def test_contradictory_features_are_refused(feature: dict[str, object], message: str) -> None:
    with pytest.raises(ContractError, match=message):
        Contract.parse(_contract(features=[feature]))


def test_every_problem_is_listed_at_once() -> None:
    features = [{"name": "x", "min": 2, "max": 1}, {"name": "z", "maximum": 1}]
    with pytest.raises(ContractError) as error:
        Contract.parse(_contract(features=features, table={"min_rows": 0}))
    text = str(error.value)
    assert "features.0" in text
    assert "features.1.maximum" in text
    assert "table.min_rows" in text


def test_default_imputation_follows_the_kind() -> None:
    contract = Contract.parse(MIXED_CONTRACT)
    region = contract.feature("Région")
    assert isinstance(region, CategoricalFeature)
    assert region.imputation == "missing"
    assert contract.feature("Is Active").imputation == "most_frequent"


def test_unreadable_files_get_a_contract_error(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="no such file"):
        Contract.load(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("label: [")
    with pytest.raises(ContractError, match="not valid YAML"):
        Contract.load(broken)


@given(
    names=st.lists(
        st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=20),
        min_size=2,
        max_size=6,
        unique=True,
    )
)
def test_any_column_name_survives_the_yaml_round_trip(names: list[str]) -> None:
    """Dots, spaces, slashes, capitals, unicode: a name is data, never syntax."""
    *features, label = names
    raw = _contract(
        features=[{"name": name} for name in features],
        label={"name": label, "values": ["a", "b"]},
    )
    contract = Contract.parse(yaml.safe_load(yaml.safe_dump(raw, allow_unicode=True)))
    assert contract.feature_names == tuple(features)
    assert contract.label.name == label
