"""`make drift`: is the live traffic still the traffic the model was trained for?

Compares one model version's latest production predictions (monitoring/window.py: load-test,
smoke-test, agreement and shadow traffic and other versions are left out, and counted) with the
training split, for any table: per feature by its kind (monitoring/columns.py: its distribution
and its share of nulls, unseen categories named); the model's output (prediction drift: the
positive class's probability for two classes, the shares of predicted labels for more); and, once
labelled feedback has arrived, the accuracy on it against the evaluation accuracy (concept
drift). Every threshold is calibrated on the training rows at the window's size
(monitoring/calibration.py), so a window like the training data says "retraining due" with the
probability `monitoring.drift.false_alarm_rate` chooses.

Feature kinds, categories and labels come from data/prepared/features.json, never from names.
Writes JSON and a Markdown report (monitoring/report.py); exits 3 when retraining is due (0 when
not, 1-2 on errors). In GitHub Actions (GITHUB_OUTPUT set) it writes `retrain=true|false` to the
step's outputs instead and exits 0, so the workflow decides and errors stay errors.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from model.artifacts import Metrics, read_artifact
from model.atomic import write_json_atomically, write_text_atomically
from model.features import FeatureSchema, read_split
from model.inference import layout_of, onnx_session, predict_proba
from model.inputs import RawInput
from model.params import DriftParams, Params
from monitoring.calibration import (
    Calibration,
    Check,
    calibrate,
    collision_rate,
    counts_check,
    effective_rows,
    numbers_check,
)
from monitoring.columns import feature_drift, reference_checks
from monitoring.measures import chi_square_distance, count_psi, ks_distance, psi
from monitoring.report import (
    ConceptDrift,
    DriftReport,
    PredictionDrift,
    as_json,
    markdown,
    quoted,
    terminal_lines,
)
from monitoring.window import Window, read_log

RETRAIN_DUE = 3


@dataclass(frozen=True)
class Reference:
    """The training split as drift compares with it, and what the model made of it."""

    inputs: tuple[RawInput, ...]  # the features, in contract order, with kinds and categories
    features: pd.DataFrame  # (rows, features): raw training values
    probabilities: np.ndarray  # (rows, n_classes): the model on those rows
    labels: tuple[str, ...]  # class names in output order
    positive_label: str | None = None  # two classes only

    def __len__(self) -> int:
        return len(self.features)


def checks_of(reference: Reference) -> list[Check]:
    """Every calibrated check, in calibration order: each feature's distribution and null share
    (contract order), then the prediction."""
    checks: list[Check] = []
    for item in reference.inputs:
        checks.extend(reference_checks(item, reference.features[item.name]))
    if reference.positive_label is not None:
        positive = reference.labels.index(reference.positive_label)
        checks.append(numbers_check(reference.probabilities[:, positive].astype(np.float64)))
    else:
        predicted = reference.probabilities.argmax(axis=1)
        checks.append(counts_check(predicted, len(reference.labels) + 1))  # + labels it lacks
    return checks


def row_keys(features: pd.DataFrame) -> np.ndarray:
    """One hash per row of raw values: equal rows, equal keys."""
    keys: np.ndarray = pd.util.hash_pandas_object(features.astype(object), index=False).to_numpy()
    return keys


def calibration_rows(reference: Reference, window: Window) -> int:
    """The window size the thresholds are calibrated at: its effective number of rows."""
    return effective_rows(
        len(window),
        collision_rate(row_keys(window.features)),
        collision_rate(row_keys(reference.features)),
    )


def calibrate_reference(
    reference: Reference, window_rows: int, false_alarm_rate: float, params: DriftParams
) -> Calibration:
    """The thresholds of every check for a window of `window_rows` rows. A few seconds at most:
    `judge` does it once per run, a benchmark once per window size."""
    return calibrate(
        checks_of(reference),
        len(reference),
        window_rows,
        false_alarm_rate,
        params.resamples,
        params.seed,
    )


def prediction_drift(
    reference: Reference, window: Window, calibration: Calibration
) -> PredictionDrift:
    """Two classes: the positive class's probability (KS distance). More: the shares of
    predicted labels (chi-square distance); no one probability stands for the model's output then.
    The prediction check is the calibration's last column."""
    column = len(calibration.centre) - 1
    if reference.positive_label is not None:
        return _positive_probability_drift(
            reference, reference.positive_label, window, calibration, column
        )
    return _predicted_label_drift(reference, window, calibration, column)


