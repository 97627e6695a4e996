"""DVC stage `gate`: judge the candidate on metrics, behaviour, latency, parity and its edge copy.

Every threshold comes from params.yaml (`gate`). The result is reports/gate.json (every check with
value, baseline, threshold, pass/fail and why) and a table on the terminal, failing checks first.
When every check passes the ONNX model is registered in MLflow with the `challenger` alias; when
any fails nothing is registered and the stage exits non-zero, stopping `dvc repro`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd

from model.atomic import write_json_atomically
from model.baseline import Baseline, resolve
from model.behavior import Predict, directional_shares, invariance_flip_rate, per_class_recall
from model.contract import Contract, ContractError
from model.features import FeatureSchema, label_codes, read_frame
from model.importance import as_json, permutation_ranking
from model.inference import layout_of, onnx_session, predict_proba
from model.inputs import OUTPUT_NAME, InputLayout
from model.latency import LatencyProfile, measure_side_by_side
from model.lineage import file_digest, git_commit
from model.params import (
    BehaviorGate,
    EdgeGate,
    LatencyGate,
    MetricGate,
    Params,
    load_checked,
)


@dataclass(frozen=True)
class Check:
    """One verdict, with everything a reviewer needs to agree or disagree with it."""

    gate: str  # metric, behavior, latency, parity, edge or interface
    name: str
    passed: bool
    value: float | str | None
    threshold: float | str | None
    why: str
    baseline: float | None = None


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _noise(pair: Mapping[str, Any] | None) -> str:
    if pair is None:
        return ""
    word = "beyond noise" if pair["beyond_noise"] else "within noise"
    return f" (paired 95% interval {pair['low']:+.4g} to {pair['high']:+.4g}: {word})"


def metric_checks(
    candidate: Mapping[str, float],
    baseline: Mapping[str, float] | None,
    gates: Mapping[str, MetricGate],
    paired: Mapping[str, Mapping[str, Any]] | None = None,
    block_only_beyond_noise: bool = False,
) -> list[Check]:
    """An absolute bound per metric, and a bound on the change against the baseline.

    With `paired` (the paired bootstrap of candidate minus baseline on the same rows) each change
    says whether it is beyond noise; with `block_only_beyond_noise`, a change past its limit
    blocks only when the whole interval is past it."""
    checks = []
    paired = paired or {}
    for name, gate in gates.items():
        if name not in candidate:
            checks.append(Check("metric", name, False, None, None, "metric missing from metrics"))
            continue
        value = candidate[name]
        base = None if baseline is None else baseline.get(name)
        pair = paired.get(name)
        if gate.higher_is_better:
            if gate.min is not None:
                ok = value >= gate.min
                why = f"{_fmt(value)} {'>=' if ok else '<'} floor {_fmt(gate.min)}"
                checks.append(Check("metric", f"{name}_floor", ok, value, gate.min, why, base))
            if gate.max_drop is not None and base is not None:
                limit = base - gate.max_drop
                ok = value >= limit
                why = f"{_fmt(value)} vs baseline {_fmt(base)}: change {value - base:+.4g}"
                why += f"{_noise(pair)}, allowed drop {_fmt(gate.max_drop)}"
                if not ok and block_only_beyond_noise and pair and pair["high"] >= -gate.max_drop:
                    ok, why = True, why + "; not blocking: the interval reaches an allowed change"
                checks.append(Check("metric", f"{name}_vs_baseline", ok, value, limit, why, base))
        else:
            if gate.max is not None:
                ok = value <= gate.max
                why = f"{_fmt(value)} {'<=' if ok else '>'} ceiling {_fmt(gate.max)}"
                checks.append(Check("metric", f"{name}_ceiling", ok, value, gate.max, why, base))
            if gate.max_rise is not None and base is not None:
                limit = base + gate.max_rise
                ok = value <= limit
                why = f"{_fmt(value)} vs baseline {_fmt(base)}: change {value - base:+.4g}"
                why += f"{_noise(pair)}, allowed rise {_fmt(gate.max_rise)}"
                if not ok and block_only_beyond_noise and pair and pair["low"] <= gate.max_rise:
                    ok, why = True, why + "; not blocking: the interval reaches an allowed change"
                checks.append(Check("metric", f"{name}_vs_baseline", ok, value, limit, why, base))
    return checks


def behavior_checks(
    predict: Predict,
    features: pd.DataFrame,
    labels: np.ndarray,
    schema: FeatureSchema,
    params: BehaviorGate,
) -> list[Check]:
    """Invariance to tiny nudges, expected directions, and a recall floor for every class."""
    numeric = [item.name for item in schema.numeric if item.kind == "numeric"]
    flip_rate = invariance_flip_rate(predict, features, numeric, params.invariance_relative_step)
    limit = params.max_invariance_flip_rate
    checks = [
        Check(
            "behavior",
            "invariance",
            flip_rate <= limit,
            flip_rate,
            limit,
            f"{flip_rate:.2%} of predictions flip when one numeric feature moves by "
            f"{params.invariance_relative_step:.2%} (limit {limit:.2%})",
        )
    ]
    expectations = params.expectations()
    targets = {
        name: schema.labels.index(expectation.label or str(schema.positive_label))
        for name, expectation in expectations.items()
    }
    shares = directional_shares(
        predict,
        features,
        schema.numeric_std,
        {name: (targets[name], item.effect) for name, item in expectations.items()},
        params.directional_step_std,
    )
    for name, share in shares.items():
        ok = share >= params.min_directional_share
        target = schema.labels[targets[name]]
        checks.append(
            Check(
                "behavior",
                f"directional_{name}",
                ok,
                share,
                params.min_directional_share,
                f"raising {name} by {params.directional_step_std:g} std "
                f"{expectations[name].effect} P({target}) for {share:.1%} of rows "
                f"(need {params.min_directional_share:.0%})",
            )
        )
    for label, recall in zip(
        schema.labels, per_class_recall(labels, predict(features)), strict=True
    ):
        ok = recall >= params.min_recall
        why = f"recall of {label} {recall:.3f} {'>=' if ok else '<'} {params.min_recall}"
        checks.append(Check("behavior", f"recall_{label}", ok, recall, params.min_recall, why))
    return checks


def latency_checks(
    candidate: LatencyProfile, baseline: LatencyProfile | None, params: LatencyGate
) -> list[Check]:
    """An absolute single-row p99 budget, and the p99 ratio to a baseline measured alongside."""
    ok = candidate.p99_ms <= params.p99_budget_ms
    checks = [
        Check(
            "latency",
            "p99_budget",
            ok,
            candidate.p99_ms,
            params.p99_budget_ms,
            f"single-row p99 {candidate.p99_ms:.4f} ms, budget {params.p99_budget_ms} ms",
        )
    ]
    if baseline is not None:
        ratio = candidate.p99_ms / baseline.p99_ms
        checks.append(
            Check(
                "latency",
                "p99_ratio",
                ratio <= params.max_p99_ratio,
                ratio,
                params.max_p99_ratio,
                f"candidate p99 {candidate.p99_ms:.4f} ms / baseline {baseline.p99_ms:.4f} ms "
                f"= {ratio:.2f}x (limit {params.max_p99_ratio}x), measured side by side",
                baseline.p99_ms,
            )
        )
    return checks


def interface_checks(
    session: ort.InferenceSession, info: Mapping[str, Any], contract: Contract
) -> list[Check]:
    """The ONNX graph's inputs and outputs, and model.json, agree with the data contract."""
    layout = layout_of(session)
    graph_inputs = {item.name: item for item in session.get_inputs()}
    [model_output] = session.get_outputs()
    expected_numeric = [f.name for f in contract.features if f.kind != "categorical"]
    expected_categorical = [f.name for f in contract.features if f.kind == "categorical"]
    expectations: list[tuple[str, object, object]] = [
        ("inputs_described", "yes" if layout is not None else "no", "yes"),
        ("feature_order", list(info["feature_names"]), list(contract.feature_names)),
        ("feature_kinds", [i["kind"] for i in info["inputs"]], [f.kind for f in contract.features]),
        ("labels", list(info["labels"]), list(contract.label.values)),
        ("output_name", model_output.name, OUTPUT_NAME),
        ("output_width", model_output.shape[1], len(contract.label.values)),
    ]
    for tensor, names, dtype in (
        ("numeric", expected_numeric, "tensor(float)"),
        ("categorical", expected_categorical, "tensor(string)"),
    ):
        graph_input = graph_inputs.get(tensor)
        if not names:  # no feature of this kind: the graph must not ask for the tensor
            present = "present" if graph_input is not None else "absent"
            expectations.append((f"{tensor}_input", present, "absent"))
            continue
        shape = graph_input.shape if graph_input is not None else [None, None]
        expectations += [
            (f"{tensor}_dtype", graph_input.type if graph_input else None, dtype),
            (f"{tensor}_width", shape[1], len(names)),
            (
                f"{tensor}_batch_axis",
                "dynamic" if isinstance(shape[0], str) else "fixed",
                "dynamic",
            ),
        ]
    checks = []
    for name, actual, expected in expectations:
        ok = actual == expected
        shown = f"{actual!r}" if not isinstance(actual, list) else f"{len(actual)} entries"
        why = (
            f"{name} {shown} matches the contract"
            if ok
            else (f"{name}: model has {actual!r}, the contract expects {expected!r}")
        )
        checks.append(Check("parity", name, ok, str(actual)[:200], str(expected)[:200], why))
    return checks


