"""The input file: hashed, read in chunks, and every row checked against the model's inputs
before anything is written."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.parquet as pq

from batch.problems import NULL, BatchError, RowProblems
from model.inputs import NULL_CATEGORY, InputLayout, RawInput, boolean_value

PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class InputFile:
    path: Path
    sha256: str
    columns: tuple[str, ...]
    is_parquet: bool


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def open_input(path: Path) -> InputFile:
    """Hash the file's bytes and read its header; nothing is scored yet."""
    if not path.is_file():
        raise BatchError(f"{path}: no such file")
    is_parquet = path.suffix.lower() in PARQUET_SUFFIXES
    try:
        if is_parquet:
            columns = tuple(pq.ParquetFile(path).schema_arrow.names)
        else:
            columns = tuple(str(name) for name in pd.read_csv(path, nrows=0).columns)
        sha256 = _sha256(path)
    except (OSError, ValueError, pyarrow.ArrowException) as error:
        kind = "Parquet" if is_parquet else "CSV"
        raise BatchError(f"{path}: unreadable as {kind}: {error}") from error
    return InputFile(path, sha256, columns, is_parquet)


def iter_frames(
    source: InputFile, layout: InputLayout, chunk_rows: int
) -> Iterator[tuple[int, pd.DataFrame]]:
    """(first row number, raw model columns) chunks of at most `chunk_rows` rows. A CSV's
    categorical and boolean columns are read as text, so a code like '01' stays '01'."""
    names = list(layout.names)
    start = 0
    try:
        if source.is_parquet:
            batches = pq.ParquetFile(source.path).iter_batches(batch_size=chunk_rows, columns=names)
            frames: Iterator[pd.DataFrame] = (batch.to_pandas() for batch in batches)
        else:
            text = {item.name: str for item in layout.inputs if item.kind != "numeric"}
            frames = pd.read_csv(source.path, usecols=names, dtype=text, chunksize=chunk_rows)
        for frame in frames:
            yield start, frame
            start += len(frame)
    except (OSError, ValueError, pyarrow.ArrowException) as error:
        raise BatchError(f"{source.path}: unreadable after row {start}: {error}") from error


def _text(value: Any) -> str:
    """A category as text; whole floats (a Parquet integer column with nulls) without `.0`."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _shown(values: Sequence[str], most: int = 8) -> str:
    listed = ", ".join(repr(value) for value in values[:most])
    return f"[{listed}{', ...' if len(values) > most else ''}]"


def _column_values(
    item: RawInput, column: pd.Series, start: int, problems: RowProblems
) -> np.ndarray:
    """One raw column as the graph's layout wants it (float64 with NaN, or str with '' for
    null), recording in `problems` every value the model cannot take."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype(object)
    null = column.isna().to_numpy()
    if not item.nullable:
        problems.add(item.name, NULL, null, column, start)
    if item.kind == "categorical":
        codes, uniques = pd.factorize(column)
        text = [_text(value) for value in uniques]
        if item.unseen == "reject":
            unseen = [i for i, value in enumerate(text) if value not in item.categories]
            problem = f"value(s) outside its categories {_shown(item.categories)} (unseen: reject)"
            problems.add(item.name, problem, np.isin(codes, unseen), column, start)
        categories: np.ndarray = np.array([*text, NULL_CATEGORY], dtype=object)[codes]
        return categories  # code -1 (null) picks the last entry, the null category
    if item.kind == "boolean":
        codes, uniques = pd.factorize(column)
        flags = []
        for value in uniques:
            try:
                flags.append(boolean_value(value))
            except ValueError:
                flags.append(np.inf)  # marked, then reported below
        mapped: np.ndarray = np.array([*flags, np.nan], dtype=np.float64)[codes]
        problem = "value(s) that are not booleans (true/false, 1/0, yes/no)"
        problems.add(item.name, problem, np.isinf(mapped), column, start)
        return mapped
    if pd.api.types.is_numeric_dtype(column.dtype):
        numbers: np.ndarray = column.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        parsed = pd.to_numeric(column, errors="coerce")
        numbers = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
        problems.add(
            item.name, "value(s) that are not numbers", np.isnan(numbers) & ~null, column, start
        )
    problems.add(item.name, "infinite value(s)", np.isinf(numbers), column, start)
    return numbers


def frame_feeds(
    frame: pd.DataFrame, layout: InputLayout, start: int, problems: RowProblems
) -> dict[str, np.ndarray]:
    """ONNX feeds for a chunk of raw rows; what the model cannot take goes to `problems`."""
    columns = {
        item.name: _column_values(item, frame[item.name], start, problems) for item in layout.inputs
    }
    return layout.column_feeds(columns)


def check_rows(source: InputFile, layout: InputLayout, chunk_rows: int) -> int:
    """Read the whole file once before anything is written; BatchError naming every column
    with rows the model cannot take. Returns the number of rows."""
    problems, rows = RowProblems(), 0
    for start, frame in iter_frames(source, layout, chunk_rows):
        frame_feeds(frame, layout, start, problems)
        rows = start + len(frame)
    if problems:
        raise BatchError(
            f"{source.path}: rows the model cannot take (row numbers count data rows from 0, "
            f"as row_index does); nothing was written:\n{problems.describe()}"
        )
    return rows
