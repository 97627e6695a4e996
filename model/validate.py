"""DVC stage `validate`: check data/raw against the data contract before anything else runs.

On any violation it prints a report a person can act on, writes it as JSON and exits non-zero,
so `dvc repro` stops here and every later stage keeps the outputs of its last good run.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from model.atomic import write_json_atomically
from model.contract import (
    BooleanFeature,
    CategoricalFeature,
    Contract,
    ContractError,
    NumericFeature,
)
from model.inputs import boolean_value
from model.lineage import file_digest

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Violation:
    """One broken rule: which, where, how many rows, and a few offending values."""

    rule: str
    column: str | None
    failing_rows: int
    message: str
    examples: list[Any] = field(default_factory=list)
    example_lines: list[int] = field(default_factory=list)  # CSV line numbers, header = 1


def _is_boolean(value: Any) -> bool:
    try:
        boolean_value(value)
    except ValueError:
        return False
    return True


def _column(feature: NumericFeature | CategoricalFeature | BooleanFeature) -> pa.Column:
    if isinstance(feature, CategoricalFeature):
        checks = [] if feature.unseen == "other" else [pa.Check.isin(list(feature.values))]
        return pa.Column(str, checks=checks, nullable=feature.nullable, coerce=True)
    if isinstance(feature, BooleanFeature):
        check = pa.Check(_is_boolean, element_wise=True, name="boolean", ignore_na=True)
        return pa.Column(None, checks=[check], nullable=feature.nullable)
    checks = [pa.Check(np.isfinite, name="finite", ignore_na=True)]
    if feature.dtype == "int64":  # checked as floats: an int column with nulls is read as float
        checks.append(pa.Check(lambda values: values == np.round(values), name="integer"))
    if feature.min is not None:
        checks.append(pa.Check.ge(feature.min))
    if feature.max is not None:
        checks.append(pa.Check.le(feature.max))
    return pa.Column("float64", checks=checks, nullable=feature.nullable, coerce=True)


def build_schema(contract: Contract) -> pa.DataFrameSchema:
    """Column rules as a pandera schema; table-level limits live in `table_violations`.
    Categoricals with `unseen: other` accept values outside their set: those rows train the
    `other` bucket."""
    columns = {feature.name: _column(feature) for feature in contract.features}
    for name in contract.ignore:  # present or not, never checked, never used
        columns[name] = pa.Column(None, nullable=True, required=False)
    columns[contract.label.name] = pa.Column(
        str, checks=[pa.Check.isin(list(contract.label.values))], nullable=False, coerce=True
    )
    return pa.DataFrameSchema(columns, strict=True)


_RULE_NAMES = {
    "column_in_dataframe": "missing_column",
    "column_in_schema": "unexpected_column",
    "not_nullable": "not_null",
    "coerce_dtype": "dtype",
    "dtype": "dtype",
    "in_range": "in_range",
    "greater_than_or_equal_to": "min",
    "less_than_or_equal_to": "max",
    "isin": "allowed_values",
    "finite": "finite",
    "boolean": "boolean",
    "integer": "integer",
}
_RULE_MESSAGES = {
    "missing_column": "column required by the contract is absent",
    "unexpected_column": "column not in the contract (add it there, or drop it from the data)",
    "not_null": "empty (NaN) values in a column the contract marks non-nullable",
    "dtype": "values that are not numbers",
    "in_range": "values outside the contract's [min, max]",
    "min": "values below the contract's min",
    "max": "values above the contract's max",
    "allowed_values": "values not listed in the contract",
    "finite": "infinite values",
    "boolean": "values that are not booleans (true/false, 1/0, yes/no)",
    "integer": "values with a fraction in an int64 column",
    "contract": "the data contract itself is malformed",
}


def _rule_name(check: str) -> str:
    base = re.split(r"[(\[]", check, maxsplit=1)[0]
    return _RULE_NAMES.get(base, base)


def _line(index: Any) -> int:
    """The CSV line a data row sits on (the header is line 1), for a person opening the file."""
    return int(index) + 2


def _plain(value: Any) -> Any:
    """JSON-safe example value (numpy scalars, NaN and inf as strings)."""
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else str(value)
    if isinstance(value, np.integer):
        return int(value)
    return value if isinstance(value, int | str | bool) or value is None else str(value)


def column_violations(frame: pd.DataFrame, contract: Contract) -> list[Violation]:
    """Every per-column rule pandera finds broken, grouped by rule and column."""
    try:
        build_schema(contract).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
    else:
        return []
    cases = cases.assign(rule=[_rule_name(str(check)) for check in cases["check"]])
    # Schema-level rules name the column in `failure_case`.
    schema_level = cases["rule"].isin(["missing_column", "unexpected_column"])
    cases.loc[schema_level, "column"] = cases.loc[schema_level, "failure_case"]
    # A column that is not numeric at all cannot be range-checked: report only its dtype.
    mistyped = set(cases.loc[cases["rule"] == "dtype", "column"])
    cases = cases[~(cases["column"].isin(mistyped) & (cases["rule"] != "dtype"))]

    violations = []
    for (rule, column), group in cases.groupby(["rule", "column"], sort=True, dropna=False):
        rows = group.dropna(subset=["index"]).drop_duplicates(subset=["index"])
        violations.append(
            Violation(
                rule=str(rule),
                column=str(column),
                failing_rows=len(rows),
                message=_RULE_MESSAGES.get(str(rule), str(group["check"].iloc[0])),
                examples=[_plain(value) for value in rows["failure_case"].head(MAX_EXAMPLES)],
                example_lines=[_line(index) for index in rows["index"].head(MAX_EXAMPLES)],
            )
        )
    return violations


def table_violations(frame: pd.DataFrame, contract: Contract) -> list[Violation]:
    """Limits on the table as a whole: row count, duplicates, class balance."""
    limits = contract.table
    violations = []
    if len(frame) < limits.min_rows:
        violations.append(
            Violation(
                rule="min_rows",
                column=None,
                failing_rows=0,
                message=f"{len(frame)} rows, the contract asks for at least {limits.min_rows}",
            )
        )
    # Over the model's columns: an id column makes every row look unique.
    used = [name for name in contract.columns if name in frame.columns]
    duplicated = frame.loc[:, used].duplicated(keep="first")
    if len(frame) and duplicated.mean() > limits.max_duplicate_fraction:
        rows = [_line(index) for index in frame.index[duplicated]]
        violations.append(
            Violation(
                rule="max_duplicate_fraction",
                column=None,
                failing_rows=len(rows),
                message=(
                    f"{duplicated.mean():.1%} of rows repeat an earlier row, "
                    f"the limit is {limits.max_duplicate_fraction:.1%}"
                ),
                example_lines=rows[:MAX_EXAMPLES],
            )
        )
    label = contract.label.name
    if len(frame) and label in frame.columns:
        shares = frame[label].astype(str).value_counts(normalize=True)
        shares = shares.reindex(list(contract.label.values), fill_value=0.0)
        rare = shares[shares < limits.min_class_fraction]
        if not rare.empty:
            violations.append(
                Violation(
                    rule="min_class_fraction",
                    column=label,
                    failing_rows=0,
                    message=(
                        "classes below the minimum share "
                        f"{limits.min_class_fraction:.0%}: "
                        + ", ".join(f"{name} {share:.1%}" for name, share in rare.items())
                    ),
                    examples=[str(name) for name in rare.index],
                )
            )
    return violations


def find_violations(frame: pd.DataFrame, contract: Contract) -> list[Violation]:
    """All broken rules, column rules first. No I/O: tests call this directly."""
    return column_violations(frame, contract) + table_violations(frame, contract)


def read_raw(path: Path, contract: Contract) -> pd.DataFrame | Violation:
    """Read the CSV, categoricals and the label as text (a code like '01' stays '01'); an
    unreadable file is itself a violation."""
    text_columns = [f.name for f in contract.features if f.kind == "categorical"]
    try:
        return pd.read_csv(path, dtype=dict.fromkeys([*text_columns, contract.label.name], str))
    except FileNotFoundError:
        return Violation("readable_file", None, 0, f"no such file: {path}")
    except pd.errors.EmptyDataError:
        return Violation("not_empty", None, 0, "the file is empty (not even a header row)")
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        return Violation("readable_file", None, 0, f"not a readable CSV: {error}")


def build_report(
    path: Path, frame: pd.DataFrame | None, violations: list[Violation]
) -> dict[str, Any]:
    return {
        "data": str(path),
        "md5": file_digest(path, "md5") if path.is_file() else None,
        "rows": 0 if frame is None else len(frame),
        "columns": 0 if frame is None else len(frame.columns),
        "passed": not violations,
        "violations": [asdict(violation) for violation in violations],
    }


def format_report(report: dict[str, Any]) -> str:
    """The terminal view: one line per broken rule, with where and a few examples."""
    if report["passed"]:
        size = f"{report['rows']} rows, {report['columns']} columns"
        return f"validate: {report['data']} passed ({size})"
    lines = [f"validate: {report['data']} FAILED {len(report['violations'])} rule(s):"]
    for violation in report["violations"]:
        where = violation["column"] or "(table)"
        count = f"{violation['failing_rows']} row(s)" if violation["failing_rows"] else ""
        lines.append(f"  x {violation['rule']:<22} {where:<28} {count:<11} {violation['message']}")
        examples, example_lines = violation["examples"], violation["example_lines"]
        if examples and example_lines:
            pairs = zip(example_lines, examples, strict=True)
            lines.append(
                "      e.g. " + ", ".join(f"line {line}: {value!r}" for line, value in pairs)
            )
        elif example_lines:
            lines.append("      e.g. lines " + ", ".join(str(line) for line in example_lines))
        elif examples:
            lines.append("      e.g. " + ", ".join(repr(value) for value in examples))
    lines.append("Fix the data (or data/contract.yaml if the contract is what changed) and re-run.")
    return "\n".join(lines)


def validate_file(path: Path, contract: Contract) -> dict[str, Any]:
    """Read and check one raw file; returns the report (also for unreadable files)."""
    frame = read_raw(path, contract)
    if isinstance(frame, Violation):
        return build_report(path, None, [frame])
    return build_report(path, frame, find_violations(frame, contract))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", type=Path, help="raw CSV to check")
    parser.add_argument("contract", type=Path, help="data contract (YAML)")
    parser.add_argument("report", type=Path, help="where to write the JSON report")
    args = parser.parse_args(argv)

    try:
        contract = Contract.load(args.contract)
    except ContractError as error:
        problem = Violation("contract", None, 0, str(error))
        report = build_report(args.data, None, [problem])
    else:
        report = validate_file(args.data, contract)
    write_json_atomically(args.report, report)
    print(format_report(report), file=sys.stdout if report["passed"] else sys.stderr)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