def _positive_probability_drift(
    reference: Reference,
    positive_label: str,
    window: Window,
    calibration: Calibration,
    column: int,
) -> PredictionDrift:
    positive = reference.labels.index(positive_label)
    old = reference.probabilities[:, positive].astype(np.float64)
    logged = window.predictions["probabilities"]
    new = np.array([_probability(p, positive_label, positive) for p in logged], dtype=np.float64)
    new = new[~np.isnan(new)]
    if not old.size or not new.size:
        return PredictionDrift("positive_probability", False, "no probabilities to compare")
    statistic = ks_distance(old, new)
    threshold = calibration.threshold(column)
    pvalue = calibration.pvalue(column, statistic)
    drifted = statistic > threshold
    return PredictionDrift(
        "positive_probability",
        drifted,
        f"KS distance {statistic:.3g} {'>' if drifted else '<='} {threshold:.3g} (p {pvalue:.2g}) "
        f"on P({quoted(positive_label)}) (mean {old.mean():.3f} → {new.mean():.3f})",
        statistic,
        threshold,
        pvalue,
        psi(old, new),
    )


def _predicted_label_drift(
    reference: Reference, window: Window, calibration: Calibration, column: int
) -> PredictionDrift:
    labels = list(reference.labels)
    old_counts = np.bincount(reference.probabilities.argmax(axis=1), minlength=len(labels))
    predicted = _predicted_labels(window, labels)
    new_counts = np.array([np.sum(predicted == label) for label in labels])
    other = len(predicted) - int(new_counts.sum())  # labels this model does not have
    old_all, new_all = np.append(old_counts, 0), np.append(new_counts, other)
    statistic = float(chi_square_distance(old_all, new_all))
    threshold = calibration.threshold(column)
    pvalue = calibration.pvalue(column, statistic)
    drifted = statistic > threshold
    old_shares = dict(zip(labels, (old_counts / max(old_counts.sum(), 1)).tolist(), strict=True))
    new_shares = dict(zip(labels, (new_counts / max(len(predicted), 1)).tolist(), strict=True))
    moved = max(labels, key=lambda label: abs(new_shares[label] - old_shares[label]))
    return PredictionDrift(
        "predicted_labels",
        drifted,
        f"chi-square distance {statistic:.3g} {'>' if drifted else '<='} {threshold:.3g} "
        f"(p {pvalue:.2g}) on the shares of predicted labels "
        f"({quoted(moved)} {old_shares[moved]:.1%} → {new_shares[moved]:.1%})",
        statistic,
        threshold,
        pvalue,
        count_psi(old_all, new_all),
        old_shares,
        new_shares,
    )


def _probability(probabilities: Any, label: str, position: int) -> float:
    """A logged row's probability of `label`: the log has them per label or in label order."""
    try:
        if isinstance(probabilities, dict):
            return float(probabilities[label])
        return float(probabilities[position])
    except (KeyError, IndexError, TypeError, ValueError):
        return float("nan")


def _predicted_labels(window: Window, labels: Sequence[str]) -> np.ndarray:
    """The logged predicted label, or the most probable one when a record lacks it."""
    predicted = []
    for label, probabilities in zip(
        window.predictions["label"], window.predictions["probabilities"], strict=True
    ):
        if isinstance(label, str):
            predicted.append(label)
        elif isinstance(probabilities, dict) and probabilities:
            predicted.append(max(probabilities, key=probabilities.__getitem__))
        elif isinstance(probabilities, list) and len(probabilities) == len(labels):
            predicted.append(labels[int(np.argmax(probabilities))])
    return np.array(predicted, dtype=object)


def labelled(window: Window) -> pd.DataFrame:
    """The window's predictions whose true label came back: columns `label`, `true_label`.
    A row labelled twice counts with its latest label."""
    keys = ["request_id", "row"]
    if window.feedback.empty or not len(window):
        return pd.DataFrame(columns=["label", "true_label"])
    return window.predictions.drop_duplicates(keys, keep="last").merge(
        window.feedback.drop_duplicates(keys, keep="last"), on=keys
    )


def concept_drift(
    window: Window, evaluation_accuracy: float, params: DriftParams, false_alarm_rate: float
) -> ConceptDrift:
    """Accuracy on predictions whose true label came back, against the evaluation accuracy:
    drift when a one-sided binomial test says it is below the evaluation accuracy minus
    `max_accuracy_drop`, at `false_alarm_rate`. Labels are compared as the names the service
    answered with."""
    joined = labelled(window)
    if joined.empty:
        return ConceptDrift(judged=False, rows=0, why="no labelled feedback yet")
    if len(joined) < params.min_feedback_rows:
        return ConceptDrift(
            judged=False,
            rows=len(joined),
            why=f"{len(joined)} labelled rows, fewer than {params.min_feedback_rows}",
        )
    correct = int((joined["label"] == joined["true_label"]).sum())
    accuracy = correct / len(joined)
    floor = max(evaluation_accuracy - params.max_accuracy_drop, 0.0)
    pvalue = float(stats.binomtest(correct, len(joined), floor, alternative="less").pvalue)
    return ConceptDrift(
        judged=True,
        rows=len(joined),
        drifted=pvalue < false_alarm_rate,
        accuracy=accuracy,
        evaluation_accuracy=evaluation_accuracy,
        pvalue=pvalue,
        why=f"accuracy on {len(joined)} labelled rows {accuracy:.3f} vs evaluation "
        f"{evaluation_accuracy:.3f} (tolerated drop {params.max_accuracy_drop}; p {pvalue:.2g} "
        f"{'<' if pvalue < false_alarm_rate else '>='} {false_alarm_rate:g})",
    )


