"""Batch scoring: a CSV or Parquet file through the champion model into a database table.

    python -m batch data.csv                         # champion -> sqlite:///predictions.db
    python -m batch data.parquet --db postgresql+psycopg://user@host/db
    python -m batch data.csv --model-tag <registry.model_name>:v3-1a2b3c4d
    python -m batch data.csv --model-dir models      # an exported model.onnx + model.json

The input holds raw rows, as the data contract describes them: numbers, category strings,
booleans (true/false, 1/0, yes/no) and empty cells for nulls, in any column order; columns the
model does not take (ids, the label) are ignored. The model's exported graph does imputation,
encoding and scaling, so rows are only laid out as its inputs (model/inputs.py).

Rows the model cannot take (a null in a feature that is not nullable, a value outside a
categorical's values under `unseen: reject`, text in a numeric column) stop the run before
anything is written, with the column, the problem and example row numbers. Row numbers count
data rows from 0, the first row after a CSV's header, as the table's `row_index` does.

The table has one row per input row and model: `label` (the predicted class) and one probability
column per class. A class's column is `p_` and its label made SQL-safe: accents dropped,
lowercased, every run of characters other than a-z and 0-9 one `_`, at most 63 characters
(PostgreSQL's limit); a label that comes out empty or like an earlier one gets its class index
appended (`p_blue_green`, `p_amber`, `p_3`). The command prints the mapping when a name differs
from the label, and on PostgreSQL each column's comment holds its label.

The file is read in chunks, so inputs larger than memory work, and each chunk is committed in its
own transaction. A row is keyed by (input sha256, model version, row index) and inserted with
ON CONFLICT DO NOTHING: re-running the same file with the same model adds nothing, and a run that
was interrupted resumes after the rows it already stored (whole chunks are skipped, not rescored).

Torch-free, like the rest of `serving/`: onnxruntime, numpy, pandas, pyarrow and SQLAlchemy.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import pyarrow
import pyarrow.parquet as pq
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    Engine,
    Insert,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    func,
    inspect,
    make_url,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from model.inference import layout_of, onnx_session, predict_proba
from model.inputs import NULL_CATEGORY, InputLayout, RawInput, boolean_value
from serving.model_store import METADATA_FILE, ONNX_FILE, model_version, use_project_store

DEFAULT_DB = "sqlite:///predictions.db"
DEFAULT_TABLE = "predictions"
DEFAULT_CHUNK_ROWS = 50_000
PARQUET_SUFFIXES = (".parquet", ".pq")
# The primary key. Version before row index, so "rows stored for this input and model" is an
# index range scan.
KEY = ("input_sha256", "model_version", "row_index")
# Dialects whose INSERT ... ON CONFLICT DO NOTHING SQLAlchemy writes for us.
DIALECTS = ("sqlite", "postgresql")
PROBABILITY_PREFIX = "p_"
MAX_COLUMN_NAME = 63  # PostgreSQL cuts longer identifiers
EXAMPLE_ROWS = 5  # rows named per problem in an error


class BatchError(RuntimeError):
    """A problem the user can fix; the message says what and where."""


@dataclass(frozen=True)
class BatchModel:
    session: ort.InferenceSession
    layout: InputLayout  # the raw inputs the graph takes
    labels: tuple[str, ...]
    version: str

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.layout.names


@dataclass(frozen=True)
class InputFile:
    path: Path
    sha256: str
    columns: tuple[str, ...]
    is_parquet: bool


@dataclass(frozen=True)
class Progress:
    stored: int  # rows of this input stored for this model, earlier runs included
    total: int  # rows in the input, counted by the check before scoring
    scored: int  # rows scored by this run
    elapsed_s: float


@dataclass(frozen=True)
class Summary:
    rows: int
    scored: int
    already_stored: int
    elapsed_s: float


# --- the model ---------------------------------------------------------------------------------


def load_model_dir(directory: Path, version: str | None = None, threads: int = 1) -> BatchModel:
    """model.onnx + model.json from a folder; without `version`, named after the file's sha256.
    The inputs come from model.json's `inputs`, else from the ONNX file's own metadata."""
    onnx_file, metadata_file = directory / ONNX_FILE, directory / METADATA_FILE
    for required in (onnx_file, metadata_file):
        if not required.is_file():
            raise BatchError(f"no {required.name} in {directory}")
    try:
        info = json.loads(metadata_file.read_text())
        labels = tuple(str(label) for label in info["labels"])
        described = InputLayout.from_metadata(info) if "inputs" in info else None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BatchError(f"{metadata_file}: not a model description ({error!r})") from error
    try:
        session = onnx_session(onnx_file, threads)
    except Exception as error:  # onnxruntime's errors derive from Exception only
        raise BatchError(f"{onnx_file}: onnxruntime cannot load it: {error}") from error
    layout = described or layout_of(session)
    if layout is None:
        raise BatchError(
            f"{directory}: the model does not describe its inputs (no `inputs` in "
            f"{METADATA_FILE}, none in the ONNX metadata): export it again"
        )
    return BatchModel(session, layout, labels, version or model_version(info, None))


def load_store_model(tag: str, threads: int = 1) -> BatchModel:
    """A model from the project's BentoML store, versioned by its `model_version` label."""
    use_project_store()
    import bentoml
    from bentoml.exceptions import BentoMLException

    try:
        stored = bentoml.models.get(tag)
    except BentoMLException as error:
        home = os.environ.get("BENTOML_HOME")
        raise BatchError(
            f"no model {tag} in the BentoML store under {home}: run `make package` ({error})"
        ) from error
    version = stored.info.labels.get("model_version") or str(stored.tag.version)
    return load_model_dir(Path(stored.path), version, threads)


