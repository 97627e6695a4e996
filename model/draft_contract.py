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
import csv
import io
import math
import os
import re
import sys
import textwrap
import unicodedata
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pandera.pandas as pa
import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.representer import RoundTripRepresenter

from model.atomic import atomic_path
from model.contract import Contract, ContractError
from model.params import Params, contract_problems
from model.validate import find_violations, format_report, read_raw

CONTRACT_PATH = Path("data/contract.yaml")
DVC_PATH = Path("dvc.yaml")
PARAMS_PATH = Path("params.yaml")
RAW_FOLDER = Path("data/raw")

MIN_ROWS = 20  # fewer cannot be split into train, validation and test in any useful way
MIN_CLASS_ROWS = 5  # the stratified split puts each class in all three parts
MARGIN = 0.1  # numeric ranges: the observed range widened by this share of it on each side
MAX_CATEGORIES = 50  # more distinct strings than this is not a category set
FREE_TEXT_WORDS = 5  # a text column whose typical value has this many words is prose
MIN_ROWS_SHARE = 0.5  # table.min_rows: this share of the rows the draft saw
CLASS_SHARE_SLACK = 0.8  # table.min_class_fraction: this share of the rarest class's share
DIRECTIONAL_MIN_CORRELATION = 0.3  # |point-biserial r| with the positive class, to propose
DIRECTIONAL_MAX_FEATURES = 2
LINE_WIDTH = 100  # a feature longer than this on one line is written as a block
FILL_IN_SOURCE = "FILL IN: who collected the data, how, and where it was published"
FILL_IN_LICENCE = "FILL IN: the licence or terms of use"
BOOLEAN_PAIRS = (
    {"true", "false"},
    {"yes", "no"},
    {"t", "f"},
    {"y", "n"},
    {"1", "0"},
    {"1.0", "0.0"},
)
_ID_WORDS = {"id", "ids", "uuid", "guid", "key", "idx"}
_SAFE_PATH = re.compile(r"[\w./+@-]+")  # passes through a shell command unquoted
_DATE_LIKE = re.compile(r"\d{1,4}[-/.:]\d{1,2}|\b\d{4}\b")

Kind = Literal["numeric", "categorical", "boolean", "ignore"]


class DraftError(ValueError):
    """The CSV or the project cannot be used as it is; the message says why and what to do."""


@dataclass(frozen=True)
class Table:
    """The CSV read twice: with pandas' type inference, and every column as text (how
    `validate` reads categoricals and the label, so '01' stays '01')."""

    typed: pd.DataFrame
    text: pd.DataFrame


@dataclass(frozen=True)
class ColumnDraft:
    name: str
    kind: Kind
    spec: dict[str, Any] = field(default_factory=dict)  # the contract's feature entry
    why: str = ""  # ignore: the reason; others: what to look at, if anything


@dataclass(frozen=True)
class Draft:
    contract: dict[str, Any]  # plain data: what yaml.safe_load reads back from the file
    columns: tuple[ColumnDraft, ...]
    rows: int
    class_shares: dict[str, float]
    duplicate_fraction: float

    @property
    def parsed(self) -> Contract:
        return Contract.parse(self.contract, "drafted contract")


# --- reading -------------------------------------------------------------------------------


def read_table(path: Path) -> Table:
    """Both readings of the CSV, or `DraftError` naming what makes it unusable."""
    if not path.is_file():
        raise DraftError(f"{path}: no such file")
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
    if not head.strip():
        raise DraftError(f"{path}: the file is empty")
    if b"\0" in head:
        raise DraftError(f"{path}: a binary file, not a CSV (export it as UTF-8 CSV text)")
    try:
        header = next(csv.reader(io.StringIO(head.decode("utf-8", errors="replace"))), [])
        typed = pd.read_csv(path)
        text = pd.read_csv(path, dtype=str)
    except UnicodeDecodeError:
        raise DraftError(
            f"{path}: not UTF-8 text (line {_first_undecodable_line(path)}); save it as UTF-8"
        ) from None
    except pd.errors.EmptyDataError:
        raise DraftError(f"{path}: the file is empty (no header row)") from None
    except pd.errors.ParserError as error:
        raise DraftError(
            f"{path}: ragged rows, some with more fields than the header "
            f"({str(error).strip()}); a text field with a comma must be quoted"
        ) from None
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DraftError(f"{path}: column names used twice: {repeated}; rename them")
    if typed.empty:
        raise DraftError(f"{path}: a header and no data rows")
    if len(typed) < MIN_ROWS:
        raise DraftError(
            f"{path}: {len(typed)} rows; a model needs at least {MIN_ROWS} "
            "(train, validation and test are split from them)"
        )
    return Table(typed, text)


