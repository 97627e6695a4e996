"""`make drift`: is the live traffic still the traffic the model was trained for?

Compares the most recent logged predictions (serving/prediction_log.py) with the training split:
per feature, the population stability index over quantile bins of the training data and a
two-sample Kolmogorov-Smirnov test (scipy; Bonferroni-corrected over the features); the same
index on the predicted positive-class probability (prediction drift); and, when labelled
feedback has arrived, the accuracy on it against the evaluation accuracy (concept drift).
Writes JSON and a Markdown report with per-feature charts; exits 3 when retraining is due
(0 when not, 1-2 on errors). In GitHub Actions (GITHUB_OUTPUT set) it writes `retrain=true|false`
to the step's outputs instead and exits 0, so the workflow decides and errors stay errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from model.atomic import write_json_atomically, write_text_atomically
from model.features import FeatureSchema, read_split
from model.inference import onnx_session, predict_proba
from model.params import DriftParams, Params
from serving.prediction_log import log_files

RETRAIN_DUE = 3
EPSILON = 1e-4  # keeps empty bins from making the index infinite


def psi(reference: np.ndarray, current: np.ndarray, bins: int) -> float:
    """Population stability index of `current` against `reference`, on reference quantiles."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return 0.0 if np.allclose(current, reference[0]) else float("inf")
    inner = edges[1:-1]  # outer bins are open, so values beyond the training range still count
    expected = np.bincount(
        np.searchsorted(inner, reference, side="right"), minlength=len(edges) - 1
    )
    actual = np.bincount(np.searchsorted(inner, current, side="right"), minlength=len(edges) - 1)
    expected_share = np.clip(expected / expected.sum(), EPSILON, None)
    actual_share = np.clip(actual / actual.sum(), EPSILON, None)
    return float(np.sum((actual_share - expected_share) * np.log(actual_share / expected_share)))


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    psi: float
    ks_statistic: float
    ks_pvalue: float
    reference_mean: float
    current_mean: float
    drifted: bool
    why: str


def feature_drift(
    reference: pd.DataFrame, current: pd.DataFrame, params: DriftParams
) -> list[FeatureDrift]:
    """Every feature, judged on PSI and on the KS test (alpha split across the features)."""
    alpha = params.ks_alpha / len(reference.columns)
    results = []
    for name in reference.columns:
        old, new = reference[name].to_numpy(float), current[name].to_numpy(float)
        index = psi(old, new, params.psi_bins)
        test = stats.ks_2samp(old, new)
        reasons = []
        if index > params.max_psi:
            reasons.append(f"PSI {index:.3f} > {params.max_psi}")
        if test.pvalue < alpha:
            reasons.append(f"KS p {test.pvalue:.2g} < {alpha:.2g}")
        results.append(
            FeatureDrift(
                feature=name,
                psi=index,
                ks_statistic=float(test.statistic),
                ks_pvalue=float(test.pvalue),
                reference_mean=float(old.mean()),
                current_mean=float(new.mean()),
                drifted=bool(reasons),
                why="; ".join(reasons) or "stable",
            )
        )
    return results


