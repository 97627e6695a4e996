"""`make drift`: is the live traffic still the traffic the model was trained for?

Compares the most recent logged predictions (serving/prediction_log.py) with the training split,
for any table: per feature by its kind (monitoring/columns.py: PSI and a KS or chi-square test,
unseen categories, and the share of nulls); the model's output (prediction drift: the positive
class's probability for two classes, the shares of predicted labels for more); and, once labelled
feedback has arrived, the accuracy on it against the evaluation accuracy (concept drift).
Feature kinds, categories and labels come from data/prepared/features.json, never from names.
Writes JSON and a Markdown report (monitoring/report.py); exits 3 when retraining is due (0 when
not, 1-2 on errors). In GitHub Actions (GITHUB_OUTPUT set) it writes `retrain=true|false` to the
step's outputs instead and exits 0, so the workflow decides and errors stay errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model.atomic import write_json_atomically, write_text_atomically
from model.features import FeatureSchema, read_split
from model.inference import layout_of, onnx_session, predict_proba
from model.inputs import RawInput
from model.params import DriftParams, Params
from monitoring.columns import feature_drift
from monitoring.measures import count_psi, psi
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


def prediction_drift(reference: Reference, window: Window, params: DriftParams) -> PredictionDrift:
    """Two classes: PSI on the positive class's probability. More: PSI on the shares of
    predicted labels (no one probability stands for the model's output then)."""
    if reference.positive_label is not None:
        return _positive_probability_drift(reference, reference.positive_label, window, params)
    return _predicted_label_drift(reference, window, params)


def _positive_probability_drift(
    reference: Reference, positive_label: str, window: Window, params: DriftParams
) -> PredictionDrift:
    positive = reference.labels.index(positive_label)
    old = reference.probabilities[:, positive]
    logged = window.predictions["probabilities"]
    new = np.array([_probability(p, positive_label, positive) for p in logged], dtype=np.float64)
    new = new[~np.isnan(new)]
    if not old.size or not new.size:
        return PredictionDrift("positive_probability", 0.0, False, "no probabilities to compare")
    index = psi(old, new, params.psi_bins)
    drifted = index > params.max_prediction_psi
    return PredictionDrift(
        "positive_probability",
        index,
        drifted,
        f"PSI {index:.3f} {'>' if drifted else '<='} {params.max_prediction_psi} on "
        f"P({quoted(positive_label)}) (mean {old.mean():.3f} → {new.mean():.3f})",
    )


def _predicted_label_drift(
    reference: Reference, window: Window, params: DriftParams
) -> PredictionDrift:
    labels = list(reference.labels)
    old_counts = np.bincount(reference.probabilities.argmax(axis=1), minlength=len(labels))
    predicted = _predicted_labels(window, labels)
    new_counts = np.array([np.sum(predicted == label) for label in labels])
    other = len(predicted) - int(new_counts.sum())  # labels this model does not have
    index = count_psi(np.append(old_counts, 0), np.append(new_counts, other))
    drifted = index > params.max_prediction_psi
    old_shares = dict(zip(labels, (old_counts / max(old_counts.sum(), 1)).tolist(), strict=True))
    new_shares = dict(zip(labels, (new_counts / max(len(predicted), 1)).tolist(), strict=True))
    moved = max(labels, key=lambda label: abs(new_shares[label] - old_shares[label]))
    return PredictionDrift(
        "predicted_labels",
        index,
        drifted,
        f"PSI {index:.3f} {'>' if drifted else '<='} {params.max_prediction_psi} on the shares "
        f"of predicted labels ({quoted(moved)} {old_shares[moved]:.1%} → {new_shares[moved]:.1%})",
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


def concept_drift(window: Window, evaluation_accuracy: float, params: DriftParams) -> ConceptDrift:
    """Accuracy on predictions whose true label came back, against the evaluation accuracy.
    Labels are compared as the names the service answered with; a row labelled twice counts
    with its latest label."""
    if window.feedback.empty or not len(window):
        return ConceptDrift(judged=False, rows=0, why="no labelled feedback yet")
    keys = ["request_id", "row"]
    joined = window.predictions.drop_duplicates(keys, keep="last").merge(
        window.feedback.drop_duplicates(keys, keep="last"), on=keys
    )
    if len(joined) < params.min_feedback_rows:
        return ConceptDrift(
            judged=False,
            rows=len(joined),
            why=f"{len(joined)} labelled rows, fewer than {params.min_feedback_rows}",
        )
    accuracy = float((joined["label"] == joined["true_label"]).mean())
    drop = evaluation_accuracy - accuracy
    return ConceptDrift(
        judged=True,
        rows=len(joined),
        drifted=drop > params.max_accuracy_drop,
        accuracy=accuracy,
        evaluation_accuracy=evaluation_accuracy,
        why=f"accuracy on feedback {accuracy:.3f} vs evaluation {evaluation_accuracy:.3f} "
        f"(drop {drop:+.3f}, limit {params.max_accuracy_drop})",
    )


def judge(
    reference: Reference, window: Window, evaluation_accuracy: float, params: DriftParams
) -> DriftReport:
    """The whole verdict. No I/O: tests call this directly."""
    alpha = params.ks_alpha / len(reference.inputs)
    if len(window) < params.min_rows:
        summary = f"only {len(window)} logged rows, fewer than {params.min_rows}: no verdict"
        return DriftReport(
            retrain=False,
            rows=len(window),
            reference_rows=len(reference),
            summary=summary,
            drifted_features=[],
            features=[],
            prediction=PredictionDrift("none", 0.0, False, summary),
            concept=ConceptDrift(judged=False, rows=0, why=summary),
            alpha=alpha,
        )
    features = feature_drift(reference.inputs, reference.features, window.features, params)
    prediction = prediction_drift(reference, window, params)
    concept = concept_drift(window, evaluation_accuracy, params)
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
        alpha=alpha,
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
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--model", type=Path, default=Path("models/model.onnx"))
    parser.add_argument("--metrics", type=Path, default=Path("reports/metrics.json"))
    parser.add_argument("--out", type=Path, default=Path("reports/drift"))
    args = parser.parse_args(argv)
    params = Params.load()
    drift_params = params.monitoring.drift
    schema = FeatureSchema.load(args.prepared / "features.json")
    reference = load_reference(args.prepared / "train.csv", schema, args.model)
    window = read_log(
        args.logs or Path(params.monitoring.log_dir), schema.feature_names, drift_params.window_rows
    )
    evaluation_accuracy = float(json.loads(args.metrics.read_text())["accuracy"])
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