def split_false_alarm_rate(window: Window, params: DriftParams) -> tuple[float, float]:
    """(data, concept): the data and prediction checks share the whole rate, or half of it when
    there is enough feedback to judge concept drift too (the other half)."""
    if len(labelled(window)) >= params.min_feedback_rows:
        half = params.false_alarm_rate / 2
        return half, half
    return params.false_alarm_rate, 0.0


def judge(
    reference: Reference,
    window: Window,
    evaluation_accuracy: float,
    params: DriftParams,
    calibration: Calibration | None = None,
) -> DriftReport:
    """The whole verdict. No I/O: tests call this directly. `calibration` (for this window's
    size and data rate) saves recomputing it for many windows of one size."""
    data_rate, concept_rate = split_false_alarm_rate(window, params)
    if len(window) < params.min_rows:
        summary = f"only {len(window)} logged rows, fewer than {params.min_rows}: no verdict"
        return DriftReport(
            retrain=False,
            rows=len(window),
            reference_rows=len(reference),
            summary=summary,
            drifted_features=[],
            features=[],
            prediction=PredictionDrift("none", False, summary),
            concept=ConceptDrift(judged=False, rows=0, why=summary),
            window=window.summary(),
            false_alarm_rate=params.false_alarm_rate,
            data_false_alarm_rate=data_rate,
            effective_rows=0,
        )
    if calibration is None:
        rows = calibration_rows(reference, window)
        calibration = calibrate_reference(reference, rows, data_rate, params)
    features = feature_drift(reference.inputs, reference.features, window.features, calibration)
    prediction = prediction_drift(reference, window, calibration)
    concept = concept_drift(window, evaluation_accuracy, params, concept_rate)
    drifted = [item for item in features if item.drifted]
    names = ", ".join(f"{quoted(item.feature)} ({', '.join(item.fired)})" for item in drifted)
    return DriftReport(
        retrain=bool(drifted) or prediction.drifted or concept.drifted,
        rows=len(window),
        reference_rows=len(reference),
        summary=f"Drifted features: {names}." if drifted else "No feature drifted.",
        drifted_features=[item.feature for item in drifted],
        features=features,
        prediction=prediction,
        concept=concept,
        window=window.summary(),
        false_alarm_rate=params.false_alarm_rate,
        data_false_alarm_rate=data_rate,
        effective_rows=calibration.window_rows,
    )


def load_reference(split: Path, schema: FeatureSchema, model: Path) -> Reference:
    """The training split's raw features and the model's probabilities on them."""
    session = onnx_session(model)
    layout = layout_of(session) or schema.layout
    features, _ = read_split(split, schema)
    return Reference(
        inputs=schema.inputs,
        features=features,
        probabilities=predict_proba(session, layout.column_feeds(features)),
        labels=schema.labels,
        positive_label=schema.positive_label,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--logs", type=Path, help="prediction log folder (monitoring.log_dir)")
    parser.add_argument("prepared", type=Path, help="prepared split written by `prepare`")
    parser.add_argument("model", type=Path, help="the champion's ONNX model")
    parser.add_argument("metrics", type=Path, help="test metrics written by `evaluate`")
    parser.add_argument("--out", type=Path, required=True, help="folder for drift.json, drift.md")
    parser.add_argument(
        "--version", help="model version to judge (default: that of the newest production row)"
    )
    args = parser.parse_args(argv)
    params = Params.load()
    drift_params = params.monitoring.drift
    schema = FeatureSchema.load(args.prepared / "features.json")
    reference = load_reference(args.prepared / "train.csv", schema, args.model)
    window = read_log(
        args.logs or Path(params.monitoring.log_dir),
        schema.feature_names,
        drift_params.window_rows,
        args.version,
    )
    evaluation_accuracy = read_artifact(args.metrics, Metrics).root["accuracy"]
    report = judge(reference, window, evaluation_accuracy, drift_params)
    write_json_atomically(args.out / "drift.json", as_json(report))
    write_text_atomically(args.out / "drift.md", markdown(report))
    for line in terminal_lines(report):
        print(f"drift: {line}")
    print(f"drift: report -> {args.out / 'drift.md'}")
    github_output = os.environ.get("GITHUB_OUTPUT")
    if github_output:
        with open(github_output, "a") as handle:
            handle.write(f"retrain={'true' if report.retrain else 'false'}\n")
        return 0
    return RETRAIN_DUE if report.retrain else 0


if __name__ == "__main__":
    sys.exit(main())
