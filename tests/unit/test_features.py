"""The fitted preprocessing: fill values and scaling from training rows, one-hot categories, and
the same numbers whatever the column order, the nulls or the unseen values."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from model.features import (
    MISSING_COLUMN,
    OTHER_COLUMN,
    CategoricalEncoding,
    encode,
    fit_schema,
    label_codes,
)
from tests.tables import mixed_contract, mixed_frame

CONTRACT = mixed_contract()
FRAME = mixed_frame()
SCHEMA = fit_schema(FRAME, CONTRACT)


def test_fill_values_and_scaling_come_from_the_given_rows() -> None:
    weight = next(item for item in SCHEMA.numeric if item.name == "weight.kg")
    values = FRAME["weight.kg"]
    assert weight.fill == pytest.approx(values.median())
    assert weight.mean == pytest.approx(values.fillna(values.median()).mean())


def test_a_constant_feature_gets_unit_scale() -> None:
    schema = fit_schema(FRAME.assign(**{"Size (cm)": 5.0}), CONTRACT)
    assert schema.numeric[0].std == 1.0


def test_categories_come_from_the_contract_not_the_split() -> None:
    """A category absent from the training rows still has its column."""
    rows = FRAME[FRAME["Région"] != "east"]
    region = next(item for item in fit_schema(rows, CONTRACT).categorical if item.name == "Région")
    assert region.categories == ("north", "south", "east")


def test_encoded_columns_follow_kinds_and_policies() -> None:
    assert SCHEMA.encoded_names == (
        "Size (cm)",
        "weight.kg",
        "count",
        "Is Active",
        "Région=north",
        "Région=south",
        "Région=east",
        f"Région={MISSING_COLUMN}",
        "shape/type=round",
        "shape/type=square",
        f"shape/type={OTHER_COLUMN}",
    )


def test_encoding_ignores_column_order() -> None:
    columns = list(SCHEMA.feature_names)
    shuffled = FRAME[columns[::-1]]
    np.testing.assert_array_equal(encode(shuffled, SCHEMA), encode(FRAME[columns], SCHEMA))


def test_each_row_lights_one_column_per_categorical() -> None:
    encoded = encode(FRAME, SCHEMA)
    region = encoded[:, 4:8]
    assert (region.sum(axis=1) == 1).all()


def test_a_null_goes_to_the_missing_column_or_to_its_fill() -> None:
    rows = FRAME.head(2).assign(**{"Région": None, "shape/type": None})
    encoded = encode(rows, SCHEMA)
    assert (encoded[:, 7] == 1).all()  # Région=(missing)
    shape = next(item for item in SCHEMA.categorical if item.name == "shape/type")
    assert shape.fill in shape.categories
    assert (encoded[:, 8 + shape.categories.index(shape.fill)] == 1).all()


def test_an_unseen_value_goes_to_other_or_to_no_column() -> None:
    rows = FRAME.head(2).assign(**{"Région": "atlantis", "shape/type": "hexagon"})
    encoded = encode(rows, SCHEMA)
    assert (encoded[:, 4:8] == 0).all()  # unseen: reject -> serving refuses it before the model
    assert (encoded[:, 10] == 1).all()  # unseen: other


def test_a_numeric_null_gets_the_fill_value() -> None:
    weight = SCHEMA.numeric[1]
    encoded = encode(FRAME.head(1).assign(**{"weight.kg": None}), SCHEMA)
    assert encoded[0, 1] == pytest.approx((weight.fill - weight.mean) / weight.std, abs=1e-6)


@given(value=st.one_of(st.booleans(), st.sampled_from(["yes", "No", "TRUE", "0", "1"])))
def test_booleans_in_any_spelling_encode_alike(value: object) -> None:
    spelled = encode(FRAME.head(1).assign(**{"Is Active": value}), SCHEMA)
    truth = str(value).lower() in {"true", "yes", "1"}
    plain = encode(FRAME.head(1).assign(**{"Is Active": truth}), SCHEMA)
    np.testing.assert_array_equal(spelled, plain)


def test_categorical_codes_are_stable() -> None:
    encoding = CategoricalEncoding(
        name="c", nullable=True, categories=("a", "b"), missing_column=True, other_column=True
    )
    assert [encoding.code(v) for v in ("a", "b", "", "zzz")] == [0, 1, 2, 3]


def test_labels_map_to_contract_order() -> None:
    frame = pd.DataFrame({"Outcome Class": ["red.0", "ämber", "blue/green"]})
    assert label_codes(frame, SCHEMA).tolist() == [2, 0, 1]


def test_unknown_label_is_refused() -> None:
    with pytest.raises(ValueError, match="labels outside"):
        label_codes(pd.DataFrame({"Outcome Class": ["maybe"]}), SCHEMA)


def test_inputs_follow_the_contract() -> None:
    assert [item.name for item in SCHEMA.inputs] == list(CONTRACT.feature_names)
    assert SCHEMA.layout.categorical == ("Région", "shape/type")
    assert SCHEMA.layout.numeric == ("Size (cm)", "weight.kg", "count", "Is Active")
