"""The model card: every section filled, for a first version and one judged against a baseline.

The inputs are the report fixtures (shaped like the real stage outputs) plus the project's own
card facts, data contract and params; tests/integration/test_gate_stage.py renders real ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from reporting.card import SECTIONS, CardInputs, main, render_card
from tests.conftest import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "report"
MODEL_INFO = {
    "sha256": "ab" * 32,
    "size_bytes": 10542,
    "opset": 18,
    "training_commit": "0123456789abcdef",
    "data_md5": "e9b944627d1dedf79eccded14bf80881",
    "feature_names": ["f"] * 30,
}
CONFIDENCE = {
    "confidence": 0.95,
    "resamples": 500,
    "rows": 114,
    "intervals": {"accuracy": {"low": 0.95, "high": 1.0}, "roc_auc": {"low": 0.97, "high": 1.0}},
}


def _yaml(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def _json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _inputs(case: str, **registered: str) -> CardInputs:
    reports = FIXTURES / case / "reports"
    gate = _json(reports / "gate.json") | {"passed": True}
    gate["registered"] = registered or None
    return CardInputs(
        facts=_yaml(REPO_ROOT / "model" / "card.yaml"),
        model=MODEL_INFO,
        gate=gate,
        metrics=gate["candidate"]["metrics"],
        params=_yaml(REPO_ROOT / "params.yaml"),
        contract=_yaml(REPO_ROOT / "data" / "contract.yaml"),
        confidence=CONFIDENCE,
        importance=_json(reports / "importance.json"),
        validation=_json(reports / "validation.json"),
    )


REGISTERED = {"name": "breast-cancer-classifier", "version": "4", "alias": "challenger"}


@pytest.mark.parametrize("case", ["first_run", "passing"])
def test_every_section_is_there_and_filled(case: str) -> None:
    card = render_card(_inputs(case, **REGISTERED, run_id="r1"))
    assert card.startswith("# Model card: breast-cancer-classifier, version 4\n")
    positions = [card.index(section) for section in SECTIONS]
    assert positions == sorted(positions)
    for section, body in zip(SECTIONS, card.split("\n## ")[1:], strict=True):
        assert len(body.strip().splitlines()) > 2, f"{section} is empty"
    assert "None ran." not in card
    assert "No importance file" not in card
    assert "CC BY 4.0" in card
    assert "e9b944627d1dedf79eccded14bf80881" in card
    assert "| accuracy |" in card
    assert "0.9500 to 1.0000" in card
    assert "`train.learning_rate`" in card
    assert "Any clinical or diagnostic decision" in card


def test_a_first_version_says_it_has_no_baseline() -> None:
    card = render_card(_inputs("first_run", **REGISTERED, run_id="r1"))
    assert "none: the first version, judged on absolute floors only" in card
    assert "| vs baseline |" not in card


def test_a_regular_version_shows_changes_against_its_baseline() -> None:
    card = render_card(_inputs("passing", **REGISTERED, run_id="r1"))
    assert "git `git origin/main (3f2a1c0)`" in card
    assert "| vs baseline |" in card
    metrics = card.split("## Metrics")[1].split("##")[0]
    [accuracy] = [line for line in metrics.splitlines() if line.startswith("| accuracy |")]
    value, _interval, baseline, change = accuracy.strip("| ").split(" | ")[1:]
    assert baseline != "—"
    assert float(change) == pytest.approx(float(value) - float(baseline), abs=1e-4)


def test_an_unregistered_model_says_so() -> None:
    card = render_card(_inputs("first_run"))
    assert card.startswith("# Model card: breast-cancer-classifier (not registered)")


def test_the_stage_refuses_a_failed_gate_and_writes_nothing(tmp_path: Path) -> None:
    gate = tmp_path / "gate.json"
    gate.write_text(json.dumps({"passed": False, "checks": []}))
    out = tmp_path / "card.md"
    missing = str(tmp_path / "missing.json")
    args = [str(gate), missing, missing, missing, missing, missing, missing, missing, str(out)]
    assert main(args) == 1
    assert not out.exists()
