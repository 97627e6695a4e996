"""The request schema takes any row the model's inputs allow, refuses every other one before it
reaches the batcher, and names the refused field by its column name.

The inputs are those `prepare` fits on the generated mixed table (tests/tables.py): numbers, a
boolean, categoricals under `reject` and `other`, nullable features of every kind, odd names."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from model.features import fit_schema
from model.inputs import InputLayout, RawInput
from serving.schema import (
    FLOAT32_MAX,
    MAX_CATEGORY_LENGTH,
    ModelInfo,
    RowSchema,
    example_rows,
    placeholder_row,
)
from tests.tables import mixed_contract, mixed_frame

INPUTS = fit_schema(mixed_frame(), mixed_contract()).inputs
# model.json's `inputs`, as export writes them (defaults left out)
METADATA: dict[str, Any] = {
    "inputs": [item.model_dump(mode="json", exclude_defaults=True) for item in INPUTS]
}
SCHEMA = RowSchema([RawInput.model_validate(item) for item in METADATA["inputs"]])
Row = SCHEMA.model


class Request(pydantic.BaseModel):
    rows: list[Row]  # type: ignore[valid-type]


def _input(predicate: Callable[[RawInput], bool]) -> RawInput:
    return next(item for item in INPUTS if predicate(item))


NUMERIC = _input(lambda item: item.kind == "numeric" and not item.nullable)
BOOLEAN = _input(lambda item: item.kind == "boolean")
CLOSED = _input(lambda item: item.kind == "categorical" and item.unseen == "reject")
OPEN = _input(lambda item: item.kind == "categorical" and item.unseen == "other")

FINITE_FLOAT32 = st.floats(-FLOAT32_MAX, FLOAT32_MAX) | st.integers(-(2**53), 2**53)
BEYOND_FLOAT32 = st.floats(FLOAT32_MAX, exclude_min=True, allow_infinity=False).flatmap(
    lambda value: st.sampled_from([value, -value])
)
OPEN_VALUES = st.text(min_size=1, max_size=MAX_CATEGORY_LENGTH)


def _value(item: RawInput) -> st.SearchStrategy[Any]:
    """Any value `item` accepts, null excluded."""
    if item.kind == "numeric":
        return FINITE_FLOAT32
    if item.kind == "boolean":
        return st.booleans()
    if item.unseen == "reject":
        return st.sampled_from(item.categories)
    return st.sampled_from(item.categories) | OPEN_VALUES


@st.composite
def valid_rows(draw: st.DrawFn) -> dict[str, Any]:
    """A row the model takes: nullable features null, absent or set; the others set."""
    row: dict[str, Any] = {}
    for item in INPUTS:
        choice = draw(st.sampled_from(["value", "null", "absent"] if item.nullable else ["value"]))
        if choice != "absent":
            row[item.name] = draw(_value(item)) if choice == "value" else None
    return row


def _errors(row: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(pydantic.ValidationError) as caught:
        Row.model_validate(row)
    return [(tuple(error["loc"]), error["type"]) for error in caught.value.errors()]


def _a_valid_row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {item.name: None for item in INPUTS}
    row |= {item.name: 1.5 for item in INPUTS if item.kind == "numeric"}
    row |= {CLOSED.name: CLOSED.categories[0], OPEN.name: "anything", BOOLEAN.name: True}
    return row | changes


def _same_feeds(left: dict[str, np.ndarray], right: dict[str, np.ndarray]) -> bool:
    return left.keys() == right.keys() and all(
        left[name].dtype == right[name].dtype
        and np.array_equal(left[name], right[name], equal_nan=left[name].dtype.kind == "f")
        for name in left
    )


@given(row=valid_rows())
def test_any_valid_row_is_accepted_and_fed_as_the_layout_lays_it_out(row: dict[str, Any]) -> None:
    """Validated rows feed the graph exactly as `InputLayout.feeds` lays out the raw row (an absent
    nullable feature is a null), and the log sees the raw row by column name."""
    validated = Row.model_validate(row)
    raw = {item.name: row.get(item.name) for item in INPUTS}
    assert _same_feeds(SCHEMA.feeds([validated]), InputLayout(INPUTS).feeds([raw]))
    assert SCHEMA.raw([validated]) == [raw]


@given(rows=st.lists(valid_rows(), min_size=1, max_size=8))
def test_a_request_of_valid_rows_feeds_every_row_in_order(rows: list[dict[str, Any]]) -> None:
    request = Request.model_validate({"rows": rows})
    raw = [{item.name: row.get(item.name) for item in INPUTS} for row in rows]
    assert _same_feeds(SCHEMA.feeds(request.rows), InputLayout(INPUTS).feeds(raw))


@given(item=st.sampled_from([item for item in INPUTS if not item.nullable]))
def test_null_is_refused_where_the_feature_is_not_nullable(item: RawInput) -> None:
    assert [loc for loc, _ in _errors(_a_valid_row(**{item.name: None}))] == [(item.name,)]


def test_a_missing_required_feature_is_named() -> None:
    row = _a_valid_row()
    del row[NUMERIC.name]
    assert _errors(row) == [((NUMERIC.name,), "missing")]


def test_a_nullable_feature_left_out_is_null() -> None:
    nullable = {item.name for item in INPUTS if item.nullable}
    required = {name: value for name, value in _a_valid_row().items() if name not in nullable}
    assert SCHEMA.raw([Row.model_validate(required)]) == [required | dict.fromkeys(nullable)]


@given(value=st.text(max_size=20))
def test_unknown_categories_are_refused_under_reject(value: str) -> None:
    if value in CLOSED.categories:
        return
    assert _errors(_a_valid_row(**{CLOSED.name: value})) == [((CLOSED.name,), "literal_error")]


@given(value=OPEN_VALUES)
def test_any_short_string_is_taken_under_other(value: str) -> None:
    validated = Row.model_validate(_a_valid_row(**{OPEN.name: value}))
    assert SCHEMA.raw([validated])[0][OPEN.name] == value


@pytest.mark.parametrize("bad", ["", "x" * (MAX_CATEGORY_LENGTH + 1), 3, True, ["round"]])
def test_an_empty_long_or_non_string_open_category_is_refused(bad: object) -> None:
    assert [loc for loc, _ in _errors(_a_valid_row(**{OPEN.name: bad}))] == [(OPEN.name,)]


@given(value=BEYOND_FLOAT32)
def test_numbers_beyond_float32_are_refused(value: float) -> None:
    """float32 would turn them into infinity, and the model's answer into nulls."""
    assert [loc for loc, _ in _errors(_a_valid_row(**{NUMERIC.name: value}))] == [(NUMERIC.name,)]


