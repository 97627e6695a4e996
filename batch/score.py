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

Torch-free: onnxruntime, numpy, pandas, pyarrow and SQLAlchemy. The modules: `inputs` (the file and
its checks), `models` (which model), `database` (the table), `problems` (what the user must fix).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from batch.database import (
    DEFAULT_DB,
    DEFAULT_TABLE,
    MAX_COLUMN_NAME,
    PROBABILITY_PREFIX,
    ensure_table,
    insert_ignoring_duplicates,
    open_database,
    predictions_table,
    probability_columns,
    stored_prefix,
)
from batch.inputs import InputFile, check_rows, frame_feeds, iter_frames, open_input
from batch.models import BatchModel, champion_tag, load_model_dir, load_store_model
from batch.problems import BatchError, RowProblems
from model.inference import predict_proba

__all__ = [  # what tests and benchmarks take from here
    "DEFAULT_CHUNK_ROWS", "MAX_COLUMN_NAME", "BatchError", "BatchModel", "Progress", "Summary",
    "load_model_dir", "main", "open_database", "open_input", "probability_columns", "score_file",
]  # fmt: skip

DEFAULT_CHUNK_ROWS = 50_000


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


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m batch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    return parser


def renamed_columns(labels: Sequence[str]) -> dict[str, str]:
    """label -> probability column, for the labels whose column is not `p_` + the label."""
    return {
        label: column
        for label, column in probability_columns(labels).items()
        if column != PROBABILITY_PREFIX + label
    }


def run(args: argparse.Namespace) -> tuple[BatchModel, Summary]:
    """Open the input, the model and the database, say what goes where, and score."""
    source = open_input(args.input)
    if args.model_dir is not None:
        model = load_model_dir(args.model_dir)
    else:
        model = load_store_model(args.model_tag or champion_tag())
    engine = open_database(args.db)
    shown = engine.url.render_as_string(hide_password=True)
    log(f"{source.path} (sha256 {source.sha256[:12]}) with model {model.version} -> {shown}")
    if renamed := renamed_columns(model.labels):
        log("probability columns: " + ", ".join(f"{c} = {lb!r}" for lb, c in renamed.items()))
    summary = score_file(source, model, engine, args.table, args.chunk_rows, _progress_printer())
    return model, summary


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        model, summary = run(args)
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
