"""DVC stage `evaluate`: test-split metrics for `dvc metrics diff`, plot data, and MLflow.

Also bootstrap confidence intervals of those metrics (for the model card) and the permutation
importance of every feature, measured on the exported ONNX model: what serving will run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn import metrics as sk

from model.artifacts import Confidence, Importance, Metrics, write_artifact
from model.atomic import atomic_path
from model.features import FeatureSchema, encode, read_split
from model.importance import (
    FeatureImportance,
    as_json,
    importance_label,
    permutation_ranking,
)
from model.inference import onnx_session
from model.inference import predict_proba as onnx_predict_proba
from model.lineage import file_digest
from model.network import Classifier, load_checkpoint
from model.params import BootstrapParams, Params
from model.tracking import model_run


@torch.no_grad()
def predict_proba(network: Classifier, features: np.ndarray) -> np.ndarray:
    # (rows, n_features) -> (rows, n_classes)
    return torch.softmax(network(torch.from_numpy(features)).double(), dim=1).numpy()


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int) -> float:
    """Mean |confidence - accuracy| over equal-width confidence bins, weighted by bin size."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for index in range(bins):
        in_bin = which == index
        if in_bin.any():
            error += in_bin.mean() * abs(confidence[in_bin].mean() - correct[in_bin].mean())
    return float(error)


def compute_metrics(
    labels: np.ndarray, probabilities: np.ndarray, positive: int | None, calibration_bins: int
) -> dict[str, float]:
    """The metrics the gates read; binary ROC AUC on `positive`, one-vs-rest macro otherwise."""
    n_classes = probabilities.shape[1]
    predicted = probabilities.argmax(axis=1)
    classes = list(range(n_classes))
    if n_classes == 2:
        positive = 1 if positive is None else positive
        roc_auc = sk.roc_auc_score(labels == positive, probabilities[:, positive])
    else:
        roc_auc = sk.roc_auc_score(labels, probabilities, multi_class="ovr", labels=classes)
    return {
        "accuracy": float(sk.accuracy_score(labels, predicted)),
        "f1_macro": float(sk.f1_score(labels, predicted, average="macro", labels=classes)),
        "roc_auc": float(roc_auc),
        "log_loss": float(sk.log_loss(labels, probabilities, labels=classes)),
        "ece": expected_calibration_error(labels, probabilities, calibration_bins),
        "brier": float(np.mean(np.sum((probabilities - np.eye(n_classes)[labels]) ** 2, axis=1))),
    }


def resampled_rows(
    labels: np.ndarray, n_classes: int, params: BootstrapParams
) -> Iterator[np.ndarray]:
    """Row indices drawn with replacement, `params.resamples` times from `params.seed`; draws
    missing a class are skipped (one-vs-rest ROC AUC is undefined on them)."""
    rng = np.random.default_rng(params.seed)
    rows = len(labels)
    for _ in range(params.resamples):
        pick = rng.integers(0, rows, rows)
        if np.unique(labels[pick]).size >= n_classes:
            yield pick


def bootstrap_intervals(
    labels: np.ndarray,
    probabilities: np.ndarray,
    positive: int | None,
    calibration_bins: int,
    params: BootstrapParams,
) -> dict[str, dict[str, float]]:
    """Percentile intervals of every metric over test rows resampled with replacement."""
    samples: dict[str, list[float]] = {}
    for pick in resampled_rows(labels, probabilities.shape[1], params):
        for name, value in compute_metrics(
            labels[pick], probabilities[pick], positive, calibration_bins
        ).items():
            samples.setdefault(name, []).append(value)
    tail = (1 - params.confidence) / 2 * 100
    return {
        name: {
            "low": round(float(np.percentile(values, tail)), 6),
            "high": round(float(np.percentile(values, 100 - tail)), 6),
        }
        for name, values in samples.items()
    }


def paired_bootstrap(
    labels: np.ndarray,
    candidate: np.ndarray,
    baseline: np.ndarray,
    positive: int | None,
    calibration_bins: int,
    params: BootstrapParams,
) -> dict[str, dict[str, float | bool]]:
    """Candidate minus baseline for every metric, with a percentile interval over test rows
    resampled with replacement: both models are scored on the same resampled rows, so the
    interval is about their difference, not about two independent noises.

    `beyond_noise` says the interval excludes a zero change."""
    deltas: dict[str, list[float]] = {}
    for pick in resampled_rows(labels, candidate.shape[1], params):
        ours = compute_metrics(labels[pick], candidate[pick], positive, calibration_bins)
        theirs = compute_metrics(labels[pick], baseline[pick], positive, calibration_bins)
        for name, value in ours.items():
            deltas.setdefault(name, []).append(value - theirs[name])
    ours = compute_metrics(labels, candidate, positive, calibration_bins)
    theirs = compute_metrics(labels, baseline, positive, calibration_bins)
    tail = (1 - params.confidence) / 2 * 100
    result: dict[str, dict[str, float | bool]] = {}
    for name, values in deltas.items():
        low = float(np.percentile(values, tail))
        high = float(np.percentile(values, 100 - tail))
        result[name] = {
            "candidate": round(ours[name], 6),
            "baseline": round(theirs[name], 6),
            "delta": round(ours[name] - theirs[name], 6),
            "low": round(low, 6),
            "high": round(high, 6),
            "beyond_noise": bool(low > 0 or high < 0),
        }
    return result


