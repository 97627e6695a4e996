"""The gate's checks: pure functions from measurements and params.yaml thresholds to verdicts.

Each returns `Check`s (model/artifacts.py, the shape gate.json stores), each with the value,
the threshold, the baseline when there is one, and why it passed or failed. No I/O: the `gate`
stage (model/gate.py) measures, these judge, and tests call them directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd

from model.artifacts import Check, InputChanges
from model.baseline import Baseline
from model.behavior import Predict, directional_shares, invariance_flip_rate, per_class_recall
from model.contract import Contract
from model.features import FeatureSchema
from model.inference import layout_of
from model.inputs import OUTPUT_NAME, InputLayout
from model.latency import LatencyProfile
from model.params import BehaviorGate, EdgeGate, LatencyGate, MetricGate

Paired = Mapping[str, Any]  # one metric of the paired bootstrap: low, high, beyond_noise
NOT_BLOCKING = "; not blocking: the interval reaches an allowed change"


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _noise(pair: Paired | None) -> str:
    if pair is None:
        return ""
    word = "beyond noise" if pair["beyond_noise"] else "within noise"
    return f" (paired 95% interval {pair['low']:+.4g} to {pair['high']:+.4g}: {word})"


def _absolute(name: str, value: float, gate: MetricGate, base: float | None) -> list[Check]:
    """The floor of a score or the ceiling of a loss, whatever the baseline."""
    bound = gate.min if gate.higher_is_better else gate.max
    if bound is None:
        return []
    ok = value >= bound if gate.higher_is_better else value <= bound
    if gate.higher_is_better:
        kind, why = "floor", f"{_fmt(value)} {'>=' if ok else '<'} floor {_fmt(bound)}"
    else:
        kind, why = "ceiling", f"{_fmt(value)} {'<=' if ok else '>'} ceiling {_fmt(bound)}"
    return [
        Check(
            gate="metric",
            name=f"{name}_{kind}",
            passed=ok,
            value=value,
            threshold=bound,
            why=why,
            baseline=base,
        )
    ]


def _relative(
    name: str,
    value: float,
    gate: MetricGate,
    base: float | None,
    pair: Paired | None,
    block_only_beyond_noise: bool,
) -> list[Check]:
    """The change against the baseline; forgiven, if asked, while its interval allows it."""
    allowed = gate.max_drop if gate.higher_is_better else gate.max_rise
    if allowed is None or base is None:
        return []
    limit = base - allowed if gate.higher_is_better else base + allowed
    ok = value >= limit if gate.higher_is_better else value <= limit
    why = f"{_fmt(value)} vs baseline {_fmt(base)}: change {value - base:+.4g}"
    why += f"{_noise(pair)}, allowed {'drop' if gate.higher_is_better else 'rise'} {_fmt(allowed)}"
    if not ok and block_only_beyond_noise and pair:
        reaches = pair["high"] >= -allowed if gate.higher_is_better else pair["low"] <= allowed
        ok, why = (True, why + NOT_BLOCKING) if reaches else (ok, why)
    return [
        Check(
            gate="metric",
            name=f"{name}_vs_baseline",
            passed=ok,
            value=value,
            threshold=limit,
            why=why,
            baseline=base,
        )
    ]


def metric_checks(
    candidate: Mapping[str, float],
    baseline: Mapping[str, float] | None,
    gates: Mapping[str, MetricGate],
    paired: Mapping[str, Paired] | None = None,
    block_only_beyond_noise: bool = False,
) -> list[Check]:
    """An absolute bound per metric, and a bound on the change against the baseline.

    With `paired` (the paired bootstrap of candidate minus baseline on the same rows) each change
    says whether it is beyond noise; with `block_only_beyond_noise`, a change past its limit
    blocks only when the whole interval is past it."""
    checks = []
    for name, gate in gates.items():
        if name not in candidate:
            why = "metric missing from metrics"
            checks.append(
                Check(gate="metric", name=name, passed=False, value=None, threshold=None, why=why)
            )
            continue
        value = candidate[name]
        base = None if baseline is None else baseline.get(name)
        pair = (paired or {}).get(name)
        checks += _absolute(name, value, gate, base)
        checks += _relative(name, value, gate, base, pair, block_only_beyond_noise)
    return checks


def _directional_checks(
    predict: Predict, features: pd.DataFrame, schema: FeatureSchema, params: BehaviorGate
) -> list[Check]:
    """Raising a feature moves the predicted probability the way params.yaml expects."""
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
    return [
        Check(
            gate="behavior",
            name=f"directional_{name}",
            passed=share >= params.min_directional_share,
            value=share,
            threshold=params.min_directional_share,
            why=f"raising {name} by {params.directional_step_std:g} std "
            f"{expectations[name].effect} P({schema.labels[targets[name]]}) for {share:.1%} of "
            f"rows (need {params.min_directional_share:.0%})",
        )
        for name, share in shares.items()
    ]


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
            gate="behavior",
            name="invariance",
            passed=flip_rate <= limit,
            value=flip_rate,
            threshold=limit,
            why=f"{flip_rate:.2%} of predictions flip when one numeric feature moves by "
            f"{params.invariance_relative_step:.2%} (limit {limit:.2%})",
        )
    ]
    checks += _directional_checks(predict, features, schema, params)
    recalls = per_class_recall(labels, predict(features))
    for label, recall in zip(schema.labels, recalls, strict=True):
        ok = recall >= params.min_recall
        why = f"recall of {label} {recall:.3f} {'>=' if ok else '<'} {params.min_recall}"
        checks.append(
            Check(
                gate="behavior",
                name=f"recall_{label}",
                passed=ok,
                value=recall,
                threshold=params.min_recall,
                why=why,
            )
        )
    return checks


def latency_checks(
    candidate: LatencyProfile, baseline: LatencyProfile | None, params: LatencyGate
) -> list[Check]:
    """An absolute single-row p99 budget, and the p99 ratio to a baseline measured alongside."""
    checks = [
        Check(
            gate="latency",
            name="p99_budget",
            passed=candidate.p99_ms <= params.p99_budget_ms,
            value=candidate.p99_ms,
            threshold=params.p99_budget_ms,
            why=f"single-row p99 {candidate.p99_ms:.4f} ms, budget {params.p99_budget_ms} ms",
        )
    ]
    if baseline is not None:
        ratio = candidate.p99_ms / baseline.p99_ms
        checks.append(
            Check(
                gate="latency",
                name="p99_ratio",
                passed=ratio <= params.max_p99_ratio,
                value=ratio,
                threshold=params.max_p99_ratio,
                why=f"candidate p99 {candidate.p99_ms:.4f} ms / baseline {baseline.p99_ms:.4f} "
                f"ms = {ratio:.2f}x (limit {params.max_p99_ratio}x), measured side by side",
                baseline=baseline.p99_ms,
            )
        )
    return checks


Expectation = tuple[str, object, object]  # (what, the model's, the contract's)


def _tensor_expectations(session: ort.InferenceSession, contract: Contract) -> list[Expectation]:
    """Each input tensor's dtype, width and batch axis; absent when no feature needs it."""
    graph_inputs = {item.name: item for item in session.get_inputs()}
    expectations: list[Expectation] = []
    for tensor, dtype, categorical in (
        ("numeric", "tensor(float)", False),
        ("categorical", "tensor(string)", True),
    ):
        names = [f.name for f in contract.features if (f.kind == "categorical") == categorical]
        graph_input = graph_inputs.get(tensor)
        if not names:  # no feature of this kind: the graph must not ask for the tensor
            present = "present" if graph_input is not None else "absent"
            expectations.append((f"{tensor}_input", present, "absent"))
            continue
        shape = graph_input.shape if graph_input is not None else [None, None]
        batch = "dynamic" if isinstance(shape[0], str) else "fixed"
        expectations += [
            (f"{tensor}_dtype", graph_input.type if graph_input else None, dtype),
            (f"{tensor}_width", shape[1], len(names)),
            (f"{tensor}_batch_axis", batch, "dynamic"),
        ]
    return expectations