def champion_tag() -> str:
    """The store tag of the model the MLflow registry's champion alias points at."""
    use_project_store()
    from model.params import Params
    from rollout.cli import alias_version, store_tag_for

    registry = Params.load().registry
    name, alias = registry.model_name, registry.champion_alias
    version = alias_version(name, alias)
    if version is None:
        raise BatchError(
            f"no `{alias}` alias on {name} in the MLflow registry: promote a model with "
            "`make rollout`, or name one with --model-tag or --model-dir"
        )
    tag = store_tag_for(name, version)
    if tag is None:
        raise BatchError(f"{alias} (registry version {version}) is not in the BentoML store")
    return tag


# --- the input ---------------------------------------------------------------------------------


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


@dataclass
class RowProblems:
    """What the model cannot take, per column and problem: how often, and the first rows."""

    found: dict[tuple[str, str], tuple[int, list[tuple[int, Any]]]] = field(default_factory=dict)

    def add(self, name: str, problem: str, mask: np.ndarray, column: pd.Series, start: int) -> None:
        if not mask.any():
            return
        count, examples = self.found.get((name, problem), (0, []))
        positions = np.flatnonzero(mask)[: EXAMPLE_ROWS - len(examples)]
        examples = examples + [(start + int(i), column.iloc[i]) for i in positions]
        self.found[(name, problem)] = (count + int(mask.sum()), examples)

    def __bool__(self) -> bool:
        return bool(self.found)

    def describe(self) -> str:
        """One line per column and problem, with example rows (and values, but for nulls)."""
        lines = []
        for (name, problem), (count, examples) in self.found.items():
            if problem == _NULL:
                shown = ", ".join(str(row) for row, _ in examples)
                lines.append(f"  {name!r}: {count} null(s), and it is not nullable; rows {shown}")
            else:
                shown = ", ".join(f"row {row} {value!r}" for row, value in examples)
                lines.append(f"  {name!r}: {count} {problem}; {shown}")
        return "\n".join(lines)


_NULL = "null"


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
        problems.add(item.name, _NULL, null, column, start)
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


# --- the database ------------------------------------------------------------------------------


def open_database(url: str) -> Engine:
    """An engine whose URL parses, whose driver is installed and which accepts a connection."""
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError as error:
        raise BatchError(f"--db {url!r}: not a database URL ({error})") from error
    try:
        engine = create_engine(url)
    except ImportError as error:
        raise BatchError(f"{shown}: the database driver is not installed: {error}") from error
    except SQLAlchemyError as error:
        raise BatchError(f"{shown}: not a usable database URL: {error}") from error
    if engine.dialect.name not in DIALECTS:
        raise BatchError(f"{shown}: only {' and '.join(DIALECTS)} databases are supported")
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as error:
        raise BatchError(f"{shown}: cannot connect: {error}") from error
    return engine


