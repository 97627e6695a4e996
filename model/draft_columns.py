"""`make contract`, step 2: a kind for each column and the whole contract, as plain data."""

from __future__ import annotations

import math
import re
import unicodedata
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pandera.pandas as pa

from model.contract import Contract
from model.draft_table import MIN_ROWS, DraftError, Table, check_label

MARGIN = 0.1  # numeric ranges: the observed range widened by this share of it on each side
MAX_CATEGORIES = 50  # more distinct strings than this is not a category set
FREE_TEXT_WORDS = 5  # a text column whose typical value has this many words is prose
MIN_ROWS_SHARE = 0.5  # table.min_rows: this share of the rows the draft saw
CLASS_SHARE_SLACK = 0.8  # table.min_class_fraction: this share of the rarest class's share
DIRECTIONAL_MIN_CORRELATION = 0.3  # |point-biserial r| with the positive class, to propose
DIRECTIONAL_MAX_FEATURES = 2
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
_DATE_LIKE = re.compile(r"\d{1,4}[-/.:]\d{1,2}|\b\d{4}\b")

Kind = Literal["numeric", "categorical", "boolean", "ignore"]


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