def _first_undecodable_line(path: Path) -> int:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 0


def check_label(table: Table, label: str) -> None:
    """The label column exists, has no nulls, and has 2+ classes each large enough to split."""
    columns = [str(name) for name in table.text.columns]
    if label not in columns:
        near = [name for name in columns if name.casefold() == label.casefold()]
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        separators = [mark for mark in ";\t|" if len(columns) == 1 and mark in columns[0]]
        if separators:
            hint = f" (the file looks {separators[0]!r}-separated: save it comma-separated)"
        raise DraftError(f"no column {label!r}{hint}; the columns are: {columns}")
    values = table.text[label]
    missing = values.isna()
    if missing.any():
        count = int(missing.sum())
        lines = ", ".join(str(index + 2) for index in values.index[missing][:5])
        raise DraftError(
            f"label {label!r} is empty in {count} of {len(values)} rows "
            f"(CSV lines {lines}{', ...' if count > 5 else ''}): a row without a label cannot "
            "train or test a model; drop those rows (pandas: frame.dropna(subset=[label])) "
            "and run this again"
        )
    counts = values.value_counts()
    if len(counts) < 2:
        raise DraftError(
            f"label {label!r} has one class ({counts.index[0]!r}): a classifier needs two or more"
        )
    small = counts[counts < MIN_CLASS_ROWS]
    if not small.empty:
        listed = ", ".join(f"{name!r} ({count})" for name, count in small.head(5).items())
        raise DraftError(
            f"label {label!r}: {len(small)} of its {len(counts)} classes have fewer than "
            f"{MIN_CLASS_ROWS} rows ({listed}{', ...' if len(small) > 5 else ''}); the split "
            "needs each class in train, validation and test. Is it a label (a few classes), "
            "not a number or an id? If so, merge or drop the rare classes"
        )


# --- one column ----------------------------------------------------------------------------


def _words(name: str) -> set[str]:
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)  # customerId -> customer Id
    return {word.lower() for word in re.split(r"[^0-9A-Za-z]+", spaced) if word}


def _looks_like_dates(values: pd.Series) -> bool:
    """Every value parses as a date or time and looks like one (digits with separators, or a
    year): 'Jan' or '5m' parse too, but are categories."""
    if not values.map(lambda value: bool(_DATE_LIKE.search(value))).all():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
        except (ValueError, TypeError, OverflowError):
            return False
    return bool(parsed.notna().all())


def widen(low: float, high: float, integer: bool) -> tuple[float, float]:
    """The range widened by MARGIN of its width on each side, rounded outwards to the margin's
    leading digit ([32.1, 59.6] -> [29, 63]); a column without negatives keeps min 0 at most."""
    margin = MARGIN * (high - low) or MARGIN * abs(high) or 1.0
    step = 10.0 ** math.floor(math.log10(margin))
    if integer:
        step = max(step, 1.0)
    digits = max(0, -math.floor(math.log10(step)))
    wide_low = round(math.floor((low - margin) / step) * step, digits)
    wide_high = round(math.ceil((high + margin) / step) * step, digits)
    if low >= 0 > wide_low:
        wide_low = 0.0
    return wide_low, wide_high


def _nulls(spec: dict[str, Any], nullable: bool, impute: str) -> dict[str, Any]:
    return spec | {"nullable": True, "impute": impute} if nullable else spec


