"""`validate`'s behaviour pinned where `make mutation` found it unpinned: each column and table
rule's name, column, failing rows, lines and message; examples as plain JSON values; the
terminal report line by line; and `main`'s exit code, stream, JSON report and `--help`.
Equivalent survivors are listed in docs/testing.md."""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.lineage import file_digest
from model.validate import (
    Violation,
    build_report,
    find_violations,
    format_report,
    main,
    read_raw,
    table_violations,
    validate_file,
)
from tests.tables import mixed_contract, mixed_frame, write_mixed_table


def _report(*violations: Violation) -> dict[str, object]:
    return build_report(Path("data.csv"), None, list(violations))


def test_a_passing_report_says_its_size() -> None:
    report = {"data": "data.csv", "passed": True, "rows": 3, "columns": 2, "violations": []}
    assert format_report(report) == "validate: data.csv passed (3 rows, 2 columns)"


def test_a_failing_report_lists_each_rule_with_where_and_examples() -> None:
    both = Violation("max", "size", 2, "too big", examples=[9.5, 10], example_lines=[3, 7])
    lines_only = Violation("max_duplicate_fraction", None, 4, "repeats", example_lines=[5, 6])
    values_only = Violation("min_class_fraction", "kind", 0, "rare", examples=["b"])
    bare = Violation("min_rows", None, 0, "few")
    text = format_report(_report(both, lines_only, values_only, bare))
    assert text.splitlines() == [
        "validate: data.csv FAILED 4 rule(s):",
        f"  x {'max':<22} {'size':<28} {'2 row(s)':<11} too big",
        "      e.g. line 3: 9.5, line 7: 10",
        f"  x {'max_duplicate_fraction':<22} {'(table)':<28} {'4 row(s)':<11} repeats",
        "      e.g. lines 5, 6",
        f"  x {'min_class_fraction':<22} {'kind':<28} {'':<11} rare",
        "      e.g. 'b'",
        f"  x {'min_rows':<22} {'(table)':<28} {'':<11} few",
        "Fix the data (or data/contract.yaml if the contract is what changed) and re-run.",
    ]


def test_an_unreadable_file_is_reported_with_no_rows_no_columns_and_no_digest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "absent.csv"
    report = validate_file(path, mixed_contract())
    assert report == {
        "data": str(path),
        "md5": None,
        "rows": 0,
        "columns": 0,
        "passed": False,
        "violations": [asdict(Violation("readable_file", None, 0, f"no such file: {path}"))],
    }