def probability_columns(labels: Sequence[str]) -> dict[str, str]:
    """label -> its SQL-safe probability column (the rule is in the module docstring)."""
    columns: dict[str, str] = {}
    for index, label in enumerate(labels):
        ascii_text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
        slug = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
        base = PROBABILITY_PREFIX + slug if slug else PROBABILITY_PREFIX.rstrip("_")
        name, tries = (base[:MAX_COLUMN_NAME] if slug else ""), 0
        while not name or name in columns.values():
            tail = f"_{index}" + (f"_{tries}" if tries else "")
            name, tries = base[: MAX_COLUMN_NAME - len(tail)] + tail, tries + 1
        columns[label] = name
    return columns


def predictions_table(name: str, labels: Sequence[str]) -> Table:
    """One row per input row and model: the label, a probability column per class, and when."""
    return Table(
        name,
        MetaData(),
        Column("input_sha256", String(64), primary_key=True),
        Column("model_version", String(128), primary_key=True),
        Column("row_index", BigInteger, primary_key=True, autoincrement=False),
        Column("label", Text, nullable=False),
        *(
            Column(column, Double, nullable=False, comment=f"probability of class {label}")
            for label, column in probability_columns(labels).items()
        ),
        Column("scored_at", DateTime(timezone=True), nullable=False),
    )


def ensure_table(engine: Engine, table: Table) -> None:
    """Create the table if missing; refuse one that lacks a column we write (other labels)."""
    table.create(engine, checkfirst=True)
    present = {column["name"] for column in inspect(engine).get_columns(table.name)}
    if missing := [column.name for column in table.columns if column.name not in present]:
        raise BatchError(
            f"table {table.name} exists without columns {missing}: "
            "it holds another model's labels; pass --table with a new name"
        )


def stored_prefix(engine: Engine, table: Table, input_sha256: str, version: str) -> int:
    """How many leading rows are stored: chunks commit in order, so stored rows are a prefix."""
    query = select(func.count(), func.max(table.c.row_index)).where(
        table.c.input_sha256 == input_sha256, table.c.model_version == version
    )
    with engine.connect() as connection:
        count, highest = connection.execute(query).one()
    # A gap (rows deleted by hand) means we cannot trust the count: score it all again and let
    # ON CONFLICT DO NOTHING drop what is already there.
    return int(count) if highest is not None and highest == count - 1 else 0


def insert_ignoring_duplicates(dialect: str, table: Table) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING, stamped with the database's clock."""
    if dialect == "sqlite":
        insert: Insert = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(KEY))
    elif dialect == "postgresql":
        insert = postgresql.insert(table).on_conflict_do_nothing(index_elements=list(KEY))
    else:
        raise BatchError(f"{dialect}: only {' and '.join(DIALECTS)} databases are supported")
    # In SQL rather than one bound datetime per row: converting 50,000 identical datetimes costs
    # more than the model. PostgreSQL's now() is the start of the chunk's transaction.
    return insert.values(scored_at=func.current_timestamp())


# --- scoring -----------------------------------------------------------------------------------


def prediction_rows(
    probabilities: np.ndarray,
    labels: Sequence[str],
    start: int,
    common: dict[str, Any],
) -> list[dict[str, Any]]:
    """Rows for the table; `common` holds the input hash and model version."""
    # (rows, n_classes) -> (rows,) predicted labels; ties go to the first label, as in serving
    predicted = np.asarray(labels, dtype=object)[probabilities.argmax(axis=1)].tolist()
    keys = ("row_index", "label", *probability_columns(labels).values())
    index = range(start, start + len(probabilities))
    return [
        common | dict(zip(keys, values, strict=True))
        for values in zip(index, predicted, *probabilities.T.tolist(), strict=True)
    ]


