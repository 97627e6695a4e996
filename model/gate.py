"""DVC stage `gate`: judge the candidate on metrics, behaviour, latency, parity and its edge copy.

Every threshold comes from params.yaml (`gate`); the checks themselves are model/checks.py. The
result is reports/gate.json (model/artifacts.py `GateReport`: every check with value, baseline,
threshold, pass/fail and why) and a table on the terminal, failing checks first. When every
check passes the ONNX model is registered in MLflow with the `challenger` alias; when any fails
nothing is registered and the stage exits non-zero, stopping `dvc repro`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd

from model.artifacts import (
    BaselineCurves,
    BaselineInfo,
    Candidate,
    Check,
    Comparison,
    EdgeResult,
    GateCurves,
    GateImportance,
    GateReport,
    Importance,
    LatencyResult,
    Metrics,
    Registered,
    read_artifact,
    write_artifact,
)
from model.baseline import Baseline, resolve
from model.checks import (
    behavior_checks,
    edge_check,
    format_table,
    input_changes,
    input_schema_check,
    interface_checks,
    latency_checks,
    metric_checks,
    ordered,
    parity_check,
)
from model.contract import Contract, ContractError
from model.features import FeatureSchema, label_codes, read_frame
from model.importance import as_json, permutation_ranking
from model.inference import Feeds, layout_of, onnx_session, predict_proba
from model.inputs import InputLayout
from model.latency import LatencyProfile, measure_side_by_side
from model.lineage import file_digest, git_commit
from model.params import Params, load_checked

Timed = dict[str, tuple[ort.InferenceSession, Feeds]]  # name -> (session, its feeds)


@dataclass(frozen=True)
class TestSplit:
    """The test rows: every column (a baseline may need a feature since moved to `ignore`), the
    candidate's features, and the label codes."""

    schema: FeatureSchema
    rows: pd.DataFrame
    features: pd.DataFrame
    labels: np.ndarray


@dataclass(frozen=True)
class Models:
    """The sessions the gate times side by side, each with feeds laid out for its own inputs."""

    timed: Timed  # candidate, int8, and the baseline when it can be measured
    baseline_layout: InputLayout | None
    note: str  # why the baseline model is not measured, when it is not

    @property
    def candidate(self) -> ort.InferenceSession:
        return self.timed["candidate"][0]


@dataclass(frozen=True)
class Verdict:
    """Every check, and what the report shows beside them."""

    checks: list[Check]
    comparison: Comparison | None
    curves: BaselineCurves | None
    profiles: dict[str, LatencyProfile]
    edge: EdgeResult
    baseline_importance: Importance | None


def _points(frame: pd.DataFrame, x: str, y: str) -> dict[str, list[list[float]]]:
    """Curve points per class, rounded: the report draws them, it does not recompute them."""
    return {
        str(name): [
            [round(float(a), 4), round(float(b), 4)] for a, b in zip(g[x], g[y], strict=True)
        ]
        for name, g in frame.groupby("class", sort=False)
    }


def paired_comparison(
    labels: np.ndarray,
    candidate: np.ndarray,
    baseline: np.ndarray,
    schema: FeatureSchema,
    params: Params,
) -> tuple[Comparison, BaselineCurves]:
    """Both models on the same test rows: paired bootstrap deltas, and the baseline's curves."""
    from model.evaluate import curve_frames, paired_bootstrap  # torch, like the parity check

    bootstrap = params.evaluate.bootstrap
    deltas = paired_bootstrap(
        labels,
        candidate,
        baseline,
        schema.positive_index,
        params.evaluate.calibration_bins,
        bootstrap,
    )
    comparison = Comparison.model_validate(
        {
            "rows": len(labels),
            "resamples": bootstrap.resamples,
            "confidence": bootstrap.confidence,
            "metrics": deltas,
        }
    )
    frames = curve_frames(labels, baseline, schema)
    curves = BaselineCurves.model_validate(
        {
            "roc": _points(frames["roc"], "fpr", "tpr"),
            "precision_recall": _points(frames["precision_recall"], "recall", "precision"),
        }
    )
    return comparison, curves


def _accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float((probabilities.argmax(axis=1) == labels).mean())


def read_split(prepared: Path) -> TestSplit:
    schema = FeatureSchema.load(prepared / "features.json")
    rows = read_frame(prepared / "test.csv", schema)
    features = rows.loc[:, list(schema.feature_names)]
    return TestSplit(schema, rows, features, label_codes(rows, schema))


