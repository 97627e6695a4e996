"""Benchmark: batch scoring throughput next to onnxruntime's in-process limit on the same rows.

Resamples the test split into a larger input (CSV and Parquet, in a temporary directory), scores
each into a fresh temporary SQLite database with `batch.score`, and measures `predict_proba`
alone on the same rows, already laid out as the model's inputs, in chunks of the same size. The
ratio says how much of the time goes to reading, hashing, checking rows and writing rather than
to the model. Writes benchmarks/results/batch.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine

from batch.score import DEFAULT_CHUNK_ROWS, BatchModel, load_model_dir, open_input, score_file
from model.atomic import write_json_atomically
from model.inference import Feeds, predict_proba
from rollout.traffic import read_rows

ROOT = Path(__file__).resolve().parents[1]


def onnxruntime_rows_per_second(
    model: BatchModel, feeds: Feeds, rows: int, chunk_rows: int, repeats: int
) -> float:
    """The best of `repeats` passes over all rows: the model alone, no I/O."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for start in range(0, rows, chunk_rows):
            chunk = {name: values[start : start + chunk_rows] for name, values in feeds.items()}
            predict_proba(model.session, chunk)
        best = min(best, time.perf_counter() - started)
    return rows / best


def batch_run(path: Path, model: BatchModel, database: Path, chunk_rows: int) -> dict[str, Any]:
    """End to end, as the command does it: hash and open the file, score, commit per chunk."""
    engine = create_engine(f"sqlite:///{database}")
    started = time.perf_counter()
    summary = score_file(open_input(path), model, engine, chunk_rows=chunk_rows)
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"rows": summary.rows, "seconds": seconds, "rows_per_second": summary.rows / seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--split", type=Path, default=ROOT / "data/prepared/test.csv")
    parser.add_argument("--rows", type=int, default=200_000, help="input rows (default 200,000)")
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    parser.add_argument("--repeats", type=int, default=3, help="passes of the in-process limit")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/batch.json")
    args = parser.parse_args(argv)

    model = load_model_dir(args.model_dir)
    split = read_rows(args.split, model.layout.inputs)
    picks = np.random.default_rng(0).integers(0, len(split), size=args.rows)
    frame = split.iloc[picks].reset_index(drop=True)
    feeds = model.layout.column_feeds(frame)

    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as scratch:
        for kind in ("csv", "parquet"):
            path = Path(scratch) / f"input.{kind}"
            if kind == "csv":
                frame.to_csv(path, index=False)
            else:
                frame.to_parquet(path)
            runs[kind] = batch_run(path, model, Path(scratch) / f"{kind}.db", args.chunk_rows)
    limit = onnxruntime_rows_per_second(model, feeds, args.rows, args.chunk_rows, args.repeats)

    print(f"{args.rows:,} rows, chunks of {args.chunk_rows:,}, model {model.version}, 1 thread:")
    print(f"  {'onnxruntime alone':<22} {limit:14,.0f} rows/s")
    for kind, run in runs.items():
        rate = run["rows_per_second"]
        label = f"batch {kind} -> sqlite"
        print(f"  {label:<22} {rate:14,.0f} rows/s  ({rate / limit:.1%} of the limit)")
    write_json_atomically(
        args.out,
        {
            "rows": args.rows,
            "chunk_rows": args.chunk_rows,
            "model_version": model.version,
            "onnxruntime_rows_per_second": limit,
            "batch": runs,
            "ratio_to_onnxruntime": {k: r["rows_per_second"] / limit for k, r in runs.items()},
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
