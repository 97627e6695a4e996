"""The request schema refuses every malformed row before it reaches the batcher."""

from __future__ import annotations

import math
from typing import Any

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from serving.schema import row_model

FEATURES = ["a", "b", "c"]
Row = row_model(FEATURES)


def _errors(row: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(pydantic.ValidationError) as caught:
        Row.model_validate(row)
    return [(tuple(error["loc"]), error["type"]) for error in caught.value.errors()]


@given(values=st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=3, max_size=3))
def test_any_finite_numbers_are_accepted(values: list[float]) -> None:
    row = Row.model_validate(dict(zip(FEATURES, values, strict=True)))
    assert [getattr(row, name) for name in FEATURES] == values


def test_integers_are_numbers() -> None:
    assert Row.model_validate({"a": 1, "b": 2, "c": 3}).a == 1.0  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad", ["1.5", True, None, [1.0], {"v": 1}, math.nan, math.inf, -math.inf])
def test_non_numbers_and_non_finite_values_are_named(bad: object) -> None:
    errors = _errors({"a": 1.0, "b": bad, "c": 3.0})
    assert [loc for loc, _ in errors] == [("b",)]


def test_missing_feature_is_named() -> None:
    assert _errors({"a": 1.0, "c": 3.0}) == [(("b",), "missing")]


def test_unknown_feature_is_named() -> None:
    assert _errors({"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}) == [(("d",), "extra_forbidden")]