def open_models(
    args: argparse.Namespace, split: TestSplit, baseline: Baseline, threads: int
) -> Models:
    """The candidate, its int8 copy and, when its inputs are in the split, the baseline."""
    feeds = split.schema.layout.column_feeds(split.features)
    timed: Timed = {
        "candidate": (onnx_session(args.onnx, threads), feeds),
        "int8": (onnx_session(args.int8, threads), feeds),
    }
    if baseline.model is None:
        return Models(timed, None, "")
    session = onnx_session(baseline.model, threads)
    layout = layout_of(session)
    if layout is None:
        return Models(timed, None, "the baseline model does not describe its inputs: not measured")
    missing = [name for name in layout.names if name not in split.rows]
    if missing:
        return Models(
            timed, layout, f"the test split lacks baseline inputs {missing}: not measured"
        )
    timed["baseline"] = (session, layout.column_feeds(split.rows))  # its own inputs, same rows
    return Models(timed, layout, "")


def _baseline_importance(models: Models, split: TestSplit, params: Params) -> Importance | None:
    """Same method, rows and seed as `evaluate`, so the report can show how ranks moved."""
    layout = models.baseline_layout
    if "baseline" not in models.timed or layout is None:
        return None
    session = models.timed["baseline"][0]
    ranking = permutation_ranking(
        lambda rows: predict_proba(session, layout.column_feeds(rows)),
        split.rows.loc[:, list(layout.names)],
        split.labels,
        len(split.schema.labels),
        params.evaluate.importance,
    )
    return Importance.model_validate(as_json(ranking, params.evaluate.importance))


def _interface(
    args: argparse.Namespace,
    models: Models,
    split: TestSplit,
    info: dict[str, Any],
    contract: Contract,
    params: Params,
) -> list[Check]:
    """ONNX against torch, the graph against the contract, the inputs against the baseline's."""
    from model.export import parity, parity_rows  # torch, only for the parity check
    from model.network import load_checkpoint

    raw_rows = parity_rows(split.features, split.schema)
    max_diff = parity(load_checkpoint(args.checkpoint), models.candidate, raw_rows, split.schema)
    return [
        parity_check(max_diff, params.export.parity_tolerance, len(raw_rows)),
        *interface_checks(models.candidate, info, contract),
        input_schema_check(split.schema.layout, models.baseline_layout),
    ]


def _edge(args: argparse.Namespace, models: Models, split: TestSplit) -> EdgeResult:
    fp32, int8 = (predict_proba(*models.timed[name]) for name in ("candidate", "int8"))
    return EdgeResult(
        fp32_bytes=args.onnx.stat().st_size,
        int8_bytes=args.int8.stat().st_size,
        fp32_accuracy=_accuracy(fp32, split.labels),
        int8_accuracy=_accuracy(int8, split.labels),
    )


def judge(
    args: argparse.Namespace,
    split: TestSplit,
    models: Models,
    baseline: Baseline,
    same_model: bool,
    context: tuple[Params, Contract, dict[str, Any], dict[str, float]],
) -> Verdict:
    """Run every check: interface, metrics (paired with the baseline when both were scored),
    behaviour, latency side by side, and the edge copy."""
    params, contract, info, metrics = context
    gates = params.gate
    checks = _interface(args, models, split, info, contract, params)
    comparison, curves = None, None
    if "baseline" in models.timed and not same_model:
        candidate = predict_proba(*models.timed["candidate"])
        base = predict_proba(*models.timed["baseline"])
        comparison, curves = paired_comparison(split.labels, candidate, base, split.schema, params)
    paired = {n: d.model_dump() for n, d in comparison.metrics.items()} if comparison else None
    checks += metric_checks(
        metrics, baseline.metrics, gates.metrics, paired, gates.block_only_beyond_noise
    )
    layout = split.schema.layout
    checks += behavior_checks(
        lambda rows: predict_proba(models.candidate, layout.column_feeds(rows)),
        split.features,
        split.labels,
        split.schema,
        gates.behavior,
    )
    print("gate: measuring latency side by side ...", flush=True)
    profiles = measure_side_by_side(
        models.timed,
        rounds=gates.latency.rounds,
        calls_per_round=gates.latency.calls_per_round,
        batch_sizes=gates.latency.batch_sizes,
    )
    checks += latency_checks(profiles["candidate"], profiles.get("baseline"), gates.latency)
    edge = _edge(args, models, split)
    checks.append(edge_check(edge.fp32_accuracy, edge.int8_accuracy, gates.edge))
    importance = _baseline_importance(models, split, params)
    return Verdict(checks, comparison, curves, profiles, edge, importance)


