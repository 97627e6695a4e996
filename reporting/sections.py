"""The report's sections on the model's quality: data validation, metrics against the base,
the confusion matrix, every gate check, feature importance and the params that changed."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import zip_longest
from typing import Any

from model.artifacts import Check, GateReport, Importance, PairedDelta
from reporting.gate_view import (
    TOP_FEATURES,
    baseline_importance,
    check_mark,
    failing_first,
    importance_table,
    metric_of,
    metric_position,
)
from reporting.inputs import Json, class_order
from reporting.markdown import (
    FAIL,
    NONE,
    PASS,
    collapsible,
    count,
    fixed,
    mark,
    markdown_table,
    percent,
    signed,
)


def _example(value: object, line: int | None) -> str:
    """An offending value and its CSV line; table-level rules may have only one of the two."""
    if value is None:
        return f"line {line}"
    return f"`{value}`" if line is None else f"`{value}` (line {line})"


def _violation_row(violation: Json) -> list[object]:
    examples = [
        _example(value, line)
        for value, line in zip_longest(
            violation.get("examples", []), violation.get("example_lines", [])
        )
    ]
    return [
        f"`{violation.get('rule')}`",
        f"`{violation['column']}`" if violation.get("column") else "(table)",
        count(violation.get("failing_rows")),
        violation.get("message", ""),
        ", ".join(examples) or NONE,
    ]


def validation_section(validation: Json | None) -> list[str]:
    lines = ["### Data validation", ""]
    if validation is None:
        return [*lines, "No validation report."]
    summary = (
        f"`{validation.get('data')}`: {count(validation.get('rows'))} rows, "
        f"{count(validation.get('columns'))} columns, md5 `{validation.get('md5')}`"
    )
    violations = validation.get("violations", [])
    if validation.get("passed"):
        return [*lines, f"{PASS} {summary}: no contract violations."]
    lines.append(f"{FAIL} {summary}: {len(violations)} rule(s) broken.")
    rows = [_violation_row(violation) for violation in violations]
    header = ["rule", "column", "failing rows", "message", "examples"]
    return [*lines, "", *markdown_table(header, rows)]


def _kind(check: Check, metric: str) -> str:
    """`roc_auc_vs_baseline` -> `vs baseline`: what the check bounds."""
    return check.name.removeprefix(f"{metric}_").replace("_", " ")


def noise_word(comparison: PairedDelta) -> str:
    """Plain words for a paired interval: does it exclude a zero change?"""
    return "**beyond noise**" if comparison.beyond_noise else "within noise"


def _metric_row(name: str, value: float, checks: Sequence[Check], gate: GateReport) -> list[object]:
    """One metric: candidate, baseline, delta (with its paired interval), and its checks."""
    marks = ", ".join(f"{mark(check.passed)} {_kind(check, name)}" for check in checks)
    if gate.same_model:
        return [f"`{name}`", fixed(value), marks or "not gated"]
    paired = gate.comparison.metrics if gate.comparison else {}
    baselines = [check.baseline for check in checks if check.baseline is not None]
    base = baselines[0] if baselines else None
    pair = paired.get(name)
    delta: float | None
    if pair is not None:  # both models on the same rows: the delta the interval is about
        base, delta = pair.baseline, pair.delta
        extra = [f"{pair.low:+.4f} to {pair.high:+.4f}", noise_word(pair)]
    else:
        delta = None if base is None else value - base
        extra = [NONE, NONE] if paired else []
    return [f"`{name}`", fixed(value), fixed(base), signed(delta), *extra, marks or "not gated"]


def metrics_section(gate: GateReport | None) -> list[str]:
    """Candidate against baseline; with the gate's paired bootstrap, every delta has its
    interval on the same test rows and a word for whether it is beyond noise."""
    lines = ["### Metrics against the base", ""]
    if gate is None:
        return [*lines, "No gate report."]
    metrics = gate.candidate.metrics
    by_metric: dict[str, list[Check]] = {}
    for check in gate.checks:
        if check.gate == "metric":
            by_metric.setdefault(metric_of(check.name), []).append(check)
    rows = [
        # the absolute bound first, then the one against the baseline, whatever failed
        _metric_row(name, metrics[name], sorted(by_metric.get(name, []), key=_vs_baseline), gate)
        for name in sorted(metrics, key=metric_position)
    ]
    if gate.same_model:
        note = "The candidate is the baseline itself (same ONNX sha256): not compared."
        return [*lines, note, "", *markdown_table(["metric", "candidate", "checks"], rows)]
    header = ["metric", "candidate", "baseline", "delta"]
    comparison = gate.comparison
    if comparison is not None and comparison.metrics:
        header += [f"{comparison.confidence:.0%} paired interval", "noise"]
        lines += [
            f"Baseline and delta: both models on the same {count(comparison.rows)} test "
            f"rows; intervals from {count(comparison.resamples)} paired bootstrap "
            "resamples (both models scored on each resample).",
            "",
        ]
    return [*lines, *markdown_table([*header, "checks"], rows)]


def _vs_baseline(check: Check) -> bool:
    return check.name.endswith("_vs_baseline")


def confusion_section(confusion: Sequence[tuple[str, str]], labels: Sequence[str]) -> list[str]:
    """N x N counts on the test split, with each class's recall (row) and precision (column)."""
    if not confusion:
        return []
    counts = Counter(confusion)
    classes = class_order(labels, {name for pair in confusion for name in pair})

    def cell(actual: str, predicted: str) -> str:
        value = f"{counts[(actual, predicted)]:,}"
        return f"**{value}**" if actual == predicted else value  # the diagonal is what is right

    def share(right: int, total: int) -> str:
        return percent(right / total, 1) if total else NONE

    rows = []
    for actual in classes:
        total = sum(counts[(actual, predicted)] for predicted in classes)
        recall = share(counts[(actual, actual)], total)
        rows.append([f"`{actual}`", *(cell(actual, p) for p in classes), f"{total:,}", recall])
    precision = [share(counts[(p, p)], sum(counts[(a, p)] for a in classes)) for p in classes]
    rows.append(["precision", *precision, "", ""])
    header = ["actual ↓ predicted →", *(f"`{name}`" for name in classes), "rows", "recall"]
    intro = (
        f"Test split, {len(confusion):,} rows, {len(classes)} classes: a row per actual class, "
        "a column per predicted one."
    )
    return ["### Confusion matrix", "", intro, "", *markdown_table(header, rows)]


