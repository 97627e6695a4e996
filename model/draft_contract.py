"""`make contract CSV=... LABEL=...`: draft data/contract.yaml from a CSV, point the pipeline at it.

What it writes, after every check below has passed (nothing at all otherwise):

  data/contract.yaml   one entry per column, a kind for each:
    numeric       int or float; min/max are the observed range widened by 10% of it, rounded
                  (kept at 0 for a column without negatives)
    categorical   text with at most 50 distinct values, listed as `values`; `unseen: reject`
    boolean       exactly two values of one pair: true/false, yes/no, t/f, y/n or 1/0
    ignore        never a feature, with the reason as a comment: a row number or other id
                  (unique per row, or named like one), dates and times, free text (sentences,
                  or too many distinct values), constant, empty or infinite-valued columns
    A column with nulls is `nullable` with its filling written out: median (numeric), `missing`
    (categorical: its own category), most_frequent (boolean). The label lists its classes
    (sorted; the second of two is `positive`: check it). Table limits come from the data (half
    its rows, its duplicate share, a little under its rarest class). `dataset:` holds
    placeholders for the source and licence that you fill in.
  dvc.yaml             the `raw_data:` line under `vars:` now names the CSV (nothing else moves).
  params.yaml          gate.behavior.directional: for two classes, the (at most 2) numeric
                       features whose correlation with the positive class is above 0.3, else {};
                       registry.model_name: <dataset>-classifier. Comments and layout are kept.

The CSV must be inside the project (the pipeline reads it from there): copy it into data/raw/
first; this command refuses a file outside and never copies. It also refuses, with the reason: a
missing, empty, header-only, binary or non-UTF-8 file, ragged rows, fewer than 20 rows, repeated
column names, a label column that is absent, has nulls, one class or a class under 5 rows, no
usable feature, and a path with spaces or shell characters (dvc.yaml pastes it into commands).

Everything drafted is checked before it is written: the contract is parsed back and the CSV
validated against it (no violation), params.yaml is loaded and checked against the contract.
Then it prints what it wrote and a list to review before `make pipeline` (source and licence,
positive class, category sets, ranges, ignored columns, and the gate floors in params.yaml,
which it never changes).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import textwrap
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from model.atomic import atomic_path
from model.contract import Contract, ContractError, Feature
from model.draft_columns import (
    DIRECTIONAL_MIN_CORRELATION,
    Draft,
    dataset_name,
    draft_contract,
    model_name,
    propose_directional,
    widen,
)
from model.draft_table import DraftError, read_table
from model.draft_yaml import LINE_WIDTH, point_dvc_yaml, render_contract, update_params
from model.params import Params, contract_problems
from model.validate import find_violations, format_report, read_raw

__all__ = [  # the command's API (tests import the helpers from here)
    "DraftError",
    "main",
    "model_name",
    "plan",
    "point_dvc_yaml",
    "summary",
    "update_params",
    "widen",
]

CONTRACT_PATH = Path("data/contract.yaml")
DVC_PATH = Path("dvc.yaml")
PARAMS_PATH = Path("params.yaml")
RAW_FOLDER = Path("data/raw")
_SAFE_PATH = re.compile(r"[\w./+@-]+")  # passes through a shell command unquoted


def project_path(csv_path: Path, root: Path) -> str:
    """The CSV's path relative to the project root, or DraftError if it is outside."""
    for resolve in (os.path.abspath, os.path.realpath):
        try:
            relative = Path(resolve(csv_path)).relative_to(resolve(root))
        except ValueError:
            continue
        if not _SAFE_PATH.fullmatch(relative.as_posix()):
            raise DraftError(
                f"{relative.as_posix()}: rename the file to letters, digits and . _ - / only "
                "(dvc.yaml pastes the path into the stages' commands unquoted)"
            )
        return relative.as_posix()
    raise DraftError(
        f"{csv_path} is outside the project ({Path(root).resolve()}): the pipeline reads its data "
        f"from the project. Copy it first: cp '{csv_path}' {root / RAW_FOLDER}/ and run this on "
        "the copy"
    )


@dataclass(frozen=True)
class Plan:
    """Everything to write, checked; and what to say about it."""

    csv: str  # relative to the project root, as dvc.yaml names it
    draft: Draft
    contract_text: str
    dvc_text: str
    params_text: str
    directional: dict[str, tuple[str, float]]
    old_raw_data: str
    old_directional: dict[str, Any]
    old_model_name: str
    new_model_name: str
    gate_floors: list[str]
    majority: tuple[str, float]