@pytest.mark.parametrize("bad", [1e39, -1e300, 3.5e38])
def test_the_classic_overflows_are_refused(bad: float) -> None:
    assert [loc for loc, _ in _errors(_a_valid_row(**{NUMERIC.name: bad}))] == [(NUMERIC.name,)]


def test_the_float32_extremes_are_accepted() -> None:
    for value in (FLOAT32_MAX, -FLOAT32_MAX):
        validated = Row.model_validate(_a_valid_row(**{NUMERIC.name: value}))
        assert np.isfinite(SCHEMA.feeds([validated])["numeric"]).all()


@pytest.mark.parametrize("bad", ["1.5", True, [1.0], {"v": 1}, math.nan, math.inf, -math.inf])
def test_non_numbers_and_non_finite_values_are_named(bad: object) -> None:
    assert [loc for loc, _ in _errors(_a_valid_row(**{NUMERIC.name: bad}))] == [(NUMERIC.name,)]


@pytest.mark.parametrize("bad", [1, 0, "true", "yes", 1.0])
def test_booleans_are_only_true_and_false(bad: object) -> None:
    assert [loc for loc, _ in _errors(_a_valid_row(**{BOOLEAN.name: bad}))] == [(BOOLEAN.name,)]


def test_unknown_feature_is_named() -> None:
    assert _errors(_a_valid_row(extra=4.0)) == [(("extra",), "extra_forbidden")]


