"""`make contract`, step 1: read the CSV twice and check its label, or say why it is unusable."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

MIN_ROWS = 20  # fewer cannot be split into train, validation and test in any useful way
MIN_CLASS_ROWS = 5  # the stratified split puts each class in all three parts


class DraftError(ValueError):
    """The CSV or the project cannot be used as it is; the message says why and what to do."""


@dataclass(frozen=True)
class Table:
    """The CSV read twice: with pandas' type inference, and every column as text (how
    `validate` reads categoricals and the label, so '01' stays '01')."""

    typed: pd.DataFrame
    text: pd.DataFrame


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
