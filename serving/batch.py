"""Batch scoring: a CSV or Parquet file through the champion model into a database table.

    python -m serving.batch data.csv                         # champion -> sqlite:///predictions.db
    python -m serving.batch data.parquet --db postgresql+psycopg://user@host/db
    python -m serving.batch data.csv --model-tag breast-cancer-classifier:v1-899f565f
    python -m serving.batch data.csv --model-dir models      # an exported model.onnx + model.json

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
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
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
    create_engine,
    func,
    inspect,
    make_url,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from model.inference import onnx_session, predict_proba
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


class BatchError(RuntimeError):
    """A problem the user can fix; the message says what and where."""


@dataclass(frozen=True)
class BatchModel:
    session: ort.InferenceSession
    feature_names: tuple[str, ...]
    labels: tuple[str, ...]
    version: str


@dataclass(frozen=True)
class InputFile:
    path: Path
    sha256: str
    columns: tuple[str, ...]
    is_parquet: bool
    # Exact for Parquet (file metadata); for CSV the line count less the header, which is only
    # wrong for blank lines or quoted newlines: progress output marks it with `~`.
    total_rows: int


@dataclass(frozen=True)
class Progress:
    stored: int  # rows of this input stored for this model, earlier runs included
    total: int
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
    """model.onnx + model.json from a folder; without `version`, named after the file's sha256."""
    onnx_file, metadata_file = directory / ONNX_FILE, directory / METADATA_FILE
    for required in (onnx_file, metadata_file):
        if not required.is_file():
            raise BatchError(f"no {required.name} in {directory}")
    try:
        info = json.loads(metadata_file.read_text())
        names, labels = tuple(info["feature_names"]), tuple(info["labels"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BatchError(f"{metadata_file}: not a model description ({error!r})") from error
    try:
        session = onnx_session(onnx_file, threads)
    except Exception as error:  # onnxruntime's errors derive from Exception only
        raise BatchError(f"{onnx_file}: onnxruntime cannot load it: {error}") from error
    return BatchModel(session, names, labels, version or model_version(info, None))


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
    from serving.rollout import alias_version, store_tag_for

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


def _sha256_and_lines(path: Path) -> tuple[str, int]:
    digest, lines, last = hashlib.sha256(), 0, b"\n"
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            lines += block.count(b"\n")
            last = block[-1:]
    return digest.hexdigest(), lines + (last != b"\n")


def open_input(path: Path) -> InputFile:
    """Hash the file's bytes and read its header; nothing is scored yet."""
    if not path.is_file():
        raise BatchError(f"{path}: no such file")
    is_parquet = path.suffix.lower() in PARQUET_SUFFIXES
    try:
        if is_parquet:
            parquet = pq.ParquetFile(path)
            columns, total = tuple(parquet.schema_arrow.names), parquet.metadata.num_rows
            sha256, _ = _sha256_and_lines(path)
        else:
            columns = tuple(str(name) for name in pd.read_csv(path, nrows=0).columns)
            sha256, lines = _sha256_and_lines(path)
            total = max(lines - 1, 0)
    except (OSError, ValueError, pyarrow.ArrowException) as error:
        kind = "Parquet" if is_parquet else "CSV"
        raise BatchError(f"{path}: unreadable as {kind}: {error}") from error
    return InputFile(path, sha256, columns, is_parquet, int(total))


def _feature_block(frame: pd.DataFrame, names: Sequence[str], start: int) -> np.ndarray:
    # (rows, n_features) float32 in the model's order, whatever the file's column order
    try:
        block: np.ndarray = frame.loc[:, list(names)].to_numpy(dtype=np.float32)
    except (ValueError, TypeError) as error:
        raise BatchError(f"rows {start}-{start + len(frame) - 1}: not numeric: {error}") from error
    missing = np.argwhere(np.isnan(block))
    if len(missing):
        row, column = missing[0]
        raise BatchError(f"row {start + int(row)}: no value for {names[column]}")
    return block


def iter_feature_blocks(
    source: InputFile, names: Sequence[str], chunk_rows: int
) -> Iterator[np.ndarray]:
    """The file as (rows, n_features) float32 blocks of at most `chunk_rows` rows."""
    start = 0
    try:
        if source.is_parquet:
            batches = pq.ParquetFile(source.path).iter_batches(
                batch_size=chunk_rows, columns=list(names)
            )
            frames: Iterator[pd.DataFrame] = (batch.to_pandas() for batch in batches)
        else:
            frames = pd.read_csv(source.path, usecols=list(names), chunksize=chunk_rows)
        for frame in frames:
            yield _feature_block(frame, names, start)
            start += len(frame)
    except (OSError, ValueError, pyarrow.ArrowException) as error:
        raise BatchError(f"{source.path}: unreadable after row {start}: {error}") from error


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


def predictions_table(name: str, labels: Sequence[str]) -> Table:
    """One row per input row and model: the label, a `p_<label>` column per class, and when."""
    return Table(
        name,
        MetaData(),
        Column("input_sha256", String(64), primary_key=True),
        Column("model_version", String(128), primary_key=True),
        Column("row_index", BigInteger, primary_key=True, autoincrement=False),
        Column("label", String(128), nullable=False),
        *(Column(f"p_{label}", Double, nullable=False) for label in labels),
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
    keys = ("row_index", "label", *(f"p_{label}" for label in labels))
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
    """Score `source` into `table_name`, one transaction per chunk, skipping stored chunks."""
    if missing := [name for name in model.feature_names if name not in source.columns]:
        raise BatchError(f"{source.path}: missing feature columns {missing}")
    table = predictions_table(table_name, model.labels)
    insert = insert_ignoring_duplicates(engine.dialect.name, table)
    ensure_table(engine, table)
    already = stored_prefix(engine, table, source.sha256, model.version)
    started = time.perf_counter()
    position = scored = 0
    for features in iter_feature_blocks(source, model.feature_names, chunk_rows):
        start, position = position, position + len(features)
        if position <= already or not len(features):
            continue  # stored by an earlier run: not scored again
        probabilities = predict_proba(model.session, features)
        common = {"input_sha256": source.sha256, "model_version": model.version}
        with engine.begin() as connection:
            connection.execute(insert, prediction_rows(probabilities, model.labels, start, common))
        scored += len(features)
        if on_chunk is not None:
            elapsed = time.perf_counter() - started
            on_chunk(Progress(position, max(source.total_rows, position), scored, elapsed))
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


def _progress_printer(source: InputFile) -> Callable[[Progress], None]:
    about = "" if source.is_parquet else "~"

    def report(progress: Progress) -> None:
        share = progress.stored / progress.total if progress.total else 1.0
        rate = progress.scored / progress.elapsed_s if progress.elapsed_s else 0.0
        log(f"{progress.stored:,}/{about}{progress.total:,} rows ({share:.0%}), {rate:,.0f} rows/s")

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
        summary = score_file(
            source, model, engine, args.table, args.chunk_rows, _progress_printer(source)
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
