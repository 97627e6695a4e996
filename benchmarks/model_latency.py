"""Benchmark: in-process onnxruntime latency of the exported models, side by side.

Measures, in interleaved rounds (the method the latency gate uses): the fp32 model against itself
(an A/A pair: its ratio is the noise floor of the gate's p99 ratio), the int8 edge model, and an
optional baseline file, each fed the test split laid out for its own raw inputs (from the model's
own metadata; a baseline that does not describe them is skipped). Prints single-row p50/p99,
rows/s at each batch size, and the ratios, and repeats the whole measurement to show how stable
the ratio is. Writes benchmarks/results/model_latency.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import asdict
from pathlib import Path

import onnxruntime as ort
import pandas as pd

from model.atomic import write_json_atomically
from model.features import FeatureSchema, read_split
from model.inference import Feeds, layout_of, onnx_session
from model.latency import LatencyProfile, measure_side_by_side
from model.params import LatencyGate, Params

ROOT = Path(__file__).resolve().parents[1]


def _table(profiles: dict[str, LatencyProfile]) -> str:
    batches = list(next(iter(profiles.values())).rows_per_second)
    header = f"  {'model':<12} {'p50 ms':>9} {'p99 ms':>9}" + "".join(
        f" {f'rows/s @{b}':>14}" for b in batches
    )
    rows = [
        f"  {name:<12} {p.p50_ms:9.4f} {p.p99_ms:9.4f}"
        + "".join(f" {p.rows_per_second[b]:14,.0f}" for b in batches)
        for name, p in profiles.items()
    ]
    return "\n".join([header, *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=ROOT / "models/model.onnx")
    parser.add_argument("--int8", type=Path, default=ROOT / "models/model.int8.onnx")
    parser.add_argument("--baseline", type=Path, help="another ONNX file to compare against")
    parser.add_argument("--repeats", type=int, default=5, help="whole measurements (default 5)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/model_latency.json")
    args = parser.parse_args(argv)

    latency = Params.load(ROOT / "params.yaml").gate.latency
    schema = FeatureSchema.load(ROOT / "data/prepared/features.json")
    rows, _ = read_split(ROOT / "data/prepared/test.csv", schema)
    files = {"candidate": args.model, "same (A/A)": args.model, "int8": args.int8}
    if args.baseline:
        files["baseline"] = args.baseline
    models = _sessions(files, rows, schema, latency.threads)
    runs = _measure(models, latency, args.repeats)
    summary = {
        name: statistics.median(run[name].p99_ms / run["candidate"].p99_ms for run in runs)
        for name in models
        if name != "candidate"
    }
    spread = [run["same (A/A)"].p99_ms / run["candidate"].p99_ms for run in runs]
    print(
        "\nmedian p99 ratio to candidate over measurements: "
        + ", ".join(f"{name} {ratio:.2f}x" for name, ratio in summary.items())
    )
    print(f"A/A ratio range (noise floor of the gate): {min(spread):.2f}x to {max(spread):.2f}x")
    write_json_atomically(
        args.out,
        {
            "runs": [{name: asdict(p) for name, p in run.items()} for run in runs],
            "median_p99_ratio": summary,
            "aa_ratio_range": [min(spread), max(spread)],
        },
    )
    return 0


def _sessions(
    files: dict[str, Path], rows: pd.DataFrame, schema: FeatureSchema, threads: int
) -> dict[str, tuple[ort.InferenceSession, Feeds]]:
    """Each model with the same rows laid out for its own inputs (a baseline may differ)."""
    models: dict[str, tuple[ort.InferenceSession, Feeds]] = {}
    for name, path in files.items():
        session = onnx_session(path, threads)
        layout = layout_of(session) or (schema.layout if name != "baseline" else None)
        if layout is None:
            print(f"{name}: {path} does not describe its inputs; not measured")
            continue
        if missing := [input_name for input_name in layout.names if input_name not in rows]:
            print(f"{name}: the test split lacks its inputs {missing}; not measured")
            continue
        models[name] = (session, layout.column_feeds(rows))
    return models


def _measure(
    models: dict[str, tuple[ort.InferenceSession, Feeds]], latency: LatencyGate, repeats: int
) -> list[dict[str, LatencyProfile]]:
    """`repeats` whole side-by-side measurements, each printed as it ends."""
    runs = []
    for repeat in range(repeats):
        profiles = measure_side_by_side(
            models,
            rounds=latency.rounds,
            calls_per_round=latency.calls_per_round,
            batch_sizes=latency.batch_sizes,
        )
        runs.append(profiles)
        ratios = {
            name: profiles[name].p99_ms / profiles["candidate"].p99_ms
            for name in profiles
            if name != "candidate"
        }
        print(f"measurement {repeat + 1}/{repeats}, {latency.threads} thread(s):")
        print(_table(profiles))
        print("  p99 ratio to candidate: " + ", ".join(f"{n} {r:.2f}x" for n, r in ratios.items()))
    return runs


if __name__ == "__main__":
    sys.exit(main())
