"""The pull-request report renders the same Markdown for the same inputs.

Golden files: each case under tests/fixtures/report/<case>/ holds report files shaped like the real
ones (reports/gate.json, validation.json, ..., params.yaml, optional base_params.yaml) and the
expected Markdown in expected.md. After an intended change to the report, regenerate the goldens
and review the diff:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_report_render.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from reporting.cli import main
from reporting.render import (
    MARKER,
    ReportInputs,
    load_inputs,
    params_diff,
    precision_at,
    render,
    resample,
    roc_at,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "report"
RUN_URLS = {
    "passing": "https://github.com/owner/repo/actions/runs/1234",
    "failing": None,
    "first_run": None,
}
MERMAID_BLOCK = re.compile(r"^```mermaid\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def _inputs(case: str) -> ReportInputs:
    base = FIXTURES / case / "base_params.yaml"
    return load_inputs(FIXTURES / case / "reports", base if base.exists() else None, RUN_URLS[case])


@pytest.mark.parametrize("case", sorted(RUN_URLS))
def test_report_matches_its_golden_file(case: str) -> None:
    golden = FIXTURES / case / "expected.md"
    markdown = render(_inputs(case))
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(markdown)
    assert markdown == golden.read_text()


@pytest.mark.parametrize("case", sorted(RUN_URLS))
def test_marker_is_the_first_line(case: str) -> None:
    assert render(_inputs(case)).splitlines()[0] == MARKER


@pytest.mark.parametrize("case", sorted(RUN_URLS))
def test_every_mermaid_block_is_a_closed_xychart(case: str) -> None:
    markdown = render(_inputs(case))
    blocks = MERMAID_BLOCK.findall(markdown)
    assert len(blocks) == 3
    assert markdown.count("```") == 2 * len(blocks)
    for block in blocks:
        lines = block.splitlines()
        assert lines[0] == "xychart-beta"
        assert any(re.fullmatch(r"    (line|bar) \[[0-9., ]+\]", line) for line in lines)


def test_first_run_says_only_absolute_floors_apply() -> None:
    assert "first run: no baseline, only absolute floors apply" in render(_inputs("first_run"))


def test_a_failing_report_names_what_blocked_it() -> None:
    headline = render(_inputs("failing")).splitlines()[2]
    assert headline == "## ❌ Model report: blocked by gate, data validation, load test"


def test_failing_gate_checks_come_first() -> None:
    markdown = render(_inputs("failing"))
    checks = markdown[markdown.index("<summary>All gate checks") :]
    first_row = checks.splitlines()[4]
    assert first_row.startswith("| ❌ | metric | `roc_auc_vs_baseline` |")


def test_missing_optional_files_leave_their_sections_out(tmp_path: Path) -> None:
    markdown = render(load_inputs(tmp_path / "reports", None, None))
    assert markdown.startswith(MARKER + "\n")
    assert "no gate report" in markdown
    assert "### Load test SLO" not in markdown
    assert "### Rollout" not in markdown
    assert "```mermaid" not in markdown


def test_params_diff_flattens_nested_keys_and_sorts_changes() -> None:
    base = {"train": {"epochs": 40, "dropout": 0.1}, "export": {"opset": 18}}
    current = {"train": {"epochs": 60}, "export": {"opset": 18}, "serve": {"workers": 2}}
    assert params_diff(base, current) == [
        ("serve.workers", "added"),
        ("train.dropout", "removed"),
        ("train.epochs", "changed"),
    ]


def test_resampled_curves_keep_both_ends_of_the_x_range() -> None:
    roc = ((0.0, 0.0), (0.0, 0.9), (0.5, 0.95), (1.0, 1.0))
    points = resample(roc, roc_at)
    assert len(points) <= 21
    assert points[0] == (0.0, 0.9)
    assert points[-1] == (1.0, 1.0)


def test_interpolated_precision_is_the_best_at_that_recall_or_more() -> None:
    curve = ((1.0, 0.6), (0.8, 0.9), (0.5, 0.7), (0.0, 1.0))
    assert precision_at(curve, 0.6) == 0.9


def test_render_command_writes_the_report_and_appends_the_job_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    out = tmp_path / "report.md"
    reports = FIXTURES / "first_run" / "reports"
    params = FIXTURES / "first_run" / "params.yaml"
    argv = ["render", "--reports", str(reports), "--params", str(params), "--out", str(out)]
    assert main([*argv, "--summary"]) == 0
    assert summary.read_text() == "earlier step\n" + out.read_text()