def test_an_empty_file_and_a_garbled_one_are_named_as_such(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert read_raw(empty, mixed_contract()) == Violation(
        "not_empty", None, 0, "the file is empty (not even a header row)"
    )
    garbled = tmp_path / "garbled.csv"
    garbled.write_bytes(b'a,b\n"1,2\n')
    problem = read_raw(garbled, mixed_contract())
    assert isinstance(problem, Violation)
    assert (problem.rule, problem.column, problem.failing_rows) == ("readable_file", None, 0)
    assert problem.message.startswith("not a readable CSV: ")


# --- column rules: each named with its rule, column, failing rows and lines -------------------


def _frame(rows: int = 100) -> pd.DataFrame:
    """The mixed table with numbers as floats and categoricals as objects, so any cell can be
    set to any value."""
    return mixed_frame(rows).astype({"count": float, "Région": object, "shape/type": object})


def _named(frame: pd.DataFrame, rule: str, column: str | None) -> Violation:
    [violation] = [
        v for v in find_violations(frame, mixed_contract()) if (v.rule, v.column) == (rule, column)
    ]
    return violation


def test_a_fraction_in_an_int64_column_is_named_integer() -> None:
    frame = _frame()
    frame.loc[4, "count"] = 2.5
    assert find_violations(frame, mixed_contract()) == [
        Violation("integer", "count", 1, "values with a fraction in an int64 column", [2.5], [6])
    ]


def test_a_value_above_the_max_is_named_max_and_one_at_the_max_passes() -> None:
    frame = _frame()
    frame.loc[7, "Size (cm)"] = 10.0
    frame.loc[8, "count"] = 50.0
    assert find_violations(frame, mixed_contract()) == []
    frame.loc[7, "Size (cm)"] = 10.5
    frame.loc[8, "count"] = 51.0
    assert find_violations(frame, mixed_contract()) == [
        Violation("max", "Size (cm)", 1, "values above the contract's max", [10.5], [9]),
        Violation("max", "count", 1, "values above the contract's max", [51.0], [10]),
    ]


def test_a_value_below_the_min_is_named_min_with_its_message() -> None:
    frame = _frame()
    frame.loc[0, "count"] = -1.0
    assert find_violations(frame, mixed_contract()) == [
        Violation("min", "count", 1, "values below the contract's min", [-1.0], [2])
    ]


def test_infinite_values_are_reported_as_text_so_the_json_report_stays_valid() -> None:
    frame = _frame()
    frame.loc[3, "weight.kg"] = np.inf
    frame.loc[5, "weight.kg"] = -np.inf
    violation = _named(frame, "finite", "weight.kg")
    assert violation == Violation(
        "finite", "weight.kg", 2, "infinite values", ["inf", "-inf"], [5, 7]
    )
    json.dumps(asdict(violation), allow_nan=False)


def test_an_unlisted_category_passes_where_the_contract_has_an_other_bucket_only() -> None:
    frame = _frame()
    frame.loc[5, "shape/type"] = "hexagon"
    assert find_violations(frame, mixed_contract()) == []
    frame.loc[2, "Région"] = "hexagon"
    assert find_violations(frame, mixed_contract()) == [
        Violation(
            "allowed_values", "Région", 1, "values not listed in the contract", ["hexagon"], [4]
        )
    ]


def test_a_row_without_a_label_is_named_not_null() -> None:
    frame = _frame().astype({"Outcome Class": object})
    frame.loc[6, "Outcome Class"] = np.nan
    violation = _named(frame, "not_null", "Outcome Class")
    assert (violation.failing_rows, violation.example_lines) == (1, [8])
    assert violation.message == "empty (NaN) values in a column the contract marks non-nullable"


def test_empty_cells_in_an_ignored_column_pass() -> None:
    frame = _frame().astype({"row id": object})
    frame.loc[:10, "row id"] = np.nan
    assert find_violations(frame, mixed_contract()) == []


def test_many_failing_rows_are_all_counted_and_five_shown() -> None:
    frame = _frame()
    frame.loc[:7, "Size (cm)"] = 20.0
    assert _named(frame, "max", "Size (cm)") == Violation(
        "max", "Size (cm)", 8, "values above the contract's max", [20.0] * 5, [2, 3, 4, 5, 6]
    )


def test_absent_and_unlisted_columns_name_the_column_and_no_rows() -> None:
    frame = _frame().drop(columns=["weight.kg"]).assign(extra=1)
    assert find_violations(frame, mixed_contract()) == [
        Violation("missing_column", "weight.kg", 0, "column required by the contract is absent"),
        Violation(
            "unexpected_column",
            "extra",
            0,
            "column not in the contract (add it there, or drop it from the data)",
        ),
    ]


def test_violations_are_listed_by_rule_then_column() -> None:
    frame = _frame()
    frame.loc[1, "count"] = -3.0
    frame.loc[2, "Size (cm)"] = 11.0
    frame.loc[3, "Is Active"] = "perhaps"
    frame.loc[4, "Région"] = "west"
    frame.loc[5, "count"] = 60.0
    assert [(v.rule, v.column) for v in find_violations(frame, mixed_contract())] == [
        ("allowed_values", "Région"),
        ("boolean", "Is Active"),
        ("max", "Size (cm)"),
        ("max", "count"),
        ("min", "count"),
    ]


# --- table rules: the lines and the message a person reads ------------------------------------


def test_duplicates_point_at_the_repeats_not_the_rows_they_repeat() -> None:
    frame = _frame()
    frame = pd.concat([frame, frame.head(10)], ignore_index=True)
    assert table_violations(frame, mixed_contract()) == [
        Violation(
            "max_duplicate_fraction",
            None,
            10,
            "9.1% of rows repeat an earlier row, the limit is 5.0%",
            example_lines=[102, 103, 104, 105, 106],
        )
    ]


def test_rare_classes_are_named_in_the_contracts_order_with_their_shares() -> None:
    frame = _frame()
    frame["Outcome Class"] = ["red.0"] * 5 + ["ämber"] * 2 + ["blue/green"] * 93
    assert table_violations(frame, mixed_contract()) == [
        Violation(
            "min_class_fraction",
            "Outcome Class",
            0,
            "classes below the minimum share 10%: ämber 2.0%, red.0 5.0%",
            examples=["ämber", "red.0"],
        )
    ]


# --- `main`: exit code, stream, report file ---------------------------------------------------


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_main_passes_a_good_table_on_stdout_with_exit_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv, contract = write_mixed_table(tmp_path, rows=100)
    report = tmp_path / "report.json"
    code, out, err = _run([str(csv), str(contract), str(report)], capsys)
    assert (code, out, err) == (0, f"validate: {csv} passed (100 rows, 8 columns)\n", "")
    assert json.loads(report.read_text()) == {
        "data": str(csv),
        "md5": file_digest(csv, "md5"),
        "rows": 100,
        "columns": 8,
        "passed": True,
        "violations": [],
    }


def test_main_fails_a_bad_table_on_stderr_with_exit_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv, contract = write_mixed_table(tmp_path, rows=100)
    frame = pd.read_csv(csv)
    frame.loc[0, "count"] = 99
    frame.to_csv(csv, index=False)
    report = tmp_path / "report.json"
    code, out, err = _run([str(csv), str(contract), str(report)], capsys)
    assert (code, out) == (1, "")
    assert err.startswith(f"validate: {csv} FAILED 1 rule(s):\n  x max ")
    written = json.loads(report.read_text())
    assert (written["passed"], written["rows"], written["md5"]) == (
        False,
        100,
        file_digest(csv, "md5"),
    )
    assert [(v["rule"], v["column"], v["example_lines"]) for v in written["violations"]] == [
        ("max", "count", [2])
    ]


def test_main_reports_a_malformed_contract_as_one_table_level_violation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv, contract = write_mixed_table(tmp_path, rows=60)
    contract.write_text("- a list\n")
    report = tmp_path / "report.json"
    code, out, err = _run([str(csv), str(contract), str(report)], capsys)
    assert (code, out) == (1, "")
    written = json.loads(report.read_text())
    [violation] = written.pop("violations")
    assert written == {
        "data": str(csv),
        "md5": file_digest(csv, "md5"),
        "rows": 0,
        "columns": 0,
        "passed": False,
    }
    assert (violation["rule"], violation["column"], violation["failing_rows"]) == (
        "contract",
        None,
        0,
    )
    assert (violation["examples"], violation["example_lines"]) == ([], [])
    assert violation["message"] in err


def test_main_help_names_each_argument_and_the_stage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--help"])
    assert stopped.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "DVC stage `validate`: check data/raw against the data contract" in text
    for name, meaning in [
        ("data", "raw CSV to check"),
        ("contract", "data contract (YAML)"),
        ("report", "where to write the JSON report"),
    ]:
        assert f"{name} {meaning}" in text


def test_examples_are_plain_json_values_whatever_the_frame_held() -> None:
    """An in-memory frame can hold numpy scalars or objects; the report shows them as the
    nearest JSON value (numbers stay numbers, anything else becomes its text)."""
    frame = mixed_frame(100)
    frame.loc[3, "Is Active"] = 7
    frame.loc[4, "Is Active"] = datetime.date(2024, 1, 2)
    frame.loc[5, "Is Active"] = np.int64(9)
    frame.loc[6, "Is Active"] = 2.5
    violation = _named(frame, "boolean", "Is Active")
    assert violation.examples == [7, "2024-01-02", 9, 2.5]
    assert [type(value) for value in violation.examples] == [int, str, int, float]
    assert violation.message == "values that are not booleans (true/false, 1/0, yes/no)"
    json.dumps(asdict(violation), allow_nan=False)


def test_values_without_lines_are_listed_after_e_g() -> None:
    rare = Violation("min_class_fraction", "kind", 0, "rare", examples=["a", "b"])
    assert format_report(_report(rare)).splitlines()[2] == "      e.g. 'a', 'b'"


def test_a_report_whose_examples_and_lines_do_not_pair_up_is_refused() -> None:
    """Each example is printed beside its line; a report that lost one of them is not
    printed with the pairs shifted."""
    broken = Violation("max", "size", 3, "too big", examples=[9.5, 10], example_lines=[3])
    with pytest.raises(ValueError, match="zip"):
        format_report(_report(broken))


def test_numeric_codes_in_a_frame_are_judged_by_their_text() -> None:
    """A frame built in memory may hold category codes and labels as numbers; the contract
    lists them as text, and 1 is the listed '1'."""
    contract = mixed_contract()
    region = contract.feature("Région").model_copy(update={"values": ("1", "2", "3")})
    contract = contract.model_copy(
        update={
            "features": tuple(region if f.name == "Région" else f for f in contract.features),
            "label": contract.label.model_copy(update={"values": ("0", "1", "2")}),
        }
    )
    frame = mixed_frame(90)
    frame["Région"] = [row % 3 + 1 for row in range(90)]
    frame["Outcome Class"] = [row % 3 for row in range(90)]
    assert find_violations(frame, contract) == []
    frame.loc[4, "Région"] = 4
    frame.loc[5, "Outcome Class"] = 7
    unlisted = "values not listed in the contract"
    assert find_violations(frame, contract) == [
        Violation("allowed_values", "Outcome Class", 1, unlisted, ["7"], [7]),
        Violation("allowed_values", "Région", 1, unlisted, ["4"], [6]),
    ]


def test_too_few_rows_is_a_table_level_violation_with_no_failing_rows() -> None:
    minimum = mixed_contract().table.min_rows
    assert table_violations(_frame(minimum - 1), mixed_contract()) == [
        Violation(
            "min_rows", None, 0, f"{minimum - 1} rows, the contract asks for at least {minimum}"
        )
    ]


def test_missing_values_of_a_nullable_boolean_dtype_are_allowed_where_nulls_are() -> None:
    """pandas' own `boolean` dtype marks a gap as `pd.NA`, not NaN: still an empty cell."""
    frame = _frame()
    frame["Is Active"] = frame["Is Active"].astype("boolean")
    assert frame["Is Active"].isna().any()
    assert find_violations(frame, mixed_contract()) == []