def checks_section(gate: GateReport | None) -> list[str]:
    """Collapsed when all pass, open when something fails: the failure is what to read."""
    if gate is None:
        return []
    checks = failing_first(gate.checks)
    failed = sum(1 for check in checks if not check.passed)
    summary = f"All gate checks: {len(checks)}, {failed} failing"
    rows = [[check_mark(check), check.gate, f"`{check.name}`", check.why] for check in checks]
    return collapsible(summary, [markdown_table(["", "gate", "check", "why"], rows)], bool(failed))


def importance_section(importance: Importance | None, gate: GateReport | None) -> list[str]:
    """The top features, and how far each moved in rank against the baseline model."""
    if importance is None:
        return []
    features = importance.features
    baseline = baseline_importance(gate)
    lines = ["### Top features", ""]
    shown = f"top {TOP_FEATURES} of {len(features)}" if len(features) > TOP_FEATURES else "all"
    lines.append(
        f"Permutation importance of the ONNX model on the test split, {shown} features."
        + ("" if baseline else " No baseline model to compare ranks with.")
    )
    if baseline:
        top = {row.feature for row in features[:TOP_FEATURES]}
        dropped = [row.feature for row in baseline[:TOP_FEATURES] if row.feature not in top]
        if dropped:
            lines.append("Left the top: " + ", ".join(f"`{name}`" for name in dropped) + ".")
    return [*lines, "", *importance_table(importance, gate)]


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested params as dotted keys: `{"train": {"epochs": 3}}` -> `{"train.epochs": 3}`."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def params_diff(base: Mapping[str, Any], current: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(dotted key, change) for every key added, removed or changed, sorted by key."""
    before, after = flatten(base), flatten(current)
    changes = []
    for key in sorted(before.keys() | after.keys()):
        if key not in before:
            changes.append((key, "added"))
        elif key not in after:
            changes.append((key, "removed"))
        elif before[key] != after[key]:
            changes.append((key, "changed"))
    return changes


def _param(tree: Mapping[str, Any], key: str) -> str:
    flat = flatten(tree)
    if key not in flat:
        return NONE
    value = flat[key]
    return f"`{value if isinstance(value, str) else json.dumps(value)}`"


def params_section(params: Json | None, base: Json | None) -> list[str]:
    lines = ["### Params", ""]
    if params is None:
        return [*lines, "No params file."]
    if base is None:
        return [*lines, "No base params to compare."]
    changes = params_diff(base, params)
    if not changes:
        return [*lines, "No params changed."]
    rows = [[f"`{key}`", change, _param(base, key), _param(params, key)] for key, change in changes]
    return [*lines, *markdown_table(["key", "change", "base", "this PR"], rows)]