def input_changes(candidate: InputLayout, baseline: InputLayout) -> dict[str, list[str]]:
    """Features added, removed and retyped (kind or category set) against the baseline, and those
    that newly refuse null."""
    before = {item.name: item for item in baseline.inputs}
    after = {item.name: item for item in candidate.inputs}
    shared = [name for name in after if name in before]
    return {
        "added": [name for name in after if name not in before],
        "removed": [name for name in before if name not in after],
        "retyped": [
            name
            for name in shared
            if (after[name].kind, after[name].categories)
            != (before[name].kind, before[name].categories)
        ],
        "now_required": [
            name for name in shared if before[name].nullable and not after[name].nullable
        ],
        "added_required": [
            name for name in after if name not in before and not after[name].nullable
        ],
    }


def input_schema_check(candidate: InputLayout, baseline: InputLayout | None) -> Check:
    """Features added, removed or retyped against the baseline: a fact to report, not a failure.
    `value` is "breaking" when clients of the baseline would be refused by the candidate."""
    if baseline is None:
        return Check("interface", "input_schema", True, "unknown", None, "no baseline inputs")
    changes = input_changes(candidate, baseline)
    breaking = any(changes[key] for key in ("removed", "retyped", "now_required", "added_required"))
    listed = [
        f"{label}: {', '.join(changes[label])}"
        for label in ("added", "removed", "retyped")
        if changes[label]
    ]
    if changes["now_required"]:
        listed.append(f"null no longer allowed: {', '.join(changes['now_required'])}")
    why = "; ".join(listed) or "same inputs as the baseline"
    why += " (BREAKING: clients of the baseline would be refused)" if breaking else ""
    value = "breaking" if breaking else ("changed" if listed else "same")
    return Check("interface", "input_schema", True, value, None, why)


