"""`validate`'s report pinned where `make mutation` found it unpinned: the terminal report a
person reads, line by line, and the JSON report's fields for a file that could not be read."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from model.validate import Violation, build_report, format_report, read_raw, validate_file
from tests.tables import mixed_contract


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