def interface_checks(
    session: ort.InferenceSession, info: Mapping[str, Any], contract: Contract
) -> list[Check]:
    """The ONNX graph's inputs and outputs, and model.json, agree with the data contract."""
    layout = layout_of(session)
    [model_output] = session.get_outputs()
    expectations: list[Expectation] = [
        ("inputs_described", "yes" if layout is not None else "no", "yes"),
        ("feature_order", list(info["feature_names"]), list(contract.feature_names)),
        ("feature_kinds", [i["kind"] for i in info["inputs"]], [f.kind for f in contract.features]),
        ("labels", list(info["labels"]), list(contract.label.values)),
        ("output_name", model_output.name, OUTPUT_NAME),
        ("output_width", model_output.shape[1], len(contract.label.values)),
        *_tensor_expectations(session, contract),
    ]
    checks = []
    for name, actual, expected in expectations:
        ok = actual == expected
        shown = f"{actual!r}" if not isinstance(actual, list) else f"{len(actual)} entries"
        why = (
            f"{name} {shown} matches the contract"
            if ok
            else f"{name}: model has {actual!r}, the contract expects {expected!r}"
        )
        checks.append(
            Check(
                gate="parity",
                name=name,
                passed=ok,
                value=str(actual)[:200],
                threshold=str(expected)[:200],
                why=why,
            )
        )
    return checks


