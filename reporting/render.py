"""The pull-request report: one Markdown page from the gate, validation, load-test, rollout files.

`render` is pure and deterministic (no timestamps), so its output is golden-tested;
reporting/inputs.py does the reading. Nothing here knows a dataset: classes come from the plot
files and the data contract, features from the reports. The sections live beside it: headline.py
(the verdict), sections.py (the model's quality), charts.py (Mermaid), operations.py (latency,
load test, rollout).
"""

from __future__ import annotations

from reporting.charts import charts_section
from reporting.github import MARKER  # the first line: how the sticky comment is found
from reporting.headline import headline
from reporting.inputs import ReportInputs, load_inputs
from reporting.operations import (
    edge_section,
    latency_section,
    links_section,
    load_test_section,
    rollout_section,
)
from reporting.sections import (
    checks_section,
    confusion_section,
    importance_section,
    metrics_section,
    params_section,
    validation_section,
)

__all__ = ["MARKER", "ReportInputs", "load_inputs", "render"]


def render(inputs: ReportInputs) -> str:
    """The whole report as GitHub-flavoured Markdown; the marker is its first line."""
    sections = [
        [MARKER],
        headline(inputs),
        validation_section(inputs.validation),
        metrics_section(inputs.gate),
        confusion_section(inputs.confusion, inputs.labels),
        checks_section(inputs.gate),
        importance_section(inputs.importance, inputs.gate),
        params_section(inputs.params, inputs.base_params),
        latency_section(inputs.gate),
        edge_section(inputs.gate),
        load_test_section(inputs.load_test),
        charts_section(inputs),
        rollout_section(inputs.rollout),
        links_section(inputs.run_url),
    ]
    return "\n\n".join("\n".join(section) for section in sections if section) + "\n"