def importance_frame(ranking: list[FeatureImportance]) -> pd.DataFrame:
    """DVC bar-plot data, most important feature first."""
    return pd.DataFrame(
        {
            "feature": [row.feature for row in ranking],
            "importance": [row.importance for row in ranking],
            "std": [row.std for row in ranking],
        }
    )


def curve_classes(schema: FeatureSchema) -> list[int]:
    """The classes curves are drawn for: the positive one of a binary label, else every class
    (one-vs-rest)."""
    positive = schema.positive_index
    return [positive] if positive is not None else list(range(len(schema.labels)))


def curve_frames(
    labels: np.ndarray, probabilities: np.ndarray, schema: FeatureSchema
) -> dict[str, pd.DataFrame]:
    """ROC and precision-recall points (a `class` column: the positive class, or each class
    against the rest), and a confusion table (N x N through DVC's confusion template)."""
    roc, pr = [], []
    for index in curve_classes(schema):
        truth, score = labels == index, probabilities[:, index]
        if truth.all() or not truth.any():
            continue  # a class absent from the test split has no curve
        fpr, tpr, _ = sk.roc_curve(truth, score)
        precision, recall, _ = sk.precision_recall_curve(truth, score)
        name = schema.labels[index]
        roc.append(pd.DataFrame({"class": name, "fpr": fpr, "tpr": tpr}))
        pr.append(pd.DataFrame({"class": name, "recall": recall, "precision": precision}))
    names = np.array(schema.labels)
    return {
        "roc": pd.concat(roc, ignore_index=True),
        "precision_recall": pd.concat(pr, ignore_index=True),
        "confusion": pd.DataFrame(
            {"actual": names[labels], "predicted": names[probabilities.argmax(axis=1)]}
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("prepared", type=Path, help="folder written by `prepare`")
    parser.add_argument("checkpoint", type=Path, help="checkpoint written by `train`")
    parser.add_argument("onnx", type=Path, help="ONNX model written by `export`")
    parser.add_argument("metrics", type=Path, help="where to write the metrics (JSON)")
    parser.add_argument("confidence", type=Path, help="where to write their intervals (JSON)")
    parser.add_argument("importance", type=Path, help="where to write feature importance (JSON)")
    parser.add_argument("plots", type=Path, help="folder for the plot data (CSV)")
    args = parser.parse_args(argv)

    params = Params.load().evaluate
    schema = FeatureSchema.load(args.prepared / "features.json")
    frame, labels = read_split(args.prepared / "test.csv", schema)
    probabilities = predict_proba(load_checkpoint(args.checkpoint), encode(frame, schema))
    positive, bins = schema.positive_index, params.calibration_bins
    scores = compute_metrics(labels, probabilities, positive, bins)
    intervals = bootstrap_intervals(labels, probabilities, positive, bins, params.bootstrap)
    session = onnx_session(args.onnx)
    layout = schema.layout
    ranking = permutation_ranking(
        lambda rows: onnx_predict_proba(session, layout.column_feeds(rows)),
        frame,
        labels,
        len(schema.labels),
        params.importance,
    )
    write_artifact(args.metrics, Metrics({name: round(value, 6) for name, value in scores.items()}))
    confidence = {
        "confidence": params.bootstrap.confidence,
        "resamples": params.bootstrap.resamples,
        "rows": len(labels),
        "intervals": intervals,
    }
    write_artifact(args.confidence, Confidence.model_validate(confidence))
    write_artifact(args.importance, Importance.model_validate(as_json(ranking, params.importance)))
    frames = curve_frames(labels, probabilities, schema) | {"importance": importance_frame(ranking)}
    for name, frame in frames.items():
        with atomic_path(args.plots / f"{name}.csv") as temporary:
            frame.to_csv(temporary, index=False, float_format="%.6g")

    import mlflow

    with model_run(file_digest(args.checkpoint)):
        mlflow.log_metrics({f"test_{name}": value for name, value in scores.items()})
        mlflow.log_dict(as_json(ranking, params.importance), "importance.json")
    print("evaluate: " + ", ".join(f"{name} {value:.4f}" for name, value in scores.items()))
    top = ", ".join(f"{row.feature} {row.importance:.3g}" for row in ranking[:3])
    print(f"evaluate: top features ({importance_label(params.importance.metric)}): {top}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
