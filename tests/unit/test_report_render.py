"""The pull-request report renders the same Markdown for the same inputs.

Golden files: each case under tests/fixtures/report/<case>/ holds report files shaped like the real
ones (reports/gate.json, validation.json, ..., params.yaml, optional base_params.yaml,
data/contract.yaml) and the expected Markdown in expected.md. The binary cases use a generic
30-feature table; `multiclass` is a real run on the generated mixed table of tests/tables.py
(3 classes), judged against a baseline whose inputs it broke. After an intended change to the
report, regenerate the goldens and review the diff:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_report_render.py
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest

from reporting.cli import main
from reporting.inputs import ReportInputs, load_inputs, run_files
from reporting.markdown import markdown_table
from reporting.mermaid import PALETTE, precision_at, resample, roc_at
from reporting.provenance import PIPELINE_STAGES, mismatches
from reporting.render import MARKER, render
from reporting.sections import confusion_section, params_diff

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "report"
RUN_URLS = {
    "passing": "https://github.com/owner/repo/actions/runs/1234",
    "failing": None,
    "first_run": None,
    "multiclass": None,
}
CHARTS = {"passing": 3, "failing": 3, "first_run": 3, "multiclass": 7}  # 3 classes x 2 + latency
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
    assert len(blocks) == CHARTS[case]
    assert markdown.count("```") == 2 * len(blocks)
    for block in blocks:
        lines = block.splitlines()
        assert lines[0].startswith('%%{init: {"themeVariables": {"xyChart": {"plotColorPalette"')
        assert lines[1] == "xychart-beta"
        assert any(re.fullmatch(r"    (line|bar) \[[0-9., ]+\]", line) for line in lines)


def test_first_run_says_only_absolute_floors_apply_once() -> None:
    markdown = render(_inputs("first_run"))
    assert "- Baseline: no champion registered yet: only absolute floors apply\n" in markdown
    assert markdown.count("only absolute floors apply") == 1


def test_a_failing_report_names_what_blocked_it() -> None:
    headline = render(_inputs("failing")).splitlines()[2]
    assert headline == (
        "## ❌ Model report: validate failed, gate failed, card did not run, "
        "package did not run, load_test failed"
    )


def test_failing_gate_checks_come_first() -> None:
    markdown = render(_inputs("failing"))
    checks = markdown[markdown.index("<summary>All gate checks") :]
    first_row = checks.splitlines()[4]
    assert first_row.startswith("| ❌ | metric | `roc_auc_vs_baseline` |")


def test_a_breaking_input_change_is_stated_under_the_verdict() -> None:
    lines = render(_inputs("multiclass")).splitlines()
    assert lines[2].endswith("(⚠️ breaking input change)")
    assert lines[7].startswith("- ⚠️ **Breaking input change**: removed: count; retyped: Région.")
    assert "Clients of the baseline would be refused" in lines[7]


def test_the_breaking_schema_check_is_flagged_in_the_checks_table() -> None:
    markdown = render(_inputs("multiclass"))
    assert "| ⚠️ | interface | `input_schema` | removed: count;" in markdown


@pytest.mark.parametrize("case", ["passing", "first_run"])
def test_unchanged_or_unknown_inputs_add_no_schema_line(case: str) -> None:
    markdown = render(_inputs(case))
    assert "input change" not in markdown
    assert "Input schema changed" not in markdown
    assert "| ✅ | interface | `input_schema` |" in markdown


def test_a_compatible_input_change_is_said_without_alarm() -> None:
    markdown = render(_inputs("failing"))
    assert "- Input schema changed, compatibly: added: visits." in markdown
    assert "breaking" not in markdown.lower()


def test_three_classes_get_one_roc_and_one_pr_curve_each() -> None:
    titles = re.findall(r'^    title "(.*)"$', render(_inputs("multiclass")), re.MULTILINE)
    assert [title.split(":")[0] for title in titles[:6]] == [
        f"{curve}, {name} against the rest"
        for name in ("ämber", "blue/green", "red.0")
        for curve in ("ROC", "Precision-recall")
    ]


def test_many_classes_start_with_their_curves_collapsed() -> None:
    curve = ((0.0, 0.0), (0.5, 0.8), (1.0, 1.0))
    names = tuple(f"class {index}" for index in range(6))
    markdown = render(ReportInputs(gate=None, roc=dict.fromkeys(names, curve), labels=names))
    summary = "<summary>ROC and precision-recall, each of 6 classes against the rest</summary>"
    assert f"<details>\n{summary}" in markdown
    assert markdown.count("```mermaid") == 6


def test_a_binary_label_gets_one_curve_pair_for_its_positive_class() -> None:
    titles = re.findall(r'^    title "(.*)"$', render(_inputs("passing")), re.MULTILINE)
    assert [title.split(":")[0] for title in titles[:2]] == [
        "ROC, positive class yes",
        "Precision-recall, positive class yes",
    ]


def test_a_multiclass_report_names_no_positive_class() -> None:
    assert "positive class" not in render(_inputs("multiclass"))


def test_the_confusion_matrix_is_n_by_n_in_the_contracts_class_order() -> None:
    confusion = [("c", "c"), ("a", "b"), ("b", "b"), ("a", "a"), ("a", "a")]
    table = confusion_section(confusion, ["c", "a", "b"])
    assert table[4:9] == [
        "| actual ↓ predicted → | `c` | `a` | `b` | rows | recall |",
        "|---|---:|---:|---:|---:|---:|",
        "| `c` | **1** | 0 | 0 | 1 | 100.0% |",
        "| `a` | 0 | **2** | 1 | 3 | 66.7% |",
        "| `b` | 0 | 0 | **1** | 1 | 100.0% |",
    ]
    assert table[9] == "| precision | 100.0% | 100.0% | 50.0% |  |  |"


def test_a_class_never_seen_in_the_test_split_still_gets_its_row() -> None:
    table = confusion_section([("a", "a")], ["a", "b"])
    assert "| `b` | 0 | **0** | 0 | — |" in table


def test_old_plot_files_without_a_class_column_still_chart(tmp_path: Path) -> None:
    plots = tmp_path / "reports" / "plots"
    plots.mkdir(parents=True)
    (plots / "roc.csv").write_text("fpr,tpr\n0,0\n0,0.9\n1,1\n")
    markdown = render(load_inputs(tmp_path / "reports", None, None))
    assert '    title "ROC: AUC 0.950"' in markdown


def test_missing_optional_files_leave_their_sections_out(tmp_path: Path) -> None:
    markdown = render(load_inputs(tmp_path / "reports", None, None))
    assert markdown.startswith(MARKER + "\n")
    assert "gate did not run" in markdown
    assert "### Load test SLO" not in markdown
    assert "### Rollout" not in markdown
    assert "### Confusion matrix" not in markdown
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


def _copy_case(case: str, tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(FIXTURES / case, tmp_path / case)
    return tmp_path / case


def test_a_crashed_load_test_heads_the_report_instead_of_every_check_passed(
    tmp_path: Path,
) -> None:
    root = _copy_case("passing", tmp_path)
    (root / "reports" / "load_test.json").unlink()
    lines = render(load_inputs(root / "reports", None, None)).splitlines()
    assert lines[2] == "## ❌ Model report: load_test did not run"
    assert lines[4].startswith("- ❌ **load_test did not run**: no `reports/load_test.json`")
    assert "every check passed" not in "\n".join(lines)


def test_an_expected_rollout_that_rolled_back_is_a_failed_stage(tmp_path: Path) -> None:
    import json

    root = _copy_case("passing", tmp_path)
    summary = root / "reports" / "rollout" / "summary.json"
    data = json.loads(summary.read_text()) | {"phase": "rolled_back"}
    summary.write_text(json.dumps(data))
    inputs = load_inputs(root / "reports", None, None, expected=(*PIPELINE_STAGES, "rollout"))
    assert render(inputs).splitlines()[2] == "## ❌ Model report: rollout failed"


def test_a_gate_from_another_run_is_said_in_the_first_lines(tmp_path: Path) -> None:
    import json

    root = _copy_case("passing", tmp_path)
    model = root / "models" / "model.json"
    model.write_text(json.dumps(json.loads(model.read_text()) | {"sha256": "c" * 64}))
    lines = render(load_inputs(root / "reports", None, None)).splitlines()
    assert lines[2] == "## ❌ Model report: inputs from different pipeline runs"
    assert lines[4].startswith("> ❌ **Stale or mixed report**: the files describe different")
    assert "`cccccccccccc` in `models/model.json`" in lines[4]


def test_files_from_one_run_raise_no_mismatch() -> None:
    assert mismatches(run_files(_inputs("passing"))) == []


def test_a_candidate_identical_to_its_baseline_is_not_compared() -> None:
    inputs = _inputs("passing")
    assert inputs.gate is not None
    digest = inputs.gate.candidate.onnx_sha256
    baseline = inputs.gate.baseline.model_copy(update={"onnx_sha256": digest})
    gate = inputs.gate.model_copy(update={"baseline": baseline})
    markdown = render(dataclasses.replace(inputs, gate=gate))
    assert "is this very model (same ONNX sha256" in markdown
    assert "The candidate is the baseline itself (same ONNX sha256): not compared." in markdown
    assert "+0.0000 |" not in markdown


def test_every_delta_has_a_paired_interval_and_a_noise_word() -> None:
    markdown = render(_inputs("failing"))
    table = markdown[markdown.index("| metric | candidate") :].split("\n\n")[0].splitlines()
    assert "95% paired interval" in table[0]
    for row in table[2:]:
        assert " to " in row
        assert "beyond noise" in row or "within noise" in row


def test_roc_charts_draw_the_baseline_beside_the_candidate_with_their_auc() -> None:
    markdown = render(_inputs("passing"))
    roc = next(block for block in MERMAID_BLOCK.findall(markdown) if 'title "ROC' in block)
    assert roc.count("    line [") == 3  # candidate, baseline, chance
    assert '    title "ROC, positive class yes: AUC 0.994 vs ' in roc
    assert "Lines: blue: candidate, AUC 0.994; orange: baseline, AUC " in markdown
    assert 'x-axis "false positive rate" 0 --> 1' in roc


def test_latencies_say_where_they_were_measured_and_in_what_unit() -> None:
    markdown = render(_inputs("passing"))
    assert "### Model latency (in-process: ONNX Runtime, no HTTP)" in markdown
    assert "### Load test SLO (through HTTP, under load)" in markdown
    assert "| ✅ | `p99_ms` | 14 ms | ≤ 100 ms |" in markdown
    assert "| candidate | 0.0069 ms | 0.0087 ms |" in markdown


def test_numeric_columns_are_right_aligned_and_pipes_escaped() -> None:
    table = markdown_table(["name", "value"], [["a | b", "0.5"], ["c", "12 ms"]])
    assert table == ["| name | value |", "|---|---:|", "| a \\| b | 0.5 |", "| c | 12 ms |"]


def test_the_palette_is_readable_on_githubs_light_and_dark_backgrounds() -> None:
    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    for background in ("#ffffff", "#0d1117"):
        for colour in PALETTE:
            light, dark = sorted((luminance(colour), luminance(background)), reverse=True)
            assert (light + 0.05) / (dark + 0.05) >= 2.5, (colour, background)