def plan(csv_path: Path, label: str, root: Path) -> Plan:
    """Read, draft and check everything; writes nothing. DraftError says what is wrong."""
    if not csv_path.is_file():
        raise DraftError(f"{csv_path}: no such file")
    relative = project_path(csv_path, root)
    dvc_path, params_path = root / DVC_PATH, root / PARAMS_PATH
    for path in (dvc_path, params_path):
        if not path.is_file():
            raise DraftError(f"{path}: no such file (is --root the project root?)")
    table = read_table(csv_path)
    draft = draft_contract(table, label, dataset_name(csv_path))
    contract_text = render_contract(draft, relative)
    contract = Contract.parse(yaml.safe_load(contract_text), "drafted contract")
    _check_csv_passes(csv_path, contract, relative)
    dvc_before = dvc_path.read_text(encoding="utf-8")
    old_raw_data = _current_raw_data(dvc_before, dvc_path)
    dvc_text = point_dvc_yaml(dvc_before, relative)
    params_before = params_path.read_text(encoding="utf-8")
    old_params = _current_params(params_before, params_path)
    directional = propose_directional(table, contract)
    new_name = model_name(contract.dataset.name if contract.dataset else "table")
    params_text = update_params(
        params_before, {name: effect for name, (effect, _) in directional.items()}, new_name
    )
    params = _checked_params(params_text, contract)
    return Plan(
        csv=relative,
        draft=draft,
        contract_text=contract_text,
        dvc_text=dvc_text,
        params_text=params_text,
        directional=directional,
        old_raw_data=old_raw_data,
        old_directional={
            name: (value if isinstance(value, str) else value.model_dump(exclude_none=True))
            for name, value in old_params.gate.behavior.directional.items()
        },
        old_model_name=old_params.registry.model_name,
        new_model_name=new_name,
        gate_floors=_gate_floors(params),
        majority=max(draft.class_shares.items(), key=lambda item: item[1]),
    )


def _check_csv_passes(csv_path: Path, contract: Contract, relative: str) -> None:
    """The CSV, read as the pipeline's `validate` stage will, passes the contract as written."""
    frame = read_raw(csv_path, contract)
    if not isinstance(frame, pd.DataFrame):
        raise DraftError(frame.message)
    violations = find_violations(frame, contract)
    if violations:
        report = {"data": relative, "passed": False, "violations": [asdict(v) for v in violations]}
        raise DraftError("the draft does not pass its own CSV (a bug):\n" + format_report(report))


def _current_raw_data(dvc_text: str, dvc_path: Path) -> str:
    """The `raw_data` var dvc.yaml names now ("" if none)."""
    try:
        variables = yaml.safe_load(dvc_text).get("vars") or []
    except (yaml.YAMLError, AttributeError) as error:
        raise DraftError(
            f"{dvc_path} is not a valid pipeline file; fix it first: {error}"
        ) from None
    return next((str(v["raw_data"]) for v in variables if "raw_data" in v), "")


def _current_params(params_text: str, params_path: Path) -> Params:
    try:
        return Params.model_validate(yaml.safe_load(params_text))
    except ValueError as error:
        raise DraftError(f"{params_path} is not valid as it is; fix it first:\n{error}") from None


def _checked_params(params_text: str, contract: Contract) -> Params:
    """The edited params.yaml, loaded and checked against the drafted contract."""
    params = Params.model_validate(yaml.safe_load(params_text))
    problems = contract_problems(params, contract)
    if problems:
        raise DraftError("params.yaml does not fit the draft (a bug): " + "; ".join(problems))
    return params


def _gate_floors(params: Params) -> list[str]:
    """`accuracy min 0.9`-style entries for the gate's absolute floors and ceilings."""
    floors = [
        f"{metric} {'min' if gate.higher_is_better else 'max'} "
        f"{gate.min if gate.higher_is_better else gate.max}"
        for metric, gate in params.gate.metrics.items()
        if (gate.min if gate.higher_is_better else gate.max) is not None
    ]
    floors.append(f"behavior.min_recall {params.gate.behavior.min_recall} (every class)")
    return floors


def summary(plan: Plan) -> str:
    """What was written and what a person must review before `make pipeline`."""
    lines = [f"contract: drafted {CONTRACT_PATH} from {plan.csv} ({plan.draft.rows} rows)"]
    lines += _contract_lines(plan.draft)
    lines.append(f"dvc.yaml: raw_data {plan.old_raw_data} -> {plan.csv}")
    lines += _params_lines(plan)
    lines.append("Review before `make pipeline`:")
    review = _review_items(plan)
    lines += [_wrap(f"  {number}. {item}", 5) for number, item in enumerate(review, start=1)]
    return "\n".join(lines)


def _feature_line(feature: Feature) -> str:
    """`'name' (float64 [0, 10], nulls -> median)`."""
    nullable = f", nulls -> {feature.imputation}" if feature.nullable else ""
    if feature.kind == "numeric":
        detail = f"{feature.dtype} [{feature.min:g}, {feature.max:g}]"
    elif feature.kind == "categorical":
        detail = f"{len(feature.values)} values"
    else:
        detail = "true/false"
    return f"{feature.name!r} ({detail}{nullable})"