def test_a_field_name_is_not_a_column_name() -> None:
    """Fields have synthetic Python names; only the column names are keys a client may send."""
    assert _errors(_a_valid_row(f0=1.0)) == [(("f0",), "extra_forbidden")]


def test_errors_in_a_request_name_the_row_and_the_column() -> None:
    rows = [_a_valid_row(), _a_valid_row(**{CLOSED.name: "nowhere"})]
    with pytest.raises(pydantic.ValidationError) as caught:
        Request.model_validate({"rows": rows})
    assert [error["loc"] for error in caught.value.errors()] == [("rows", 1, CLOSED.name)]


@pytest.mark.parametrize(
    "names",
    [
        ["class", "1st", "a.b/c d", "ünï côde", "model_config", "__init__"],
        ["f1", "f0", "x", "f2"],  # column names that are other columns' field names
    ],
)
def test_any_column_name_works(names: list[str]) -> None:
    inputs = [RawInput(name=name, kind="numeric") for name in names]
    schema = RowSchema(inputs)
    row = {name: float(index) for index, name in enumerate(names)}
    validated = schema.model.model_validate(row)
    assert schema.raw([validated]) == [row]
    np.testing.assert_array_equal(schema.feeds([validated])["numeric"], [list(row.values())])


def test_the_json_schema_lists_categories_as_an_enum_and_requires_non_nullable_features() -> None:
    schema = Row.model_json_schema()
    properties = schema["properties"]
    assert list(properties) == [item.name for item in INPUTS]
    closed = properties[CLOSED.name]
    enums = [option["enum"] for option in closed.get("anyOf", [closed]) if "enum" in option]
    assert enums == [list(CLOSED.categories)]
    assert "enum" not in str(properties[OPEN.name])
    assert set(schema["required"]) == {item.name for item in INPUTS if not item.nullable}
    assert schema["additionalProperties"] is False


def test_the_documented_examples_are_the_models_rows_in_input_order() -> None:
    rows = [{item.name: row[item.name] for item in reversed(INPUTS)} for row in _example_rows()]
    examples = example_rows({"examples": rows}, INPUTS)
    assert [list(row) for row in examples] == [[item.name for item in INPUTS]] * len(rows)
    Request.model_validate({"rows": examples})


def test_a_model_without_examples_documents_a_valid_placeholder_row() -> None:
    assert example_rows({}, INPUTS) == [placeholder_row(INPUTS)]
    Row.model_validate(placeholder_row(INPUTS))


def test_the_rows_export_stores_as_examples_are_valid_requests() -> None:
    """What export writes into model.json is what the API documents: it must validate."""
    Request.model_validate({"rows": _example_rows(count=50)})


def test_metadata_reports_the_inputs_as_model_json_has_them() -> None:
    info = ModelInfo(
        model_version="v1",
        model_tag="m:v1",
        feature_names=[item.name for item in INPUTS],
        inputs=METADATA["inputs"],
        labels=["a", "b", "c"],
        positive_label=None,
        onnx_sha256="0" * 64,
        training_commit="abc",
        data_md5="0" * 32,
        max_rows=256,
    )
    assert info.model_dump(mode="json")["inputs"] == METADATA["inputs"]


def _example_rows(count: int = 3) -> list[dict[str, Any]]:
    from model.export import example_rows as exported_rows
    from model.features import FeatureSchema

    schema: FeatureSchema = fit_schema(mixed_frame(), mixed_contract())
    frame = mixed_frame(rows=count, seed=1).loc[:, list(schema.feature_names)]
    return exported_rows(frame, schema, count=count)