def parity_check(max_diff: float, tolerance: float, rows: int) -> Check:
    ok = max_diff <= tolerance
    why = f"max |onnx - torch| {max_diff:.3g} over {rows} test rows (tolerance {tolerance:g})"
    return Check("parity", "onnx_matches_torch", ok, max_diff, tolerance, why)


def edge_check(fp32_accuracy: float, int8_accuracy: float, params: EdgeGate) -> Check:
    drop = fp32_accuracy - int8_accuracy
    ok = drop <= params.max_accuracy_drop
    why = (
        f"int8 accuracy {int8_accuracy:.4f} vs fp32 {fp32_accuracy:.4f}: drop {drop:+.4f} "
        f"(limit {params.max_accuracy_drop})"
    )
    return Check("edge", "int8_accuracy_drop", ok, drop, params.max_accuracy_drop, why)


def ordered(checks: list[Check]) -> list[Check]:
    """Failing checks first, otherwise in the order they were made."""
    return sorted(checks, key=lambda check: check.passed)


def format_table(checks: list[Check], baseline: Baseline) -> str:
    failed = [check for check in checks if not check.passed]
    header = f"gate: baseline {baseline.source}" + (f" ({baseline.note})" if baseline.note else "")
    lines = [header, f"  {'':4} {'gate':<9} {'check':<32} why"]
    for check in ordered(checks):
        mark = "ok" if check.passed else "FAIL"
        lines.append(f"  {mark:<4} {check.gate:<9} {check.name:<32} {check.why}")
    verdict = (
        f"gate: FAILED {len(failed)} of {len(checks)} checks: "
        + ", ".join(f"{c.gate}/{c.name}" for c in failed)
        if failed
        else f"gate: passed all {len(checks)} checks"
    )
    return "\n".join([*lines, verdict])


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
) -> tuple[dict[str, Any], dict[str, Any]]:
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
    comparison = {
        "rows": len(labels),
        "resamples": bootstrap.resamples,
        "confidence": bootstrap.confidence,
        "metrics": deltas,
    }
    frames = curve_frames(labels, baseline, schema)
    curves = {
        "roc": _points(frames["roc"], "fpr", "tpr"),
        "precision_recall": _points(frames["precision_recall"], "recall", "precision"),
    }
    return comparison, curves


