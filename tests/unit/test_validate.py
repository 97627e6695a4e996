"""The contract accepts valid frames and names the rule behind every kind of corruption."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from model.contract import BooleanFeature, CategoricalFeature, Contract, NumericFeature
from model.validate import find_violations, format_report, main, validate_file
from tests.conftest import Table
from tests.tables import mixed_contract, mixed_frame


def _rules(frame: pd.DataFrame, contract: Contract) -> set[tuple[str, str | None]]:
    return {(violation.rule, violation.column) for violation in find_violations(frame, contract)}


def _numeric(contract: Contract, bounded: bool = False) -> list[str]:
    return [
        f.name
        for f in contract.features
        if isinstance(f, NumericFeature) and (not bounded or f.min is not None)
    ]


def _required(contract: Contract) -> list[str]:
    return [f.name for f in contract.features if not f.nullable]


@st.composite
def valid_frames(draw: st.DrawFn, contract: Contract) -> pd.DataFrame:
    """Random rows honouring every rule (some pinned to the exact bounds, nulls where allowed),
    classes balanced, columns in any order."""
    n_rows = draw(st.integers(contract.table.min_rows, contract.table.min_rows + 200))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    pin = draw(st.sampled_from(["none", "low", "high"]))
    columns: dict[str, object] = {}
    for feature in contract.features:
        if isinstance(feature, NumericFeature):
            low = feature.min if feature.min is not None else -1e6
            high = feature.max if feature.max is not None else 1e6
            values = rng.uniform(low, high, n_rows)
            if feature.dtype == "int64":
                values = np.clip(np.round(values), np.ceil(low), np.floor(high))
            if pin != "none":
                values[:3] = low if pin == "low" else high
            column = pd.Series(values)
        elif isinstance(feature, CategoricalFeature):
            column = pd.Series(rng.choice(list(feature.values), n_rows), dtype=object)
        else:
            column = pd.Series(rng.random(n_rows) < 0.5, dtype=object)
        if feature.nullable:
            column[rng.random(n_rows) < 0.1] = None
        columns[feature.name] = column
    frame = pd.DataFrame(columns)
    labels = contract.label.values
    frame[contract.label.name] = [labels[row % len(labels)] for row in range(n_rows)]
    # Unique rows whatever the draw: the duplicate limit is its own test.
    frame = frame.drop_duplicates(subset=list(contract.feature_names)).reset_index(drop=True)
    assume(len(frame) >= contract.table.min_rows)
    return frame[draw(st.permutations(list(frame.columns)))]


@given(data=st.data())
def test_contract_accepts_any_valid_frame(table: Table, data: st.DataObject) -> None:
    """Generated frames that honour every rule raise no violation, whatever the column order."""
    assert find_violations(data.draw(valid_frames(table.contract)), table.contract) == []


def test_the_table_passes(table: Table) -> None:
    assert find_violations(table.frame, table.contract) == []


Corruption = Callable[[pd.DataFrame, int, str], pd.DataFrame]


def _set(value: object) -> Corruption:
    def corrupt(frame: pd.DataFrame, row: int, column: str) -> pd.DataFrame:
        frame = frame.astype({column: object})
        frame.loc[row, column] = value
        return frame

    return corrupt


# corruption: (how, the rule it breaks, which columns it applies to)
CELL_CORRUPTIONS: dict[str, tuple[Corruption, str, Callable[[Contract], list[str]]]] = {
    "NaN": (_set(np.nan), "not_null", _required),
    "inf": (_set(np.inf), "finite", _numeric),
    "negative inf": (_set(-np.inf), "finite", _numeric),
    "below range": (_set(-1e12), "min", lambda c: _numeric(c, bounded=True)),
    "text in a number column": (_set("twelve"), "dtype", _numeric),
    "unknown category": (
        _set("a value nobody listed"),
        "allowed_values",
        lambda c: [
            f.name for f in c.features if isinstance(f, CategoricalFeature) and f.unseen == "reject"
        ],
    ),
    "not a boolean": (
        _set("perhaps"),
        "boolean",
        lambda c: [f.name for f in c.features if isinstance(f, BooleanFeature)],
    ),
}


@pytest.mark.parametrize("kind", sorted(CELL_CORRUPTIONS))
@given(data=st.data())
def test_each_cell_corruption_is_named(table: Table, kind: str, data: st.DataObject) -> None:
    """Any feature cell broken in any row is reported with its rule, column and row count."""
    corrupt, rule, applies = CELL_CORRUPTIONS[kind]
    columns = applies(table.contract)
    if not columns:
        return  # this table has no column of that kind
    frame = table.frame
    row = data.draw(st.integers(0, len(frame) - 1), label="row")
    column = data.draw(st.sampled_from(columns), label="column")
    violations = find_violations(corrupt(frame, row, column), table.contract)
    named = [v for v in violations if v.rule == rule and v.column == column]
    assert named, f"{kind} in {column} not reported: {violations}"
    assert named[0].failing_rows == 1
    assert named[0].example_lines == [row + 2]


def test_missing_column_is_named(table: Table) -> None:
    column = table.contract.feature_names[-1]
    rules = _rules(table.frame.drop(columns=column), table.contract)
    assert ("missing_column", column) in rules


def test_extra_column_is_named(table: Table) -> None:
    frame = table.frame.assign(**{"an unlisted column": 1})
    assert ("unexpected_column", "an unlisted column") in _rules(frame, table.contract)


def test_ignored_columns_may_be_present_or_absent(table: Table) -> None:
    contract = table.contract.model_copy(update={"ignore": ("row id", "extra.note")})
    frame = table.frame.drop(columns=["row id"], errors="ignore").assign(**{"extra.note": "x"})
    assert find_violations(frame, contract) == []
    assert find_violations(table.frame.drop(columns=["row id"], errors="ignore"), contract) == []


def test_wrong_dtype_for_a_whole_column_is_named(table: Table) -> None:
    """A text column reports its dtype, not a cascade of range errors."""
    column = _numeric(table.contract)[0]
    rules = _rules(table.frame.assign(**{column: "large"}), table.contract)
    assert ("dtype", column) in rules
    assert not any(name == column and rule != "dtype" for rule, name in rules)


def test_unknown_label_is_named(table: Table) -> None:
    frame = table.frame.copy()
    frame.loc[3, table.contract.label.name] = "unsure"
    violations = find_violations(frame, table.contract)
    assert [(v.rule, v.examples) for v in violations] == [("allowed_values", ["unsure"])]


def test_duplicates_over_the_limit_are_named(table: Table) -> None:
    repeats = int(len(table.frame) * table.contract.table.max_duplicate_fraction) + 5
    frame = pd.concat([table.frame, table.frame.head(repeats)], ignore_index=True)
    assert ("max_duplicate_fraction", None) in _rules(frame, table.contract)


def test_duplicates_ignore_id_columns(table: Table) -> None:
    """Rows equal in every model column are duplicates even when their ids differ."""
    contract = table.contract.model_copy(update={"ignore": ("row id",)})
    frame = table.frame.drop(columns=["row id"], errors="ignore")
    repeats = int(len(frame) * contract.table.max_duplicate_fraction) + 5
    frame = pd.concat([frame, frame.head(repeats)], ignore_index=True)
    frame["row id"] = range(len(frame))
    assert ("max_duplicate_fraction", None) in _rules(frame, contract)


def test_duplicates_under_the_limit_pass(table: Table) -> None:
    frame = pd.concat([table.frame, table.frame.head(1)], ignore_index=True)
    assert find_violations(frame, table.contract) == []


def test_one_class_only_is_named(table: Table) -> None:
    label = table.contract.label
    frame = table.frame[table.frame[label.name] == label.values[0]]
    violations = [
        v for v in find_violations(frame, table.contract) if v.rule == "min_class_fraction"
    ]
    assert violations
    assert violations[0].examples == list(label.values[1:])


def test_too_few_rows_is_named(table: Table) -> None:
    rows = table.contract.table.min_rows - 1
    assert ("min_rows", None) in _rules(table.frame.head(rows), table.contract)


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


def test_categorical_codes_are_read_as_text(tmp_path: Path) -> None:
    """A category like '01' is not parsed as the number 1 and so matches its contract value."""
    contract = mixed_contract()
    region = contract.feature("Région")
    assert isinstance(region, CategoricalFeature)
    codes = region.model_copy(update={"values": ("01", "2", "03")})
    features = tuple(codes if f.name == "Région" else f for f in contract.features)
    contract = contract.model_copy(update={"features": features})
    frame = mixed_frame()
    frame["Région"] = frame["Région"].map({"north": "01", "south": "2", "east": "03"})
    path = tmp_path / "codes.csv"
    frame.to_csv(path, index=False)
    assert validate_file(path, contract)["passed"]


def test_terminal_report_names_rule_column_and_line(table: Table, tmp_path: Path) -> None:
    column = _numeric(table.contract, bounded=True)[0]
    frame = table.frame.copy()
    frame.loc[10, column] = -1e12
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    text = format_report(validate_file(path, table.contract))
    assert "min" in text
    assert column in text
    assert "line 12: -1000000000000.0" in text


def test_main_writes_the_report_and_exits_non_zero(
    raw_frame: pd.DataFrame, contract: Contract, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import CONTRACT

    path = tmp_path / "bad.csv"
    raw_frame.assign(**{contract.label.name: contract.label.values[0]}).to_csv(path, index=False)
    report_path = tmp_path / "report.json"
    assert main([str(path), str(CONTRACT), str(report_path)]) == 1
    report = json.loads(report_path.read_text())
    assert report["passed"] is False
    assert "min_class_fraction" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("label: [", "not valid YAML"),
        ("- a list\n", "expected a mapping"),
        (
            "label: {name: y, values: [a, b]}\nfeatures: [{name: x, maximum: 1}]\n"
            "table: {min_rows: 1, max_duplicate_fraction: 0, min_class_fraction: 0}\n",
            "features.0.maximum",
        ),
        (
            "label: {name: y, values: [a, b]}\nfeatures: [{name: x, kind: text}]\n"
            "table: {min_rows: 1, max_duplicate_fraction: 0, min_class_fraction: 0}\n",
            "features.0",
        ),
    ],
)
def test_a_malformed_contract_gets_a_report_not_a_traceback(
    raw_frame: pd.DataFrame,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    expected: str,
) -> None:
    contract_path = tmp_path / "contract.yaml"
    contract_path.write_text(text)
    data_path = tmp_path / "data.csv"
    raw_frame.to_csv(data_path, index=False)
    report_path = tmp_path / "report.json"
    assert main([str(data_path), str(contract_path), str(report_path)]) == 1
    report = json.loads(report_path.read_text())
    assert [v["rule"] for v in report["violations"]] == ["contract"]
    err = capsys.readouterr().err
    assert expected in err
    assert "Traceback" not in err
