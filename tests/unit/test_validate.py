"""The contract accepts valid frames and names the rule behind every kind of corruption."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from model.contract import Contract
from model.validate import find_violations, format_report, main, validate_file


def _rules(frame: pd.DataFrame, contract: Contract) -> set[tuple[str, str | None]]:
    return {(violation.rule, violation.column) for violation in find_violations(frame, contract)}


@st.composite
def valid_frames(draw: st.DrawFn, contract: Contract) -> pd.DataFrame:
    """Random rows inside every range, some pinned to the exact bounds, classes balanced."""
    n_rows = draw(st.integers(contract.table.min_rows, contract.table.min_rows + 200))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    lows = np.array([feature.min for feature in contract.features])
    highs = np.array([feature.max for feature in contract.features])
    values = rng.uniform(lows, highs, size=(n_rows, len(lows)))
    edge_rows = draw(st.integers(0, 3))
    values[:edge_rows] = lows if draw(st.booleans()) else highs
    frame = pd.DataFrame(values, columns=list(contract.feature_names))
    labels = contract.label.values
    frame[contract.label.name] = [labels[row % len(labels)] for row in range(n_rows)]
    columns = list(frame.columns)
    return frame[draw(st.permutations(columns))]  # column order is not part of the contract


@given(data=st.data())
def test_contract_accepts_any_valid_frame(contract: Contract, data: st.DataObject) -> None:
    """Generated frames that honour every rule raise no violation, whatever the column order."""
    assert find_violations(data.draw(valid_frames(contract)), contract) == []


def test_repository_data_passes(raw_frame: pd.DataFrame, contract: Contract) -> None:
    assert find_violations(raw_frame, contract) == []


Corruption = Callable[[pd.DataFrame, int, str], pd.DataFrame]


def _set(value: object) -> Corruption:
    def corrupt(frame: pd.DataFrame, row: int, column: str) -> pd.DataFrame:
        frame = frame.astype({column: object}) if isinstance(value, str) else frame.copy()
        frame.loc[row, column] = value
        return frame

    return corrupt


CELL_CORRUPTIONS: dict[str, tuple[Corruption, str]] = {
    "NaN": (_set(np.nan), "not_null"),
    "inf": (_set(np.inf), "finite"),
    "negative inf": (_set(-np.inf), "finite"),
    "below range": (_set(-1.0), "in_range"),
    "above range": (_set(1e9), "in_range"),
    "text in a number column": (_set("twelve"), "dtype"),
}


@pytest.mark.parametrize("kind", sorted(CELL_CORRUPTIONS))
@given(data=st.data())
def test_each_cell_corruption_is_named(
    raw_frame: pd.DataFrame, contract: Contract, kind: str, data: st.DataObject
) -> None:
    """Any feature cell broken in any row is reported with its rule, column and row count."""
    corrupt, rule = CELL_CORRUPTIONS[kind]
    row = data.draw(st.integers(0, len(raw_frame) - 1), label="row")
    column = data.draw(st.sampled_from(contract.feature_names), label="column")
    violations = find_violations(corrupt(raw_frame, row, column), contract)
    named = [v for v in violations if v.rule == rule and v.column == column]
    assert named, f"{kind} in {column} not reported: {violations}"
    assert named[0].failing_rows == 1
    assert named[0].example_lines == [row + 2]


def test_missing_column_is_named(raw_frame: pd.DataFrame, contract: Contract) -> None:
    assert ("missing_column", "mean_area") in _rules(raw_frame.drop(columns="mean_area"), contract)


def test_extra_column_is_named(raw_frame: pd.DataFrame, contract: Contract) -> None:
    assert ("unexpected_column", "patient_id") in _rules(raw_frame.assign(patient_id=1), contract)


def test_wrong_dtype_for_a_whole_column_is_named(
    raw_frame: pd.DataFrame, contract: Contract
) -> None:
    """A text column reports its dtype, not a cascade of range errors."""
    rules = _rules(raw_frame.assign(mean_area="large"), contract)
    assert ("dtype", "mean_area") in rules
    assert not any(column == "mean_area" and rule != "dtype" for rule, column in rules)


def test_unknown_label_is_named(raw_frame: pd.DataFrame, contract: Contract) -> None:
    frame = raw_frame.copy()
    frame.loc[3, "diagnosis"] = "unsure"
    violations = find_violations(frame, contract)
    assert [(v.rule, v.examples) for v in violations] == [("allowed_values", ["unsure"])]


def test_duplicates_over_the_limit_are_named(raw_frame: pd.DataFrame, contract: Contract) -> None:
    frame = pd.concat([raw_frame, raw_frame.head(20)], ignore_index=True)
    assert ("max_duplicate_fraction", None) in _rules(frame, contract)


def test_duplicates_under_the_limit_pass(raw_frame: pd.DataFrame, contract: Contract) -> None:
    frame = pd.concat([raw_frame, raw_frame.head(2)], ignore_index=True)
    assert find_violations(frame, contract) == []


def test_one_class_only_is_named(raw_frame: pd.DataFrame, contract: Contract) -> None:
    frame = raw_frame[raw_frame["diagnosis"] == "benign"]
    violations = [v for v in find_violations(frame, contract) if v.rule == "min_class_fraction"]
    assert violations
    assert violations[0].examples == ["malignant"]


def test_too_few_rows_is_named(raw_frame: pd.DataFrame, contract: Contract) -> None:
    assert ("min_rows", None) in _rules(raw_frame.head(50), contract)


def test_empty_file_is_named(tmp_path: Path, contract: Contract) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    report = validate_file(path, contract)
    assert [v["rule"] for v in report["violations"]] == ["not_empty"]


def test_header_only_is_named(tmp_path: Path, contract: Contract) -> None:
    path = tmp_path / "header.csv"
    path.write_text(",".join(contract.columns) + "\n")
    report = validate_file(path, contract)
    assert [v["rule"] for v in report["violations"]] == ["min_rows"]


def test_missing_file_is_named(tmp_path: Path, contract: Contract) -> None:
    report = validate_file(tmp_path / "absent.csv", contract)
    assert report["violations"][0]["rule"] == "readable_file"


def test_terminal_report_names_rule_column_and_line(
    raw_frame: pd.DataFrame, contract: Contract, tmp_path: Path
) -> None:
    frame = raw_frame.copy()
    frame.loc[10, "mean_radius"] = -3.0
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    text = format_report(validate_file(path, contract))
    assert "in_range" in text
    assert "mean_radius" in text
    assert "line 12: -3.0" in text


def test_main_writes_the_report_and_exits_non_zero(
    raw_frame: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import CONTRACT

    path = tmp_path / "bad.csv"
    raw_frame.assign(diagnosis="benign").to_csv(path, index=False)
    report_path = tmp_path / "report.json"
    assert main([str(path), str(CONTRACT), str(report_path)]) == 1
    report = json.loads(report_path.read_text())
    assert report["passed"] is False
    assert "min_class_fraction" in capsys.readouterr().err