def build_report(
    verdict: Verdict,
    baseline: Baseline,
    baseline_sha256: str | None,
    models: Models,
    candidate: Candidate,
    layout: InputLayout,
) -> GateReport:
    """gate.json, before registration: the verdict and what the report shows beside it."""
    schema = next(check for check in verdict.checks if check.name == "input_schema")
    describe = baseline.describe() | {
        "onnx_sha256": baseline_sha256,
        "measured": models.note or None,
    }
    changes = input_changes(layout, models.baseline_layout) if models.baseline_layout else None
    return GateReport(
        passed=all(check.passed for check in verdict.checks),
        breaking=schema.value == "breaking",
        input_changes=changes,
        baseline=BaselineInfo.model_validate(describe),
        candidate=candidate,
        identical=baseline_sha256 == candidate.onnx_sha256,
        comparison=verdict.comparison,
        curves=GateCurves(baseline=verdict.curves),
        checks=tuple(ordered(verdict.checks)),
        latency={
            name: LatencyResult.model_validate(asdict(profile))
            for name, profile in verdict.profiles.items()
        },
        edge=verdict.edge,
        importance=GateImportance(baseline=verdict.baseline_importance),
    )


def register_candidate(
    report: GateReport,
    args: argparse.Namespace,
    params: Params,
    info: dict[str, Any],
    baseline: Baseline,
) -> Registered:
    """The ONNX model as a new version with the `challenger` alias, tagged with its lineage."""
    from model.registry import register

    schema = report.schema_check
    version = register(
        params.registry.model_name,
        params.registry.challenger_alias,
        args.onnx,
        info["sha256"],
        info["weights_sha256"],
        report.candidate.metrics,
        tags={
            "git_commit": git_commit(),
            "data_md5": info["data_md5"],
            "params_sha256": file_digest(args.params),
            "gate_result": "passed",
            "gate_baseline": baseline.source,
            "input_schema": str(schema.value if schema else None),
            "breaking": str(report.breaking).lower(),
        },
    )
    return Registered(**asdict(version), alias=params.registry.challenger_alias)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("prepared", type=Path, help="folder written by `prepare`")
    parser.add_argument("contract", type=Path, help="data contract (YAML)")
    parser.add_argument("checkpoint", type=Path, help="torch checkpoint written by `train`")
    parser.add_argument("onnx", type=Path, help="ONNX model written by `export`")
    parser.add_argument("int8", type=Path, help="int8 model written by `quantize`")
    parser.add_argument("metadata", type=Path, help="model metadata written by `export`")
    parser.add_argument("metrics", type=Path, help="metrics written by `evaluate`")
    parser.add_argument("report", type=Path, help="where to write the gate result (JSON)")
    parser.add_argument(
        "--params", type=Path, default=Path("params.yaml"), help="thresholds (params.yaml)"
    )
    parser.add_argument(
        "--baseline",
        default=os.environ.get("GATE_BASELINE", "auto"),
        help="auto (default; env GATE_BASELINE), none, champion, artifact[:<dir>] or git:<rev>",
    )
    parser.add_argument("--no-register", action="store_true", help="judge only, never register")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        params, contract = load_checked(args.params, args.contract)
        metrics = read_artifact(args.metrics, Metrics).root
    except (ValueError, ContractError) as error:  # ArtifactError is a ValueError
        print(f"gate: {error}", file=sys.stderr)
        return 2
    split = read_split(args.prepared)
    info = json.loads(args.metadata.read_text())
    baseline = resolve(args.baseline, params.registry, args.metrics, args.onnx)
    print(f"gate: judging {args.onnx} against {baseline.source}", flush=True)
    models = open_models(args, split, baseline, params.gate.latency.threads)
    baseline_sha256 = hashlib.sha256(baseline.model).hexdigest() if baseline.model else None
    context = (params, contract, info, metrics)
    verdict = judge(args, split, models, baseline, baseline_sha256 == info["sha256"], context)
    candidate = Candidate(onnx_sha256=info["sha256"], metrics=metrics)
    report = build_report(
        verdict, baseline, baseline_sha256, models, candidate, split.schema.layout
    )
    if report.passed and not args.no_register:
        registered = register_candidate(report, args, params, info, baseline)
        report = report.model_copy(update={"registered": registered})
    write_artifact(args.report, report)
    print(format_table(verdict.checks, baseline), file=sys.stdout if report.passed else sys.stderr)
    if report.registered is not None:
        registered = report.registered
        action = "registered" if registered.created else "already registered as"
        print(
            f"gate: {action} {registered.name} version {registered.version}, "
            f"alias {registered.alias}"
        )
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
