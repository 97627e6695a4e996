"""The files stages hand each other are typed: writers and readers share one model, and a file
that does not match it fails with the file and the field instead of rendering a dash."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from model.artifacts import (
    ArtifactError,
    Check,
    Confidence,
    GateReport,
    Importance,
    LoadTestSummary,
    Metrics,
    read_artifact,
    read_optional,
    write_artifact,
)
from model.checks import metric_checks
from model.params import MetricGate
from reporting.card import main as card_main
from reporting.cli import main as report_main
from reporting.inputs import load_inputs
from tests.conftest import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "report"
CASES = ("passing", "failing", "first_run", "multiclass")
SHAPES: dict[str, type[BaseModel]] = {
    "gate.json": GateReport,
    "load_test.json": LoadTestSummary,
    "importance.json": Importance,
    "confidence.json": Confidence,
}


def _copy(case: str, tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES / case, tmp_path / case)
    return tmp_path / case


def _rename_first_checks_passed(gate: Path) -> None:
    data: dict[str, Any] = json.loads(gate.read_text())
    data["checks"][0]["ok"] = data["checks"][0].pop("passed")
    gate.write_text(json.dumps(data))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_committed_fixture_matches_its_model(case: str, name: str) -> None:
    path = FIXTURES / case / "reports" / name
    if path.exists():
        read_artifact(path, SHAPES[name])


@pytest.mark.parametrize("case", CASES)
def test_a_gate_report_written_and_read_back_is_the_same(case: str, tmp_path: Path) -> None:
    gate = read_artifact(FIXTURES / case / "reports" / "gate.json", GateReport)
    write_artifact(tmp_path / "gate.json", gate)
    assert read_artifact(tmp_path / "gate.json", GateReport) == gate


def test_the_gate_writes_the_check_the_report_reads() -> None:
    [check] = metric_checks({"roc_auc": 0.9}, None, {"roc_auc": MetricGate(min=0.95)})
    assert type(check) is Check


def test_a_renamed_gate_field_fails_the_report_with_the_file_and_field(tmp_path: Path) -> None:
    root = _copy("passing", tmp_path)
    gate = root / "reports" / "gate.json"
    _rename_first_checks_passed(gate)
    with pytest.raises(ArtifactError) as caught:
        load_inputs(root / "reports", None, None)
    message = str(caught.value)
    assert message.startswith(f"{gate}: ")
    assert "checks.0.passed: Field required" in message
    assert "checks.0.ok: Extra inputs are not permitted" in message


def test_the_report_command_exits_non_zero_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _copy("passing", tmp_path)
    _rename_first_checks_passed(root / "reports" / "gate.json")
    out = tmp_path / "report.md"
    argv = ["render", "--reports", str(root / "reports"), "--out", str(out)]
    assert report_main([*argv, "--params", str(root / "params.yaml")]) == 2
    assert "gate.json: checks.0.passed: Field required" in capsys.readouterr().err
    assert not out.exists()


def test_the_card_stage_refuses_a_gate_report_of_another_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _copy("multiclass", tmp_path)
    gate = root / "reports" / "gate.json"
    _rename_first_checks_passed(gate)
    out = tmp_path / "card.md"
    assert card_main([str(gate), *[str(tmp_path / "unused")] * 7, str(out)]) == 2
    assert "checks.0.passed: Field required" in capsys.readouterr().err
    assert not out.exists()


def test_a_mistyped_value_is_named_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "load_test.json"
    data = json.loads((FIXTURES / "passing" / "reports" / "load_test.json").read_text())
    data["checks"]["p99_ms"]["value"] = "fast"
    path.write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match=r"load_test.json: checks\.p99_ms\.value: Input should"):
        read_artifact(path, LoadTestSummary)


def test_a_file_that_is_not_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text("{not json")
    with pytest.raises(ArtifactError, match=r"metrics\.json: "):
        read_artifact(path, Metrics)


def test_a_missing_optional_file_is_none_and_a_broken_one_still_fails(tmp_path: Path) -> None:
    assert read_optional(tmp_path / "gate.json", GateReport) is None
    (tmp_path / "gate.json").write_text("{}")
    with pytest.raises(ArtifactError, match="passed: Field required"):
        read_optional(tmp_path / "gate.json", GateReport)


def test_metrics_are_a_flat_mapping_of_numbers(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    write_artifact(path, Metrics({"accuracy": 0.9, "log_loss": 0.2}))
    assert json.loads(path.read_text()) == {"accuracy": 0.9, "log_loss": 0.2}
    path.write_text(json.dumps({"accuracy": {"value": 0.9}}))
    with pytest.raises(ArtifactError, match="accuracy: Input should be a valid number"):
        read_artifact(path, Metrics)