def read_log(folder: Path, window_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The latest `window_rows` logged predictions, and every feedback record."""
    predictions: list[dict[str, Any]] = []
    feedback: list[dict[str, Any]] = []
    for path in log_files(folder):
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a partial line from a server stopped mid-write
            (predictions if record.get("kind") == "prediction" else feedback).append(record)
    predictions = predictions[-window_rows:]
    frame = pd.DataFrame(
        [
            {
                **record["features"],
                "_request_id": record["request_id"],
                "_row": record["row"],
                "_label": record["label"],
                "_probabilities": record["probabilities"],
            }
            for record in predictions
        ]
    )
    return frame, pd.DataFrame(feedback)


def concept_drift(
    logged: pd.DataFrame, feedback: pd.DataFrame, evaluation_accuracy: float, params: DriftParams
) -> dict[str, Any]:
    """Accuracy on predictions whose true label came back, against the evaluation accuracy."""
    if feedback.empty or logged.empty:
        return {"judged": False, "rows": 0, "why": "no labelled feedback yet"}
    joined = logged.merge(
        feedback.rename(columns={"request_id": "_request_id", "row": "_row"}),
        on=["_request_id", "_row"],
    )
    if len(joined) < params.min_feedback_rows:
        return {
            "judged": False,
            "rows": len(joined),
            "why": f"{len(joined)} labelled rows, fewer than {params.min_feedback_rows}",
        }
    accuracy = float((joined["_label"] == joined["true_label"]).mean())
    drop = evaluation_accuracy - accuracy
    drifted = drop > params.max_accuracy_drop
    return {
        "judged": True,
        "rows": len(joined),
        "accuracy": accuracy,
        "evaluation_accuracy": evaluation_accuracy,
        "drifted": drifted,
        "why": f"accuracy on feedback {accuracy:.3f} vs evaluation {evaluation_accuracy:.3f} "
        f"(drop {drop:+.3f}, limit {params.max_accuracy_drop})",
    }


def markdown(report: dict[str, Any]) -> str:
    features = report["features"]
    verdict = "retraining due" if report["retrain"] else "no retraining needed"
    lines = [
        f"# Drift report: {verdict}",
        "",
        f"{report['rows']} logged rows against {report['reference_rows']} training rows. "
        + report["summary"],
        "",
        "| feature | PSI | KS p | mean (train → live) | verdict |",
        "|---|---:|---:|---|---|",
    ]
    for item in sorted(features, key=lambda f: -f["psi"]):
        mark = "❌ " + item["why"] if item["drifted"] else "✅"
        lines.append(
            f"| {item['feature']} | {item['psi']:.3f} | {item['ks_pvalue']:.2g} | "
            f"{item['reference_mean']:.4g} → {item['current_mean']:.4g} | {mark} |"
        )
    top = sorted(features, key=lambda f: -f["psi"])[:12]
    lines += [
        "",
        "```mermaid",
        "xychart-beta",
        '    title "PSI by feature (top 12)"',
        "    x-axis [" + ", ".join(f'"{f["feature"]}"' for f in top) + "]",
        '    y-axis "PSI"',
        "    bar [" + ", ".join(f"{f['psi']:.3f}" for f in top) + "]",
        "```",
        "",
        f"Prediction drift: PSI {report['prediction']['psi']:.3f} on P(positive) "
        f"({'drifted' if report['prediction']['drifted'] else 'stable'}).",
        f"Concept drift: {report['concept']['why']}.",
    ]
    return "\n".join(lines) + "\n"


def judge(
    reference: pd.DataFrame,
    reference_scores: np.ndarray,
    logged: pd.DataFrame,
    feedback: pd.DataFrame,
    evaluation_accuracy: float,
    positive: int,
    params: DriftParams,
) -> dict[str, Any]:
    """The whole verdict, as a JSON-ready dict. No I/O: tests call this directly."""
    if len(logged) < params.min_rows:
        summary = f"only {len(logged)} logged rows, fewer than {params.min_rows}: no verdict"
        return {
            "retrain": False,
            "rows": len(logged),
            "reference_rows": len(reference),
            "summary": summary,
            "features": [],
            "drifted_features": [],
            "prediction": {"psi": 0.0, "drifted": False},
            "concept": {"judged": False, "why": summary},
        }
    current = logged[list(reference.columns)]
    features = feature_drift(reference, current, params)
    scores = np.array([probabilities[positive] for probabilities in logged["_probabilities"]])
    prediction_psi = psi(reference_scores, scores, params.psi_bins)
    prediction = {"psi": prediction_psi, "drifted": prediction_psi > params.max_prediction_psi}
    concept = concept_drift(logged, feedback, evaluation_accuracy, params)
    drifted = [item.feature for item in features if item.drifted]
    retrain = bool(drifted) or prediction["drifted"] or bool(concept.get("drifted"))
    summary = f"Drifted features: {', '.join(drifted)}." if drifted else "No feature drifted."
    return {
        "retrain": retrain,
        "rows": len(logged),
        "reference_rows": len(reference),
        "summary": summary,
        "drifted_features": drifted,
        "features": [asdict(item) for item in features],
        "prediction": prediction,
        "concept": concept,
    }


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
    reference = pd.read_csv(args.prepared / "train.csv")[list(schema.feature_names)]
    features, _ = read_split(args.prepared / "train.csv", schema)
    reference_scores = predict_proba(onnx_session(args.model), features)[:, schema.positive_index]
    logged, feedback = read_log(
        args.logs or Path(params.monitoring.log_dir), drift_params.window_rows
    )
    evaluation_accuracy = float(json.loads(args.metrics.read_text())["accuracy"])
    report = judge(
        reference, reference_scores, logged, feedback, evaluation_accuracy,
        schema.positive_index, drift_params,
    )  # fmt: skip
    write_json_atomically(args.out / "drift.json", report)
    write_text_atomically(args.out / "drift.md", markdown(report))
    print(f"drift: {report['summary']} -> {args.out / 'drift.md'}")
    print(f"drift: {'RETRAINING DUE' if report['retrain'] else 'no retraining needed'}")
    github_output = os.environ.get("GITHUB_OUTPUT")
    if github_output:
        with open(github_output, "a") as handle:
            handle.write(f"retrain={'true' if report['retrain'] else 'false'}\n")
        return 0
    return RETRAIN_DUE if report["retrain"] else 0


if __name__ == "__main__":
    sys.exit(main())