def draft_column(name: str, typed: pd.Series, text: pd.Series, inferred: pa.Column) -> ColumnDraft:
    """The kind of one column, from pandera's inference (dtype, nulls, range) and its values."""
    values = text.dropna()
    present, distinct = len(values), int(values.nunique())
    nullable = bool(inferred.nullable) or present < len(text)
    if present == 0:
        return ColumnDraft(name, "ignore", why="empty: no values at all")
    if distinct == 1:
        return ColumnDraft(name, "ignore", why=f"constant: every value is {values.iloc[0]!r}")
    lowered = {value.strip().lower() for value in values.unique()}
    if pd.api.types.is_bool_dtype(typed) or lowered in BOOLEAN_PAIRS:
        spec = _nulls({"name": name, "kind": "boolean"}, nullable, "most_frequent")
        return ColumnDraft(name, "boolean", spec)
    named_like_id = bool(_words(name) & _ID_WORDS) and distinct > present / 2
    if pd.api.types.is_numeric_dtype(typed):
        return _numeric_column(name, typed, inferred, nullable, distinct, named_like_id)

    if _looks_like_dates(values):
        return ColumnDraft(
            name, "ignore", why=f"dates or times (e.g. {values.iloc[0]!r}): derive features by hand"
        )
    typical_words = values.str.split().str.len().median()
    if typical_words >= FREE_TEXT_WORDS:
        return ColumnDraft(
            name, "ignore", why=f"free text (a typical value has {typical_words:.0f} words)"
        )
    if distinct == present:
        return ColumnDraft(name, "ignore", why=f"unique per row ({distinct} values): an identifier")
    if named_like_id:
        return ColumnDraft(
            name, "ignore", why=f"named like an identifier, {distinct} values in {present} rows"
        )
    if distinct > MAX_CATEGORIES or (distinct > 10 and distinct > present / 2):
        return ColumnDraft(
            name,
            "ignore",
            why=f"{distinct} distinct values in {present} rows: too many for a category "
            "(free text or an identifier?)",
        )
    spec = {
        "name": name,
        "kind": "categorical",
        "values": sorted(values.unique()),
        "unseen": "reject",
    }
    return ColumnDraft(name, "categorical", _nulls(spec, nullable, "missing"))


def _numeric_column(
    name: str,
    typed: pd.Series,
    inferred: pa.Column,
    nullable: bool,
    distinct: int,
    named_like_id: bool,
) -> ColumnDraft:
    """dtype and range as pandera inferred them, widened; row numbers and ids ignored."""
    integer = str(inferred.dtype).startswith(("int", "uint"))
    statistics: dict[str, Any] = {}
    for check in inferred.checks:  # greater_than_or_equal_to(min), less_than_or_equal_to(max)
        statistics |= check.statistics
    low = float(statistics.get("min_value", typed.min()))
    high = float(statistics.get("max_value", typed.max()))
    present = int(typed.notna().sum())
    if not (math.isfinite(low) and math.isfinite(high)):
        return ColumnDraft(name, "ignore", why="infinite values: replace them, then draft again")
    if integer and distinct == present and high - low + 1 == present:
        return ColumnDraft(
            name, "ignore", why=f"a row number ({int(low)}..{int(high)}, one per row)"
        )
    if named_like_id:
        return ColumnDraft(
            name, "ignore", why=f"named like an identifier, {distinct} values in {present} rows"
        )
    wide_low, wide_high = widen(low, high, integer)
    spec = {
        "name": name,
        "kind": "numeric",
        "dtype": "int64" if integer else "float64",
        "min": int(wide_low) if integer else wide_low,
        "max": int(wide_high) if integer else wide_high,
    }
    why = ""
    if integer and distinct == present:
        why = "integers, a different one in every row: an identifier?"
    elif integer and high - low + 1 == distinct and distinct >= max(MIN_ROWS, present * 0.3):
        why = f"integers {int(low)}..{int(high)} without a gap: a counter or sample number?"
    return ColumnDraft(name, "numeric", _nulls(spec, nullable, "median"), why)


# --- the whole contract --------------------------------------------------------------------


def _class_order(values: Sequence[str]) -> list[str]:
    """Sorted as numbers when every class is one ('2' before '10'), else as text."""
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)


def _floor(value: float, digits: int) -> float:
    return float(math.floor(value * 10**digits) / 10**digits)