def input_changes(candidate: InputLayout, baseline: InputLayout) -> InputChanges:
    """Features added, removed and retyped (kind or category set) against the baseline, and those
    that newly refuse null."""
    before = {item.name: item for item in baseline.inputs}
    after = {item.name: item for item in candidate.inputs}
    shared = [name for name in after if name in before]
    return InputChanges(
        added=tuple(name for name in after if name not in before),
        removed=tuple(name for name in before if name not in after),
        retyped=tuple(
            name
            for name in shared
            if (after[name].kind, after[name].categories)
            != (before[name].kind, before[name].categories)
        ),
        now_required=tuple(
            name for name in shared if before[name].nullable and not after[name].nullable
        ),
        added_required=tuple(
            name for name in after if name not in before and not after[name].nullable
        ),
    )


def input_schema_check(candidate: InputLayout, baseline: InputLayout | None) -> Check:
    """Features added, removed or retyped against the baseline: a fact to report, not a failure.
    `value` is "breaking" when clients of the baseline would be refused by the candidate."""
    if baseline is None:
        why = "no baseline inputs"
        return Check(
            gate="interface",
            name="input_schema",
            passed=True,
            value="unknown",
            threshold=None,
            why=why,
        )
    changes = input_changes(candidate, baseline)
    listed = [
        f"{label}: {', '.join(getattr(changes, label))}"
        for label in ("added", "removed", "retyped")
        if getattr(changes, label)
    ]
    if changes.now_required:
        listed.append(f"null no longer allowed: {', '.join(changes.now_required)}")
    why = "; ".join(listed) or "same inputs as the baseline"
    why += " (BREAKING: clients of the baseline would be refused)" if changes.breaking else ""
    value = "breaking" if changes.breaking else ("changed" if listed else "same")
    return Check(
        gate="interface", name="input_schema", passed=True, value=value, threshold=None, why=why
    )


def parity_check(max_diff: float, tolerance: float, rows: int) -> Check:
    ok = max_diff <= tolerance
    why = f"max |onnx - torch| {max_diff:.3g} over {rows} test rows (tolerance {tolerance:g})"
    return Check(
        gate="parity",
        name="onnx_matches_torch",
        passed=ok,
        value=max_diff,
        threshold=tolerance,
        why=why,
    )


def edge_check(fp32_accuracy: float, int8_accuracy: float, params: EdgeGate) -> Check:
    drop = fp32_accuracy - int8_accuracy
    why = (
        f"int8 accuracy {int8_accuracy:.4f} vs fp32 {fp32_accuracy:.4f}: drop {drop:+.4f} "
        f"(limit {params.max_accuracy_drop})"
    )
    return Check(
        gate="edge",
        name="int8_accuracy_drop",
        passed=drop <= params.max_accuracy_drop,
        value=drop,
        threshold=params.max_accuracy_drop,
        why=why,
    )


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
