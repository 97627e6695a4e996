"""Benchmark: how often `make drift` alarms on clean traffic, and how often it catches a shift.

On the project's table (the prepared splits, the exported model, the evaluate stage's feature
importance; nothing named in code), with the training split as the reference as `make drift`
has it: windows of `monitoring.drift.window_rows` rows bootstrapped from the held-out rows (val +
test), each with true labels coming back for some of its rows, judged exactly as `make drift`
judges (monitoring.drift.judge). Scenarios: clean windows (the false-alarm rate), the most
important numeric feature or the three most important shifted by 0.5 and 1 standard deviation
(of the training split), and a concept shift: a share of the feedback labels flipped. Prints a
table and writes it to benchmarks/results/drift.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd

from model.artifacts import Metrics, read_artifact
from model.atomic import write_text_atomically
from model.features import FeatureSchema, read_split
from model.inference import layout_of, onnx_session, predict_proba
from model.params import DriftParams, Params
from monitoring.calibration import Calibration
from monitoring.drift import Reference, calibrate_reference, calibration_rows, judge, load_reference
from monitoring.window import FEEDBACK_COLUMNS, Window

ROOT = Path(__file__).resolve().parents[1]
FALSE_ALARM_TARGET = 0.01
DETECTION_TARGET = 0.95


@dataclass(frozen=True)
class Scenario:
    name: str
    shift: Callable[[pd.DataFrame], pd.DataFrame]  # of the window's features
    flip: float = 0.0  # share of feedback labels flipped to another label
    target: str = ""


@dataclass(frozen=True)
class HeldOut:
    """The rows clean windows are drawn from, with their true labels."""

    features: pd.DataFrame
    labels: np.ndarray  # (rows,) label names, as the service answers them


def shifted(names: list[str], amounts: dict[str, float]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def shift(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        for name in names:
            frame[name] = frame[name] + amounts[name]
        return frame

    return shift


def top_numeric_features(importance: Path, schema: FeatureSchema) -> list[str]:
    """Numeric features, most important first (reports/importance.json's ranks)."""
    numeric = {item.name for item in schema.inputs if item.kind == "numeric"}
    ranked = sorted(json.loads(importance.read_text())["features"], key=lambda row: row["rank"])
    return [row["feature"] for row in ranked if row["feature"] in numeric]


def window(
    held_out: HeldOut,
    picks: np.ndarray,
    scenario: Scenario,
    session: ort.InferenceSession,
    schema: FeatureSchema,
    feedback_rows: int,
    rng: np.random.Generator,
) -> Window:
    """A window of the picked held-out rows, shifted, scored by the model, with true labels
    (some flipped) for its first `feedback_rows` rows."""
    features = scenario.shift(held_out.features.iloc[picks].reset_index(drop=True))
    layout = layout_of(session) or schema.layout
    probabilities = predict_proba(session, layout.column_feeds(features))
    labels = np.array(schema.labels, dtype=object)
    ids = [f"request-{index}" for index in range(len(picks))]
    truth = held_out.labels[picks[:feedback_rows]].copy()
    flipped = rng.random(len(truth)) < scenario.flip
    position = {label: index for index, label in enumerate(schema.labels)}
    truth[flipped] = [labels[(position[label] + 1) % len(labels)] for label in truth[flipped]]
    return Window(
        features=features,
        predictions=pd.DataFrame(
            {
                "request_id": ids,
                "row": 0,
                "label": labels[probabilities.argmax(axis=1)],
                "probabilities": [
                    dict(zip(schema.labels, row, strict=True)) for row in probabilities.tolist()
                ],
            }
        ),
        feedback=pd.DataFrame(
            {"request_id": ids[:feedback_rows], "row": 0, "true_label": truth},
            columns=FEEDBACK_COLUMNS,
        ),
    )


def alarm_rate(
    reference: Reference,
    held_out: HeldOut,
    scenario: Scenario,
    params: DriftParams,
    evaluation_accuracy: float,
    session: ort.InferenceSession,
    schema: FeatureSchema,
    windows: int,
    feedback_rows: int,
    cache: dict[int, Calibration],
    seed: int,
) -> tuple[float, list[int]]:
    """Share of `windows` windows that say "retraining due", and their effective sizes."""
    rng = np.random.default_rng(seed)
    alarms = 0
    sizes = []
    for _ in range(windows):
        picks = rng.integers(0, len(held_out.features), params.window_rows)
        live = window(held_out, picks, scenario, session, schema, feedback_rows, rng)
        rows = calibration_rows(reference, live)
        sizes.append(rows)
        if rows not in cache:  # the rate split is fixed: every window has enough feedback
            cache[rows] = calibrate_reference(reference, rows, params.false_alarm_rate / 2, params)
        alarms += judge(reference, live, evaluation_accuracy, params, cache[rows]).retrain
    return alarms / windows, sizes


def _held_out(prepared: Path, schema: FeatureSchema) -> HeldOut:
    """The val and test splits together, labels as the class names the service answers with."""
    splits = [read_split(prepared / f"{name}.csv", schema) for name in ("val", "test")]
    return HeldOut(
        pd.concat([features for features, _ in splits], ignore_index=True),
        np.array(schema.labels, dtype=object)[np.concatenate([codes for _, codes in splits])],
    )


def _scenarios(top: list[str], reference: Reference, flip: float) -> list[Scenario]:
    """Clean windows, shifts of the most important numeric features, and flipped labels."""
    spread = {name: float(reference.features[name].std()) for name in top}

    def moved(count: int, stds: float) -> Callable[[pd.DataFrame], pd.DataFrame]:
        names = top[:count]
        return shifted(names, {name: stds * spread[name] for name in names})

    detect = f"≥ {DETECTION_TARGET:.0%}"
    return [
        Scenario("clean (false alarms)", lambda frame: frame, target=f"≤ {FALSE_ALARM_TARGET:.0%}"),
        Scenario("+0.5 std, top-1 numeric feature", moved(1, 0.5)),
        Scenario("+1 std, top-1 numeric feature", moved(1, 1.0), target=detect),
        Scenario("+0.5 std, top-3 numeric features", moved(3, 0.5)),
        Scenario("+1 std, top-3 numeric features", moved(3, 1.0)),
        Scenario(f"{flip:.0%} of feedback labels flipped", lambda frame: frame, flip),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prepared", type=Path, default=ROOT / "data/prepared")
    parser.add_argument("--model", type=Path, default=ROOT / "models/model.onnx")
    parser.add_argument("--metrics", type=Path, default=ROOT / "reports/metrics.json")
    parser.add_argument("--importance", type=Path, default=ROOT / "reports/importance.json")
    parser.add_argument("--windows", type=int, default=200, help="windows per scenario")
    parser.add_argument("--window-rows", type=int, help="default: monitoring.drift.window_rows")
    parser.add_argument("--flip", type=float, default=0.2, help="share of feedback labels flipped")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/drift.md")
    args = parser.parse_args(argv)

    params = Params.load(ROOT / "params.yaml").monitoring.drift
    if args.window_rows:
        params = params.model_copy(update={"window_rows": args.window_rows})
    feedback_rows = min(2 * params.min_feedback_rows, params.window_rows)
    schema = FeatureSchema.load(args.prepared / "features.json")
    reference = load_reference(args.prepared / "train.csv", schema, args.model)
    session = onnx_session(args.model)
    held_out = _held_out(args.prepared, schema)
    evaluation_accuracy = read_artifact(args.metrics, Metrics).root["accuracy"]
    top = top_numeric_features(args.importance, schema)[:3]
    print(f"bench-drift: top numeric features by importance: {', '.join(top)}")
    scenarios = _scenarios(top, reference, args.flip)
    cache: dict[int, Calibration] = {}
    lines = [
        f"Windows of {params.window_rows} rows bootstrapped from {len(held_out.features)} held-out "
        f"rows (val + test), {feedback_rows} of them with true labels; reference: "
        f"{len(reference)} training rows; `false_alarm_rate` {params.false_alarm_rate}.",
        "",
        "| scenario | windows | effective rows | retraining due | target |",
        "|---|---:|---:|---:|---|",
    ]
    started = time.perf_counter()
    for index, scenario in enumerate(scenarios):
        rate, sizes = alarm_rate(
            reference, held_out, scenario, params, evaluation_accuracy, session, schema,
            args.windows, feedback_rows, cache, seed=index,
        )  # fmt: skip
        sizes_text = f"{min(sizes)}-{max(sizes)}" if min(sizes) != max(sizes) else str(sizes[0])
        line = (
            f"| {scenario.name} | {args.windows} | {sizes_text} | {rate:.1%} | "
            f"{scenario.target or '—'} |"
        )
        lines.append(line)
        print(f"bench-drift: {line}")
    seconds = time.perf_counter() - started
    lines += [
        "",
        f"{len(cache)} calibrations, {seconds:.0f} s in all. Effective rows: rows repeated "
        "verbatim count once (Kish), as `make drift` calibrates them.",
    ]
    write_text_atomically(args.out, "\n".join(lines) + "\n")
    print(f"bench-drift: table -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