def _accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float((probabilities.argmax(axis=1) == labels).mean())


def main(argv: list[str] | None = None) -> int:
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
        "--baseline",
        default=os.environ.get("GATE_BASELINE", "auto"),
        help="auto (default; env GATE_BASELINE), none, champion, or git:<rev>",
    )
    parser.add_argument("--no-register", action="store_true", help="judge only, never register")
    args = parser.parse_args(argv)

    try:
        params, contract = load_checked(Path("params.yaml"), args.contract)
    except (ValueError, ContractError) as error:
        print(f"gate: {error}", file=sys.stderr)
        return 2
    gates = params.gate
    schema = FeatureSchema.load(args.prepared / "features.json")
    # Every column of the split: a baseline may still need a feature since moved to `ignore`.
    test_rows = read_frame(args.prepared / "test.csv", schema)
    frame, labels = test_rows.loc[:, list(schema.feature_names)], label_codes(test_rows, schema)
    layout = schema.layout
    info = json.loads(args.metadata.read_text())
    metrics = json.loads(args.metrics.read_text())
    baseline = resolve(args.baseline, params.registry, args.metrics, args.onnx)
    print(f"gate: judging {args.onnx} against {baseline.source}", flush=True)

    threads = gates.latency.threads
    candidate = onnx_session(args.onnx, threads)
    int8 = onnx_session(args.int8, threads)
    feeds = layout.column_feeds(frame)
    models = {"candidate": (candidate, feeds), "int8": (int8, feeds)}
    baseline_layout, baseline_note = None, ""
    if baseline.model is not None:
        baseline_session = onnx_session(baseline.model, threads)
        baseline_layout = layout_of(baseline_session)
        missing = (
            [n for n in baseline_layout.names if n not in test_rows] if baseline_layout else []
        )
        if baseline_layout is None:
            baseline_note = "the baseline model does not describe its inputs: not measured"
        elif missing:
            baseline_note = f"the test split lacks baseline inputs {missing}: not measured"
        else:  # each model on its own inputs, the same rows
            models["baseline"] = (baseline_session, baseline_layout.column_feeds(test_rows))

    from model.export import parity, parity_rows  # torch, only for the parity check
    from model.network import load_checkpoint

    raw_rows = parity_rows(frame, schema)
    max_diff = parity(load_checkpoint(args.checkpoint), candidate, raw_rows, schema)
    candidate_probabilities = predict_proba(candidate, feeds)
    checks = [parity_check(max_diff, params.export.parity_tolerance, len(raw_rows))]
    checks += interface_checks(candidate, info, contract)
    checks.append(input_schema_check(layout, baseline_layout))
    baseline_sha256 = hashlib.sha256(baseline.model).hexdigest() if baseline.model else None
    comparison, curves = None, None
    if "baseline" in models and baseline_sha256 != info["sha256"]:
        comparison, curves = paired_comparison(
            labels, candidate_probabilities, predict_proba(*models["baseline"]), schema, params
        )
    paired = comparison["metrics"] if comparison else None
    checks += metric_checks(
        metrics, baseline.metrics, gates.metrics, paired, gates.block_only_beyond_noise
    )
    checks += behavior_checks(
        lambda rows: predict_proba(candidate, layout.column_feeds(rows)),
        frame,
        labels,
        schema,
        gates.behavior,
    )
    print("gate: measuring latency side by side ...", flush=True)
    profiles = measure_side_by_side(
        models,
        rounds=gates.latency.rounds,
        calls_per_round=gates.latency.calls_per_round,
        batch_sizes=gates.latency.batch_sizes,
    )
    checks += latency_checks(profiles["candidate"], profiles.get("baseline"), gates.latency)
    fp32_accuracy = _accuracy(candidate_probabilities, labels)
    int8_accuracy = _accuracy(predict_proba(int8, feeds), labels)
    checks.append(edge_check(fp32_accuracy, int8_accuracy, gates.edge))

    baseline_importance = None
    if "baseline" in models and baseline_layout is not None:
        # Same method, rows and seed as `evaluate`, so the report can show how ranks moved.
        baseline_model = models["baseline"][0]
        ranking = permutation_ranking(
            lambda rows: predict_proba(baseline_model, baseline_layout.column_feeds(rows)),
            test_rows.loc[:, list(baseline_layout.names)],
            labels,
            len(schema.labels),
            params.evaluate.importance,
        )
        baseline_importance = as_json(ranking, params.evaluate.importance)

    passed = all(check.passed for check in checks)
    schema_check = next(check for check in checks if check.name == "input_schema")
    report: dict[str, Any] = {
        "passed": passed,
        "breaking": schema_check.value == "breaking",
        "input_changes": input_changes(layout, baseline_layout) if baseline_layout else None,
        "baseline": baseline.describe()
        | {"onnx_sha256": baseline_sha256}
        | ({"measured": baseline_note} if baseline_note else {}),
        "candidate": {"onnx_sha256": info["sha256"], "metrics": metrics},
        "identical": baseline_sha256 == info["sha256"],
        "comparison": comparison,
        "curves": {"baseline": curves},
        "checks": [asdict(check) for check in ordered(checks)],
        "latency": {name: asdict(profile) for name, profile in profiles.items()},
        "edge": {
            "fp32_bytes": args.onnx.stat().st_size,
            "int8_bytes": args.int8.stat().st_size,
            "fp32_accuracy": fp32_accuracy,
            "int8_accuracy": int8_accuracy,
        },
        "importance": {"baseline": baseline_importance},
        "registered": None,
    }
    if passed and not args.no_register:
        from model.registry import register

        version = register(
            params.registry.model_name,
            params.registry.challenger_alias,
            args.onnx,
            info["sha256"],
            info["weights_sha256"],
            metrics,
            tags={
                "git_commit": git_commit(),
                "data_md5": info["data_md5"],
                "params_sha256": file_digest(Path("params.yaml")),
                "gate_result": "passed",
                "gate_baseline": baseline.source,
                "input_schema": str(schema_check.value),
                "breaking": str(report["breaking"]).lower(),
            },
        )
        report["registered"] = asdict(version) | {"alias": params.registry.challenger_alias}
    write_json_atomically(args.report, report)
    print(format_table(checks, baseline), file=sys.stdout if passed else sys.stderr)
    if report["registered"]:
        registered = report["registered"]
        action = "registered" if registered["created"] else "already registered as"
        print(
            f"gate: {action} {registered['name']} version {registered['version']}, "
            f"alias {registered['alias']}"
        )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
