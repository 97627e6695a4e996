"""The drift report: its typed shape (drift.json), and how it reads as Markdown (with a
per-feature chart) and as terminal lines. It names what was judged: the model version, the
window of production rows, and the traffic left out.

Features are named as the data names them, whatever characters that takes: quoted in text,
escaped in Markdown tables and in the chart's labels, so a name can never break the layout.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

CHART_FEATURES = 12
NONE = "n/a"  # a measure with nothing to compare
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")  # what could end a cell or format it


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's verdict: which checks fired (`fired`) and why, with the numbers behind it.
    Thresholds and p-values are calibrated and family-wise (monitoring/calibration.py)."""

    feature: str
    kind: Literal["numeric", "categorical", "boolean"]
    drifted: bool
    fired: list[str]  # of "ks", "chi_square", "missing_rate"
    why: str
    test: str  # the distribution check: "ks" or "chi_square" (both distances of shares)
    statistic: float
    threshold: float  # the statistic above which the feature drifted
    pvalue: float
    psi: float | None  # for the reader; None when either side has no non-null value
    reference_missing: float  # share of nulls
    current_missing: float
    missing_threshold: float  # the change in the share of nulls above which it drifted
    missing_pvalue: float
    unseen: int  # live values outside the training categories
    unseen_share: float  # of the live non-null values
    unseen_examples: list[str]
    reference_mean: float | None = None  # numeric only
    current_mean: float | None = None
    reference_shares: dict[str, float] = field(default_factory=dict)  # categorical and boolean
    current_shares: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PredictionDrift:
    """The model's output on live rows against its output on the training rows."""

    measure: Literal["positive_probability", "predicted_labels", "none"]
    drifted: bool
    why: str
    statistic: float | None = None  # KS distance (positive probability), chi-square distance
    threshold: float | None = None
    pvalue: float | None = None
    psi: float | None = None  # for the reader
    reference_shares: dict[str, float] = field(default_factory=dict)  # predicted_labels only
    current_shares: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ConceptDrift:
    """Accuracy on live rows whose true label came back, against the evaluation accuracy."""

    judged: bool
    rows: int
    why: str
    drifted: bool = False
    accuracy: float | None = None
    evaluation_accuracy: float | None = None
    pvalue: float | None = None  # one-sided binomial test against evaluation minus the drop


@dataclass(frozen=True)
class WindowSummary:
    """Which traffic was judged: one model version's production rows, and what was left out."""

    version: str | None  # the model version judged (None: records without one)
    rows: int
    first_ts: float | None  # unix seconds of the oldest and newest judged record
    last_ts: float | None
    other_sources: dict[str, int] = field(default_factory=dict)  # prediction records left out
    other_versions: dict[str, int] = field(default_factory=dict)  # production, other versions


@dataclass(frozen=True)
class DriftReport:
    """The verdict `make drift` writes to drift.json: retrain or not, and every reason."""

    retrain: bool
    rows: int
    reference_rows: int
    summary: str
    drifted_features: list[str]
    features: list[FeatureDrift]
    prediction: PredictionDrift
    concept: ConceptDrift
    window: WindowSummary
    false_alarm_rate: float  # chance a clean window says "retraining due", all checks together
    data_false_alarm_rate: float  # the part the feature and prediction checks share (max-T)
    effective_rows: int  # the window size the thresholds were calibrated at (repeats count once)


def as_json(report: DriftReport) -> dict[str, Any]:
    """The report as plain JSON values (no NaN or infinity, which strict readers refuse)."""
    return _finite(asdict(report))  # type: ignore[no-any-return]


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def quoted(name: str) -> str:
    """A name in double quotes, unambiguous in a list even with commas or spaces: "a, b"."""
    return json.dumps(name, ensure_ascii=False)


def _cell(text: str) -> str:
    """Text that stays inside its Markdown table cell, shown as written."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _chart_label(name: str) -> str:
    return " ".join(name.replace('"', "'").split())


def _number(value: float | None, spec: str) -> str:
    return NONE if value is None else format(value, spec)


def _moved(item: FeatureDrift) -> str:
    """The change in the feature's own terms: its mean, or the category whose share moved most."""
    if item.kind == "numeric":
        if item.reference_mean is None or item.current_mean is None:
            return NONE
        return f"mean {item.reference_mean:.4g} → {item.current_mean:.4g}"
    if not item.reference_shares or not item.current_shares:
        return NONE
    old, new = item.reference_shares, item.current_shares
    moved = max(old, key=lambda category: abs(new[category] - old[category]))
    text = f"{quoted(moved)} {old[moved]:.1%} → {new[moved]:.1%}"
    if item.unseen:
        text += f"; unseen {item.unseen_share:.1%}"
    return text