def score_file(
    source: InputFile,
    model: BatchModel,
    engine: Engine,
    table_name: str = DEFAULT_TABLE,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: Callable[[Progress], None] | None = None,
) -> Summary:
    """Check every row, then score `source` into `table_name`, one transaction per chunk,
    skipping stored chunks. A row the model cannot take stops it before anything is written."""
    if missing := [name for name in model.feature_names if name not in source.columns]:
        raise BatchError(f"{source.path}: no column for the model's inputs {missing}")
    total = check_rows(source, model.layout, chunk_rows)
    table = predictions_table(table_name, model.labels)
    insert = insert_ignoring_duplicates(engine.dialect.name, table)
    ensure_table(engine, table)
    already = stored_prefix(engine, table, source.sha256, model.version)
    common = {"input_sha256": source.sha256, "model_version": model.version}
    started = time.perf_counter()
    position = scored = 0
    for start, frame in iter_frames(source, model.layout, chunk_rows):
        position = start + len(frame)
        if position <= already or not len(frame):
            continue  # stored by an earlier run: not scored again
        problems = RowProblems()
        feeds = frame_feeds(frame, model.layout, start, problems)
        if problems:  # checked a moment ago: the file changed under us
            raise BatchError(f"{source.path} changed while being scored:\n{problems.describe()}")
        probabilities = predict_proba(model.session, feeds)
        with engine.begin() as connection:
            connection.execute(insert, prediction_rows(probabilities, model.labels, start, common))
        scored += len(frame)
        if on_chunk is not None:
            elapsed = time.perf_counter() - started
            on_chunk(Progress(position, max(total, position), scored, elapsed))
    elapsed = time.perf_counter() - started
    return Summary(position, scored, min(already, position), elapsed)


# --- command line ------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"batch: {message}", flush=True)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _progress_printer() -> Callable[[Progress], None]:
    def report(progress: Progress) -> None:
        share = progress.stored / progress.total if progress.total else 1.0
        rate = progress.scored / progress.elapsed_s if progress.elapsed_s else 0.0
        log(f"{progress.stored:,}/{progress.total:,} rows ({share:.0%}), {rate:,.0f} rows/s")

    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("input", type=Path, help="CSV, or Parquet (.parquet, .pq), with a header")
    parser.add_argument("--db", default=DEFAULT_DB, help=f"SQLAlchemy URL (default {DEFAULT_DB})")
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--model-tag", help="BentoML store tag (default: the MLflow champion)")
    chosen.add_argument("--model-dir", type=Path, help="a folder with model.onnx and model.json")
    parser.add_argument(
        "--chunk-rows",
        type=_positive,
        default=DEFAULT_CHUNK_ROWS,
        help=f"rows per chunk and transaction (default {DEFAULT_CHUNK_ROWS:,})",
    )
    parser.add_argument("--table", default=DEFAULT_TABLE, help=f"default {DEFAULT_TABLE}")
    args = parser.parse_args(argv)

    try:
        source = open_input(args.input)
        if args.model_dir is not None:
            model = load_model_dir(args.model_dir)
        else:
            model = load_store_model(args.model_tag or champion_tag())
        engine = open_database(args.db)
        shown = engine.url.render_as_string(hide_password=True)
        log(f"{source.path} (sha256 {source.sha256[:12]}) with model {model.version} -> {shown}")
        renamed = {
            label: column
            for label, column in probability_columns(model.labels).items()
            if column != PROBABILITY_PREFIX + label
        }
        if renamed:
            shown_names = ", ".join(f"{column} = {label!r}" for label, column in renamed.items())
            log(f"probability columns: {shown_names}")
        summary = score_file(
            source, model, engine, args.table, args.chunk_rows, _progress_printer()
        )
    except BatchError as error:
        raise SystemExit(f"batch: error: {error}") from None
    except SQLAlchemyError as error:
        raise SystemExit(f"batch: error: database: {error}") from None
    rate = summary.scored / summary.elapsed_s if summary.elapsed_s else 0.0
    log(
        f"done: {summary.rows:,} rows, {summary.scored:,} scored now "
        f"({rate:,.0f} rows/s), {summary.already_stored:,} already stored; "
        f"{summary.elapsed_s:.1f} s; table {args.table}, model {model.version}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
