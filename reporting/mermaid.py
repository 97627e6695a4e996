"""Mermaid xychart blocks, and the curve arithmetic behind them: resampling, AUC, AP.

GitHub renders a ```mermaid block in a comment; its xychart has no legend and a categorical
x axis, so curves are resampled on evenly spaced x values and the colours are named in text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from itertools import pairwise

from reporting.markdown import sig

Curve = tuple[tuple[float, float], ...]
CHART_POINTS = 21  # a curve is resampled on this many evenly spaced x values

# Series colours, in plot order (candidate, baseline, chance): clear on GitHub's light (#ffffff)
# and dark (#0d1117) backgrounds alike; Mermaid's default draws a lone series in pale #ECECFF.
PALETTE = ("#2f81f7", "#f0883e", "#8b949e")
COLOUR_NAMES = ("blue", "orange", "grey")


def resample(curve: Curve, best: Callable[[Curve, float], float]) -> list[tuple[float, float]]:
    """The curve at CHART_POINTS evenly spaced x values from its first x to its last.

    Evenly spaced points keep a categorical Mermaid x-axis proportional and its labels unique.
    """
    low, high = min(x for x, _ in curve), max(x for x, _ in curve)
    step = (high - low) / (CHART_POINTS - 1)
    return [(low + step * i, best(curve, low + step * i)) for i in range(CHART_POINTS)]


def roc_at(curve: Curve, fpr: float) -> float:
    """Best true positive rate reachable without exceeding `fpr`."""
    return max((tpr for x, tpr in curve if x <= fpr + 1e-9), default=0.0)


def precision_at(curve: Curve, recall: float) -> float:
    """Interpolated precision: the best precision at this recall or more."""
    return max((precision for x, precision in curve if x >= recall - 1e-9), default=0.0)


def area_under_roc(curve: Curve) -> float:
    """Trapezoids under the ROC points, sorted by false positive rate."""
    points = sorted(curve)
    return sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in pairwise(points))


def average_precision(curve: Curve) -> float:
    """Sum of precision times each recall step (scikit-learn's definition, no interpolation)."""
    points = sorted(curve, key=lambda point: (point[0], -point[1]))
    total, previous = 0.0, 0.0
    for recall, precision in points:
        total += (recall - previous) * precision
        previous = recall
    return total


def chart_text(text: str) -> str:
    """A Mermaid string is double-quoted and on one line."""
    return " ".join(text.replace('"', "'").split())


def _init(roles: Sequence[int]) -> str:
    """The palette for these series, by role (0 candidate, 1 baseline, 2 chance)."""
    colours = ", ".join(PALETTE[role] for role in roles)
    variables = {"xyChart": {"plotColorPalette": colours}}
    return "%%{init: " + json.dumps({"themeVariables": variables}) + "}%%"


def _axis(low: float, high: float) -> str:
    return f"{sig(low)} --> {sig(high)}"


def line_chart(
    title: str,
    x_title: str,
    y_title: str,
    series: Sequence[Sequence[tuple[float, float]]],
    roles: Sequence[int],
) -> list[str]:
    """Lines on a numeric x axis: every series shares the evenly spaced x of the first."""
    xs = [x for x, _ in series[0]]
    lines = [f"    line [{', '.join(f'{y:.3f}' for _, y in points)}]" for points in series]
    return [
        "```mermaid",
        _init(roles),
        "xychart-beta",
        f'    title "{chart_text(title)}"',
        f'    x-axis "{x_title}" {_axis(xs[0], xs[-1])}',
        f'    y-axis "{y_title}" 0 --> 1',
        *lines,
        "```",
    ]


def bar_chart(title: str, y_title: str, bars: Sequence[tuple[str, float]]) -> list[str]:
    labels = ", ".join(f'"{name}"' for name, _ in bars)
    values = ", ".join(sig(value) for _, value in bars)
    top = sig(max(value for _, value in bars) * 1.2)  # from zero, so bar heights compare
    return [
        "```mermaid",
        _init([0]),
        "xychart-beta",
        f'    title "{chart_text(title)}"',
        f"    x-axis [{labels}]",
        f'    y-axis "{y_title}" 0 --> {top}',
        f"    bar [{values}]",
        "```",
    ]