def _ratio(item: FeatureDrift) -> float:
    """The distribution statistic as a share of its threshold: 1 and above is drift."""
    return item.statistic / item.threshold if item.threshold > 0 else 0.0


def _order(item: FeatureDrift) -> tuple[bool, float]:
    return (not item.drifted, -_ratio(item))


def _time(ts: float | None) -> str:
    if ts is None:
        return NONE
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def window_line(window: WindowSummary) -> str:
    """Which traffic was judged, and what was left out."""
    version = "unversioned" if window.version is None else quoted(window.version)
    span = (
        f"{_time(window.first_ts)} to {_time(window.last_ts)}"
        if window.first_ts is not None
        else "no timestamps"
    )
    text = f"model version {version}: {window.rows} production rows, {span}"
    left_out = [f"{count} {source}" for source, count in sorted(window.other_sources.items())]
    left_out += [
        f"{count} of version {quoted(other)}"
        for other, count in sorted(window.other_versions.items())
    ]
    return text + ("; left out: " + ", ".join(left_out) if left_out else "; nothing left out")


def markdown(report: DriftReport) -> str:
    verdict = "retraining due" if report.retrain else "no retraining needed"
    lines = [
        f"# Drift report: {verdict}",
        "",
        f"Judged {_cell(window_line(report.window))}.",
        "",
        f"{report.rows} logged rows against {report.reference_rows} training rows. "
        + _cell(report.summary),
    ]
    if report.features:
        lines += [
            "",
            f"Thresholds are calibrated on the training rows at this window's effective size "
            f"({report.effective_rows} rows; rows repeated verbatim count once): traffic like "
            f"the training data alarms on any feature or on the prediction with probability "
            f"{report.data_false_alarm_rate:g} (p-values are family-wise). PSI is shown for "
            "reading only.",
            "",
            "| feature | kind | test | statistic | threshold | p | PSI "
            "| nulls (train → live) | what moved | verdict |",
            "|---|---|---|---:|---:|---:|---:|---|---|---|",
        ]
        for item in sorted(report.features, key=_order):
            verdict_cell = "❌ " + _cell(", ".join(item.fired)) if item.drifted else "✅"
            lines.append(
                f"| {_cell(item.feature)} | {item.kind} | {item.test.replace('_', '-')} | "
                f"{item.statistic:.3g} | {item.threshold:.3g} | {item.pvalue:.2g} | "
                f"{_number(item.psi, '.3f')} | "
                f"{item.reference_missing:.1%} → {item.current_missing:.1%} | "
                f"{_cell(_moved(item))} | {verdict_cell} |"
            )
        drifted = [item for item in report.features if item.drifted]
        if drifted:
            lines += ["", "## Why", ""]
            lines += [f"- {_cell(quoted(item.feature))}: {_cell(item.why)}" for item in drifted]
        top = sorted(report.features, key=lambda item: -_ratio(item))[:CHART_FEATURES]
        lines += [
            "",
            "```mermaid",
            "xychart-beta",
            f'    title "Distribution statistic / its threshold (top {CHART_FEATURES}; 1 = drift)"',
            "    x-axis [" + ", ".join(f'"{_chart_label(item.feature)}"' for item in top) + "]",
            '    y-axis "statistic / threshold"',
            "    bar [" + ", ".join(f"{_ratio(item):.3f}" for item in top) + "]",
            "```",
        ]
    prediction = report.prediction
    lines += [
        "",
        f"Prediction drift: {'drifted' if prediction.drifted else 'stable'}, "
        + _cell(prediction.why)
        + ".",
        f"Concept drift: {_cell(report.concept.why)}.",
    ]
    return "\n".join(lines) + "\n"


def terminal_lines(report: DriftReport) -> list[str]:
    """What `make drift` prints: what was judged, the verdict, and each drifted feature."""
    lines = [
        f"judged {window_line(report.window)}",
        f"{report.rows} logged rows against {report.reference_rows} training rows",
    ]
    stable = sum(not item.drifted for item in report.features)
    for item in report.features:
        if item.drifted:
            lines.append(f"feature {quoted(item.feature)} ({item.kind}) drifted: {item.why}")
    if report.features:
        lines.append(
            f"{stable} of {len(report.features)} features stable "
            f"(family-wise false-alarm rate {report.data_false_alarm_rate:g})"
        )
    else:
        lines.append(report.summary)
    state = "drifted" if report.prediction.drifted else "stable"
    lines.append(f"prediction {state}: {report.prediction.why}")
    state = "drifted" if report.concept.drifted else "stable"
    lines.append(f"concept {state}: {report.concept.why}")
    lines.append("RETRAINING DUE" if report.retrain else "no retraining needed")
    return lines