def _contract_lines(draft: Draft) -> list[str]:
    """The label, the features by kind, the ignored columns and the table limits."""
    contract = draft.parsed
    label = contract.label
    classes = ", ".join(f"{name} {draft.class_shares[name]:.0%}" for name in label.values)
    lines = [_wrap(f"  label        {label.name!r}: {len(label.values)} classes ({classes})", 15)]
    if label.positive_label is not None:
        lines.append(f"               positive class: {label.positive_label!r}")
    for kind in ("numeric", "categorical", "boolean"):
        entries = [_feature_line(f) for f in contract.features if f.kind == kind]
        if entries:
            lines.append(_wrap(f"  {kind:<12} {len(entries)}: " + "; ".join(entries), 15))
    lines += [
        f"  ignored      {column.name!r}: {column.why}"
        for column in draft.columns
        if column.kind == "ignore"
    ]
    limits = contract.table
    lines.append(
        f"  table        min_rows {limits.min_rows}, max_duplicate_fraction "
        f"{limits.max_duplicate_fraction:g}, min_class_fraction {limits.min_class_fraction:g}"
    )
    return lines


def _params_lines(plan: Plan) -> list[str]:
    """The model name and the directional expectations, before and after."""
    label = plan.draft.parsed.label
    proposed = ", ".join(
        f"{name}: {effect} (r = {r:+.2f})" for name, (effect, r) in plan.directional.items()
    )
    lines = [
        "params.yaml:",
        f"  registry.model_name {plan.old_model_name} -> {plan.new_model_name}",
        _wrap(
            f"  gate.behavior.directional {plan.old_directional or '{}'} -> {proposed or '{}'}", 4
        ),
    ]
    if label.positive_label is None:
        lines.append(
            _wrap(
                f"    ({len(label.values)} classes: none proposed. Add checks by hand as "
                f"<numeric feature>: {{effect: increases, label: <one of {list(label.values)}>}})",
                5,
            )
        )
    elif not plan.directional:
        lines.append(
            f"    (no numeric feature's correlation with {label.positive_label!r} is above "
            f"{DIRECTIONAL_MIN_CORRELATION}; add checks by hand as <feature>: increases)"
        )
    return lines


def _review_items(plan: Plan) -> list[str]:
    """What a person must check: placeholders, guesses, and the gates set for other data."""
    draft = plan.draft
    contract = draft.parsed
    positive = contract.label.positive_label
    kinds = {feature.kind for feature in contract.features}
    review = [f"{CONTRACT_PATH} dataset: fill in source and licence (the model card quotes them)"]
    if positive is not None:
        review.append(
            f"label.positive is {positive!r}: the class ROC/PR curves, the "
            "`increases`/`decreases` directions and drift's prediction PSI refer to"
        )
    if "categorical" in kinds:
        review.append(
            "category sets are the values this CSV has; `unseen: reject` refuses any other at "
            "serving time: add the values you expect, or use `unseen: other`"
        )
    if "numeric" in kinds:
        review.append(
            "numeric min/max are this CSV's range widened by 10%: set the real limits where "
            "you know them (validate and serving refuse values outside)"
        )
    review += [
        f"{column.name!r}: {column.why} (if so, move it to `ignore`)"
        for column in draft.columns
        if column.kind != "ignore" and column.why
    ]
    return review + _closing_review_items(plan)


def _closing_review_items(plan: Plan) -> list[str]:
    """Ignored columns, proposed directions, the gate floors, and where the CSV lives."""
    review = []
    if "ignore" in plan.draft.contract:
        review.append(
            "ignored columns are never features: "
            + ", ".join(repr(name) for name in plan.draft.contract["ignore"])
            + " (move any that should be into `features`)"
        )
    if plan.directional:
        review.append(
            "gate.behavior.directional in params.yaml: correlations, not causes: keep only "
            "directions you expect to hold for every row"
        )
    review.append(
        "gate floors in params.yaml were set for the previous data; this table may not reach "
        f"them (always answering {plan.majority[0]!r} scores accuracy {plan.majority[1]:.2f}): "
        + ", ".join(plan.gate_floors)
    )
    if not plan.csv.startswith(f"{RAW_FOLDER.as_posix()}/"):
        review.append(f"{plan.csv} is not under {RAW_FOLDER}/, where raw data belongs")
    review.append(f"commit {plan.csv} (or `dvc add` it if it is large) with these three files")
    return review


def _wrap(text: str, indent: int) -> str:
    return textwrap.fill(text, LINE_WIDTH, subsequent_indent=" " * indent, break_on_hyphens=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model.draft_contract (make contract CSV=... LABEL=...)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("csv", type=Path, help="the raw CSV, inside the project (e.g. data/raw/)")
    parser.add_argument("--label", required=True, help="the column the model predicts")
    parser.add_argument(
        "--root", type=Path, default=Path("."), help="project root (dvc.yaml, params.yaml)"
    )
    args = parser.parse_args(argv)
    try:
        result = plan(args.csv, args.label, args.root)
    except (DraftError, ContractError) as error:
        print(f"contract: {error}\nNothing was written.", file=sys.stderr)
        return 1
    # All three written to temporary files first, then each moved over its target.
    with (
        atomic_path(args.root / CONTRACT_PATH) as contract,
        atomic_path(args.root / PARAMS_PATH) as params,
        atomic_path(args.root / DVC_PATH) as pipeline,
    ):
        contract.write_text(result.contract_text, encoding="utf-8")
        params.write_text(result.params_text, encoding="utf-8")
        pipeline.write_text(result.dvc_text, encoding="utf-8")
    print(summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