def _readable_floor(count: float) -> int:
    """Down to two significant digits: 172 -> 170."""
    if count < 100:
        return int(count)
    step = 10 ** (len(str(int(count))) - 2)
    return int(count // step * step)


def validation_frame(table: Table, contract: Contract) -> pd.DataFrame:
    """The CSV as `validate` reads it: categoricals and the label as text, the rest inferred."""
    frame = table.typed.copy()
    for name in [f.name for f in contract.features if f.kind == "categorical"]:
        frame[name] = table.text[name]
    frame[contract.label.name] = table.text[contract.label.name]
    return frame


def dataset_name(csv_path: Path) -> str:
    return re.sub(r"[_\s-]+", " ", csv_path.stem).strip() or "my table"


def draft_contract(table: Table, label: str, name: str) -> Draft:
    """The contract for this table, as plain data. No I/O: tests call this directly."""
    check_label(table, label)
    inferred = pa.infer_schema(table.typed)
    assert isinstance(inferred, pa.DataFrameSchema)  # a DataFrame in, a DataFrame schema out
    columns = tuple(
        draft_column(str(column), table.typed[column], table.text[column], inferred.columns[column])
        for column in table.typed.columns
        if column != label
    )
    features = [column.spec for column in columns if column.kind != "ignore"]
    if not features:
        reasons = "; ".join(f"{column.name!r}: {column.why}" for column in columns)
        raise DraftError(f"no column is usable as a feature ({reasons})")
    classes = _class_order(list(table.text[label].unique()))
    label_spec: dict[str, Any] = {"name": label, "values": classes}
    if len(classes) == 2:
        label_spec["positive"] = classes[1]
    contract: dict[str, Any] = {
        "dataset": {"name": name, "source": FILL_IN_SOURCE, "licence": FILL_IN_LICENCE, "url": ""},
        "label": label_spec,
        "features": features,
        "ignore": [column.name for column in columns if column.kind == "ignore"],
        "table": {"min_rows": 1, "max_duplicate_fraction": 1.0, "min_class_fraction": 0.0},
    }
    if not contract["ignore"]:
        del contract["ignore"]
    frame = validation_frame(table, Contract.parse(contract, "drafted contract"))
    used = [feature["name"] for feature in features] + [label]
    duplicates = float(frame.loc[:, used].duplicated(keep="first").mean())
    shares = frame[label].value_counts(normalize=True)
    rarest = float(shares.min())
    contract["table"] = {
        "min_rows": max(MIN_ROWS, _readable_floor(len(frame) * MIN_ROWS_SHARE)),
        "max_duplicate_fraction": min(1.0, math.ceil((duplicates + 0.01) * 100) / 100),
        "min_class_fraction": _floor(rarest * CLASS_SHARE_SLACK, 2)
        or _floor(rarest * CLASS_SHARE_SLACK, 3),
    }
    return Draft(
        contract=contract,
        columns=columns,
        rows=len(frame),
        class_shares={str(key): float(value) for key, value in shares.items()},
        duplicate_fraction=duplicates,
    )


def propose_directional(table: Table, contract: Contract) -> dict[str, tuple[str, float]]:
    """For a binary label: the numeric features most correlated with the positive class
    (point-biserial r above the threshold, strongest first), with the effect its sign implies."""
    positive = contract.label.positive_label
    if positive is None:
        return {}
    is_positive = (table.text[contract.label.name] == positive).astype(float)
    found = {}
    for feature in contract.features:
        if feature.kind != "numeric":
            continue
        r = float(pd.to_numeric(table.typed[feature.name]).astype(float).corr(is_positive))
        if math.isfinite(r) and abs(r) > DIRECTIONAL_MIN_CORRELATION:
            found[feature.name] = ("increases" if r > 0 else "decreases", r)
    strongest = sorted(found.items(), key=lambda item: -abs(item[1][1]))
    return dict(strongest[:DIRECTIONAL_MAX_FEATURES])


def model_name(name: str) -> str:
    """`<slug>-classifier`, a valid MLflow and BentoML model name ('Région 2' -> region-2)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:48].strip("-")
    return f"{slug or 'table'}-classifier"


# --- writing YAML --------------------------------------------------------------------------


def _reads_back(text: str) -> bool:
    """Whether PyYAML (YAML 1.1, what the stages load with) reads the plain scalar as this str,
    in a block and in a flow (`{name: ...}`): `yes`, `1.0`, `null`, `2007-11-11`, `a: b` or
    `0?` must be quoted."""
    try:
        return bool(yaml.safe_load(text) == text and yaml.safe_load(f"[{text}]") == [text])
    except yaml.YAMLError:
        return False


class _Representer(RoundTripRepresenter):
    """ruamel's round-trip writer, but with scalars PyYAML reads back as written."""


def _represent_str(representer: RoundTripRepresenter, value: str) -> Any:
    style = None if _reads_back(value) else '"'
    return representer.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _represent_float(representer: RoundTripRepresenter, value: float) -> Any:
    text = repr(value)  # PyYAML needs a dot in 1.0e-05 to read it as a float
    if "e" in text and "." not in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return representer.represent_scalar("tag:yaml.org,2002:float", text)


_Representer.add_representer(str, _represent_str)
_Representer.add_representer(float, _represent_float)


def _yaml() -> YAML:
    writer = YAML()
    writer.Representer = _Representer
    writer.width = 4096  # never wrap: _feature and _sequence choose one line or a block
    writer.indent(mapping=2, sequence=4, offset=2)
    return writer


def _dump(document: Any, writer: YAML) -> str:
    buffer = io.StringIO()
    writer.dump(document, buffer)
    return buffer.getvalue()


def _sequence(key: str, values: Sequence[Any], width: int) -> CommentedSeq:
    """`key: [a, b]` on one line when it fits in `width`, else one item per line."""
    node = CommentedSeq(values)
    node.fa.set_flow_style()
    if len(_dump({key: node}, _yaml()).rstrip("\n")) + 4 > width:
        node = CommentedSeq(values)
    return node


def _feature(spec: Mapping[str, Any], width: int) -> CommentedMap:
    """A feature on one line (`{name: x, kind: numeric, ...}`) when it fits in `width`, else a
    block."""
    flow = CommentedMap(spec)
    flow.fa.set_flow_style()
    if len(_dump(CommentedSeq([flow]), _yaml()).rstrip("\n")) <= width:
        return flow
    block = CommentedMap(spec)
    for key, value in spec.items():
        if isinstance(value, list):
            block[key] = _sequence(key, value, width)
    return block


def _comment(node: CommentedMap | CommentedSeq, comments: Mapping[Any, str], indent: int) -> None:
    """End-of-line comments, two columns after the longest of the lines they go on (an entry's
    first line)."""
    first_lines = [
        _dump({key: node[key]} if isinstance(node, CommentedMap) else [node[key]], _yaml())
        .splitlines()[0]
        .rstrip()
        for key in comments
    ]
    column = indent + 2 + max(len(line) for line in first_lines)
    for key, comment in comments.items():
        node.yaml_add_eol_comment(comment, key, column=column)


def render_contract(draft: Draft, csv_path: str) -> str:
    """The contract as commented YAML; raises ContractError if it does not read back as drafted."""
    data = draft.contract
    document = CommentedMap()
    document.yaml_set_start_comment(
        f"The data contract, drafted by `make contract` from {csv_path} ({draft.rows} rows):\n"
        "everything `validate` checks before anything else runs. Feature order = model input "
        "order.\nREVIEW before `make pipeline`: the dataset's source and licence, the positive "
        "class,\nthe category sets, the ranges (observed, widened by 10%) and the ignored columns."
    )
    document["dataset"] = CommentedMap(data["dataset"])
    document.yaml_add_eol_comment(
        "REVIEW: source and licence (the model card quotes them)", "dataset"
    )
    label = CommentedMap(data["label"])
    label["values"] = _sequence("values", label["values"], LINE_WIDTH - 45)  # room for a comment
    label_comments = {"values": "order = class index in the model's output"}
    if "positive" in label:
        label_comments["positive"] = "REVIEW: the class ROC/PR curves are drawn for"
    _comment(label, label_comments, indent=2)
    document["label"] = label
    features = CommentedSeq(_feature(spec, LINE_WIDTH) for spec in data["features"])
    notes = {
        index: f"REVIEW: {column.why}"
        for index, column in enumerate(c for c in draft.columns if c.kind != "ignore")
        if column.why
    }
    if notes:
        _comment(features, notes, indent=0)
    document["features"] = features
    if "ignore" in data:
        reasons = {column.name: column.why for column in draft.columns}
        ignore = CommentedSeq(data["ignore"])
        _comment(ignore, {i: reasons[name] for i, name in enumerate(data["ignore"])}, indent=0)
        document["ignore"] = ignore
    table = CommentedMap(data["table"])
    rarest = min(draft.class_shares, key=lambda key: draft.class_shares[key])
    _comment(
        table,
        {
            "min_rows": f"half of the {draft.rows} rows drafted from",
            "max_duplicate_fraction": (
                f"share of rows repeating an earlier one ({draft.duplicate_fraction:.1%} here)"
            ),
            "min_class_fraction": (
                f"rarest class here: {rarest} ({draft.class_shares[rarest]:.1%})"
            ),
        },
        indent=2,
    )
    document["table"] = table
    text = _dump(document, _yaml())
    try:
        same = yaml.safe_load(text) == data
    except yaml.YAMLError as error:
        raise ContractError(f"the drafted contract is not valid YAML (a bug): {error}") from None
    if not same:
        raise ContractError("the drafted contract does not read back as drafted (a bug)")
    return text


def point_dvc_yaml(text: str, raw_data: str) -> str:
    """dvc.yaml with its `- raw_data:` var naming the CSV; every other byte as it was."""
    pattern = re.compile(r"^(\s*-\s*raw_data:[ \t]*)([^#\n]*?)([ \t]+#[^\n]*)?$", re.MULTILINE)
    matches = list(pattern.finditer(text))
    if len(matches) != 1:
        raise DraftError(
            "dvc.yaml: expected one `- raw_data: <path>` line under `vars:`, found "
            f"{len(matches)}; add it and write the raw CSV's path in the stages as ${{raw_data}}"
        )
    [match] = matches
    scalar = yaml.safe_dump({"k": raw_data}, width=1000, allow_unicode=True)[3:].rstrip("\n")
    edited = text[: match.start(2)] + scalar + text[match.end(2) :]
    variables = yaml.safe_load(edited).get("vars")
    if variables != [{"raw_data": raw_data}] and {"raw_data": raw_data} not in variables:
        raise DraftError("dvc.yaml: the edited `raw_data` var does not read back (a bug)")
    return edited


def update_params(text: str, directional: Mapping[str, str], name: str) -> str:
    """params.yaml with the directional expectations and the model name replaced; comments and
    layout kept (ruamel round trip), the rest byte for byte."""
    writer = _yaml()
    writer.width = 100  # as `make tune APPLY=1` writes it
    writer.indent(mapping=2, sequence=2, offset=0)
    document = writer.load(text)
    document["gate"]["behavior"]["directional"] = CommentedMap(directional)
    document["registry"]["model_name"] = name
    return _dump(document, writer)


# --- the command ---------------------------------------------------------------------------


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

    # The CSV as the pipeline's `validate` stage will read it must pass the file as written.
    frame = read_raw(csv_path, contract)
    if not isinstance(frame, pd.DataFrame):
        raise DraftError(frame.message)
    violations = find_violations(frame, contract)
    if violations:
        report = {"data": relative, "passed": False, "violations": [asdict(v) for v in violations]}
        raise DraftError("the draft does not pass its own CSV (a bug):\n" + format_report(report))

    dvc_before = dvc_path.read_text(encoding="utf-8")
    try:
        variables = yaml.safe_load(dvc_before).get("vars") or []
    except (yaml.YAMLError, AttributeError) as error:
        raise DraftError(
            f"{dvc_path} is not a valid pipeline file; fix it first: {error}"
        ) from None
    old_raw = next((str(v["raw_data"]) for v in variables if "raw_data" in v), "")
    dvc_text = point_dvc_yaml(dvc_before, relative)

    params_before = params_path.read_text(encoding="utf-8")
    try:
        old_params = Params.model_validate(yaml.safe_load(params_before))
    except ValueError as error:
        raise DraftError(f"{params_path} is not valid as it is; fix it first:\n{error}") from None
    directional = propose_directional(table, contract)
    new_name = model_name(contract.dataset.name if contract.dataset else "table")
    params_text = update_params(
        params_before, {name: effect for name, (effect, _) in directional.items()}, new_name
    )
    params = Params.model_validate(yaml.safe_load(params_text))
    problems = contract_problems(params, contract)
    if problems:
        raise DraftError("params.yaml does not fit the draft (a bug): " + "; ".join(problems))

    floors = [
        f"{metric} {'min' if gate.higher_is_better else 'max'} "
        f"{gate.min if gate.higher_is_better else gate.max}"
        for metric, gate in params.gate.metrics.items()
        if (gate.min if gate.higher_is_better else gate.max) is not None
    ]
    floors.append(f"behavior.min_recall {params.gate.behavior.min_recall} (every class)")
    majority = max(draft.class_shares.items(), key=lambda item: item[1])
    return Plan(
        csv=relative,
        draft=draft,
        contract_text=contract_text,
        dvc_text=dvc_text,
        params_text=params_text,
        directional=directional,
        old_raw_data=old_raw,
        old_directional={
            name: (value if isinstance(value, str) else value.model_dump(exclude_none=True))
            for name, value in old_params.gate.behavior.directional.items()
        },
        old_model_name=old_params.registry.model_name,
        new_model_name=new_name,
        gate_floors=floors,
        majority=majority,
    )


def summary(plan: Plan) -> str:
    """What was written and what a person must review before `make pipeline`."""
    draft, contract, relative_csv = plan.draft, plan.draft.parsed, plan.csv
    lines = [f"contract: drafted {CONTRACT_PATH} from {relative_csv} ({draft.rows} rows)"]
    label = contract.label
    classes = ", ".join(f"{name} {draft.class_shares[name]:.0%}" for name in label.values)
    lines.append(
        _wrap(f"  label        {label.name!r}: {len(label.values)} classes ({classes})", 15)
    )
    if label.positive_label is not None:
        lines.append(f"               positive class: {label.positive_label!r}")
    by_kind: dict[str, list[str]] = {"numeric": [], "categorical": [], "boolean": []}
    for feature in contract.features:
        nullable = f", nulls -> {feature.imputation}" if feature.nullable else ""
        if feature.kind == "numeric":
            detail = f"{feature.dtype} [{feature.min:g}, {feature.max:g}]"
        elif feature.kind == "categorical":
            detail = f"{len(feature.values)} values"
        else:
            detail = "true/false"
        by_kind[feature.kind].append(f"{feature.name!r} ({detail}{nullable})")
    for kind, entries in by_kind.items():
        if entries:
            lines.append(_wrap(f"  {kind:<12} {len(entries)}: " + "; ".join(entries), 15))
    for column in draft.columns:
        if column.kind == "ignore":
            lines.append(f"  ignored      {column.name!r}: {column.why}")
    limits = contract.table
    lines.append(
        f"  table        min_rows {limits.min_rows}, max_duplicate_fraction "
        f"{limits.max_duplicate_fraction:g}, min_class_fraction {limits.min_class_fraction:g}"
    )
    lines.append(f"dvc.yaml: raw_data {plan.old_raw_data} -> {relative_csv}")
    lines.append("params.yaml:")
    lines.append(f"  registry.model_name {plan.old_model_name} -> {plan.new_model_name}")
    proposed = (
        ", ".join(
            f"{name}: {effect} (r = {r:+.2f})" for name, (effect, r) in plan.directional.items()
        )
        or "{}"
    )
    lines.append(
        _wrap(f"  gate.behavior.directional {plan.old_directional or '{}'} -> {proposed}", 4)
    )
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

    review = [
        f"{CONTRACT_PATH} dataset: fill in source and licence (the model card quotes them)",
    ]
    if label.positive_label is not None:
        review.append(
            f"label.positive is {label.positive_label!r}: the class ROC/PR curves, the "
            "`increases`/`decreases` directions and drift's prediction PSI refer to"
        )
    if by_kind["categorical"]:
        review.append(
            "category sets are the values this CSV has; `unseen: reject` refuses any other at "
            "serving time: add the values you expect, or use `unseen: other`"
        )
    if by_kind["numeric"]:
        review.append(
            "numeric min/max are this CSV's range widened by 10%: set the real limits where "
            "you know them (validate and serving refuse values outside)"
        )
    for column in draft.columns:
        if column.kind != "ignore" and column.why:
            review.append(f"{column.name!r}: {column.why} (if so, move it to `ignore`)")
    if "ignore" in draft.contract:
        review.append(
            "ignored columns are never features: "
            + ", ".join(repr(name) for name in draft.contract["ignore"])
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
    if not relative_csv.startswith(f"{RAW_FOLDER.as_posix()}/"):
        review.append(f"{relative_csv} is not under {RAW_FOLDER}/, where raw data belongs")
    review.append(f"commit {relative_csv} (or `dvc add` it if it is large) with these three files")
    lines.append("Review before `make pipeline`:")
    lines += [_wrap(f"  {number}. {item}", 5) for number, item in enumerate(review, start=1)]
    return "\n".join(lines)


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
