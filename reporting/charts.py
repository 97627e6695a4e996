"""The report's Charts section: ROC and precision-recall per class, baseline beside candidate,
and the in-process p99 latency of each model."""

from __future__ import annotations

from collections.abc import Sequence

from model.artifacts import GateReport
from reporting.inputs import ReportInputs, class_order
from reporting.markdown import collapsible
from reporting.mermaid import (
    COLOUR_NAMES,
    Curve,
    area_under_roc,
    average_precision,
    bar_chart,
    line_chart,
    precision_at,
    resample,
    roc_at,
)

OPEN_CLASS_CHARTS = 4  # with more classes than this, the per-class curves start collapsed
MODELS = ("candidate", "baseline", "int8")  # the gate's latency profiles, in chart order


def _whose(name: str, one_vs_rest: bool) -> str:
    """What a curve is drawn for, for its title."""
    if not name:
        return ""
    return f", {name} against the rest" if one_vs_rest else f", positive class {name}"


def curve_classes(inputs: ReportInputs) -> list[str]:
    """The classes with a curve (binary: the positive one), in the contract's order."""
    drawn = {*inputs.roc, *inputs.precision_recall}
    return [name for name in class_order(inputs.labels, drawn) if name in drawn]


def baseline_curves(gate: GateReport | None, kind: str) -> dict[str, Curve]:
    """The baseline model's curves on the same test rows, as the gate measured them."""
    measured = gate.curves.baseline if gate is not None else None
    if measured is None:
        return {}
    return dict(measured.roc if kind == "roc" else measured.precision_recall)


def _curve_chart(kind: str, whose: str, candidate: Curve, baseline: Curve | None) -> list[str]:
    """One ROC or precision-recall chart: candidate, baseline if any, and the chance line."""
    is_roc = kind == "roc"
    best = roc_at if is_roc else precision_at
    score, name = (area_under_roc, "AUC") if is_roc else (average_precision, "AP")
    points = resample(candidate, best)
    series, roles = [points], [0]
    legend = [f"{COLOUR_NAMES[0]}: candidate, {name} {score(candidate):.3f}"]
    title = f"{'ROC' if is_roc else 'Precision-recall'}{whose}: {name} {score(candidate):.3f}"
    if baseline:
        series.append([(x, best(baseline, x)) for x, _ in points])
        roles.append(1)
        legend.append(f"{COLOUR_NAMES[1]}: baseline, {name} {score(baseline):.3f}")
        title += f" vs {score(baseline):.3f}"
    if is_roc:
        series.append([(x, x) for x, _ in points])
        roles.append(2)
        legend.append(f"{COLOUR_NAMES[2]}: chance")
    axes = ("false positive rate", "true positive rate") if is_roc else ("recall", "precision")
    # Mermaid's xychart has no legend and clips a long title: the colours are named in text
    return ["Lines: " + "; ".join(legend) + ".", *line_chart(title, *axes, series, roles)]


def curve_charts(
    inputs: ReportInputs, classes: Sequence[str], one_vs_rest: bool
) -> list[list[str]]:
    """A ROC and a precision-recall chart per class, the baseline model's curve beside the
    candidate's. With several classes, one chart per class: a Mermaid xychart has no legend, so
    the title names each line by its colour."""
    charts = []
    base_roc = baseline_curves(inputs.gate, "roc")
    base_pr = baseline_curves(inputs.gate, "precision_recall")
    for name in classes:
        whose = _whose(name, one_vs_rest)
        if name in inputs.roc:
            charts.append(_curve_chart("roc", whose, inputs.roc[name], base_roc.get(name)))
        if name in inputs.precision_recall:
            pr = inputs.precision_recall[name]
            charts.append(_curve_chart("precision_recall", whose, pr, base_pr.get(name)))
    return charts


def latency_charts(gate: GateReport | None) -> list[list[str]]:
    """A bar per model the gate timed: single-row p99, in-process."""
    latency = gate.latency if gate is not None else {}
    bars = [(name, latency[name].p99_ms) for name in MODELS if name in latency]
    title = "Single-row p99 latency, in-process model (ms)"
    return [bar_chart(title, "p99 (ms)", bars)] if bars else []


def charts_section(inputs: ReportInputs) -> list[str]:
    classes = curve_classes(inputs)
    one_vs_rest = len(inputs.labels) > 2 if inputs.labels else len(classes) > 1
    curves = curve_charts(inputs, classes, one_vs_rest)
    latency = latency_charts(inputs.gate)
    if not curves and not latency:
        return []
    lines = ["### Charts"]
    if one_vs_rest and curves:
        summary = f"ROC and precision-recall, each of {len(classes)} classes against the rest"
        lines += ["", *collapsible(summary, curves, len(classes) <= OPEN_CLASS_CHARTS)]
        curves = []
    for chart in [*curves, *latency]:
        lines += ["", *chart]
    return lines
