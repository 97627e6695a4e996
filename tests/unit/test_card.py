"""The model card: every section filled, for a binary and a 3-class model, a first version and one
judged against a baseline, and whatever the table's inputs are.

The inputs are the report fixtures (shaped like the real stage outputs, each with its own params,
data contract and model.json: a generic binary table, and a real 3-class run on the generated
mixed table whose inputs broke the baseline's) plus the project's own card facts;
tests/integration/test_gate_stage.py renders real ones.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from model.artifacts import Confidence, GateReport, Importance, Metrics
from model.contract import Contract
from reporting.card import SECTIONS, CardInputs, main, render_card
from reporting.card_facts import placeholders
from tests.conftest import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "report"
FACTS = REPO_ROOT / "model" / "card.yaml"
CONFIDENCE = {
    "confidence": 0.95,
    "resamples": 500,
    "rows": 114,
    "intervals": {"accuracy": {"low": 0.95, "high": 1.0}, "roc_auc": {"low": 0.97, "high": 1.0}},
}
REGISTERED = {
    "name": "classifier",
    "version": "4",
    "alias": "challenger",
    "run_id": "r1",
    "created": True,
}
CASES = ["first_run", "passing", "multiclass"]


def _yaml(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def _json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _inputs(
    case: str, *, registered: bool = False, facts: dict[str, Any] | None = None
) -> CardInputs:
    folder = FIXTURES / case
    reports = folder / "reports"
    gate = _json(reports / "gate.json") | {"passed": True}
    gate["registered"] = REGISTERED if registered else None
    confidence = reports / "confidence.json"
    return CardInputs(
        facts=facts if facts is not None else _yaml(FACTS),
        model=_json(folder / "models" / "model.json"),
        gate=GateReport.model_validate(gate),
        metrics=Metrics.model_validate(gate["candidate"]["metrics"]),
        params=_yaml(folder / "params.yaml"),
        contract=Contract.load(folder / "data" / "contract.yaml"),
        confidence=Confidence.model_validate(
            _json(confidence) if confidence.exists() else CONFIDENCE
        ),
        importance=Importance.model_validate(_json(reports / "importance.json")),
        validation=_json(reports / "validation.json"),
    )


def _section(card: str, title: str) -> str:
    return card.split(f"\n{title}\n")[1].split("\n## ")[0]


@pytest.mark.parametrize("case", CASES)
def test_every_section_is_there_and_filled(case: str) -> None:
    card = render_card(_inputs(case, registered=True))
    assert card.startswith("# Model card: classifier, version 4\n")
    positions = [card.index(f"\n{section}\n") for section in SECTIONS]
    assert positions == sorted(positions)
    for section, body in zip(SECTIONS, card.split("\n## ")[1:], strict=True):
        assert body.startswith(section.removeprefix("## "))
        assert len(body.strip().splitlines()) > 2, f"{section} is empty"
    assert "None ran." not in card
    assert "No importance file" not in card
    assert "| accuracy |" in card
    assert "`train.learning_rate`" in card


def test_the_data_section_quotes_the_contracts_dataset_and_the_data_hash() -> None:
    data = _section(render_card(_inputs("passing")), "## Data")
    assert "- **Dataset**: Example table" in data
    assert "- **Licence**: CC0" in data
    assert "e9b944627d1dedf79eccded14bf80881" in data


def test_a_binary_label_names_its_positive_class() -> None:
    data = _section(render_card(_inputs("passing")), "## Data")
    label = "- **Label**: `outcome`, 2 classes in output order: `no`, `yes`; positive class `yes`"
    assert label in data


def test_three_classes_are_listed_with_no_positive_class() -> None:
    card = render_card(_inputs("multiclass"))
    data = _section(card, "## Data")
    assert "3 classes in output order: `ämber`, `blue/green`, `red.0`; no positive class" in data
    assert "positive class `" not in card
    assert "(positive" not in card


def test_columns_left_out_of_the_model_are_named() -> None:
    data = _section(render_card(_inputs("multiclass")), "## Data")
    assert "columns left out of the model: `row id`, `count`" in data


def test_every_input_is_listed_with_kind_nulls_and_values() -> None:
    rows = _section(render_card(_inputs("multiclass")), "## Inputs").splitlines()
    table = [row for row in rows if row.startswith("| `")]
    assert table == [
        "| `Size (cm)` | numeric | no | number from -10 to 10 |",
        "| `weight.kg` | numeric | yes, filled with the training median | any number |",
        "| `Région` | categorical | yes, kept as a category of its own "
        "| `north`, `south`, `east`, `west`; any other value is refused |",
        "| `shape/type` | categorical | yes, filled with the most frequent training value "
        "| `round`, `square`; any other value is scored as one `(other)` value |",
        "| `Is Active` | boolean | yes, filled with the most frequent training value "
        "| true or false |",
    ]


def test_a_model_json_without_inputs_falls_back_to_the_contract() -> None:
    inputs = _inputs("multiclass")
    older = CardInputs(**{**inputs.__dict__, "model": {**inputs.model, "inputs": []}})
    assert _section(render_card(older), "## Inputs") == _section(render_card(inputs), "## Inputs")


def test_a_breaking_input_change_is_stated_in_the_card() -> None:
    card = render_card(_inputs("multiclass"))
    assert (
        "- **Inputs**: 5 raw features; **breaking input change** against the baseline "
        "(removed: count; retyped: Région)\n" in card
    )
    inputs = _section(card, "## Inputs")
    assert inputs.startswith(
        "\n**Breaking input change** against the baseline: removed: count; retyped: Région. "
        "Clients of the baseline would be refused."
    )


def test_unchanged_inputs_say_so_and_no_more() -> None:
    card = render_card(_inputs("passing"))
    assert "- **Inputs**: 30 raw features; the same as the baseline's" in card
    assert "reaking" not in card


def test_the_interface_gate_is_counted_with_the_others() -> None:
    gates = _section(render_card(_inputs("multiclass")), "## Gate results")
    assert "| interface | 1 of 1 | — |" in gates


def test_a_first_version_says_it_has_no_baseline() -> None:
    card = render_card(_inputs("first_run", registered=True))
    assert "none: the first version, judged on absolute floors only" in card
    assert "not compared with a baseline" in card
    assert "| vs baseline |" not in card


def test_a_regular_version_shows_changes_against_its_baseline() -> None:
    card = render_card(_inputs("passing", registered=True))
    assert "git `git origin/main (3f2a1c0)`" in card
    assert "| vs baseline |" in card
    metrics = card.split("## Metrics")[1].split("##")[0]
    [accuracy] = [line for line in metrics.splitlines() if line.startswith("| accuracy |")]
    value, _interval, baseline, change = accuracy.strip("| ").split(" | ")[1:]
    assert baseline != "—"
    assert float(change) == pytest.approx(float(value) - float(baseline), abs=1e-4)


def test_an_unregistered_model_says_so() -> None:
    card = render_card(_inputs("first_run"))
    assert card.startswith("# Model card: classifier (not registered)")


def test_the_shipped_card_facts_are_hints_that_render_as_not_written_yet() -> None:
    facts = _yaml(FACTS)
    assert placeholders(facts) == ["intended_use", "users", "out_of_scope", "limitations"]
    intended = _section(render_card(_inputs("passing")), "## Intended use")
    assert intended.startswith("\n_Not written yet: the decision the predictions feed,")
    assert "TODO" not in intended


def test_written_card_facts_are_quoted_as_they_are() -> None:
    facts = {
        "owners": "the scoring team",
        "intended_use": "Ranks   incoming requests\nfor review.",
        "users": "the review service",
        "out_of_scope": ["Automatic refusals."],
        "limitations": ["One year of data."],
    }
    card = render_card(_inputs("multiclass", facts=facts))
    assert placeholders(facts) == []
    assert "\nRanks incoming requests for review.\n" in card
    assert "- **Owners**: the scoring team" in card
    assert "- Automatic refusals." in card
    assert "- One year of data." in card
    assert "Not written yet" not in card


def test_the_stage_writes_the_card_and_warns_about_hints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = FIXTURES / "multiclass"
    reports = folder / "reports"
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps(_json(reports / "gate.json")["candidate"]["metrics"]))
    out = tmp_path / "card.md"
    args = [
        str(reports / "gate.json"),
        str(folder / "models" / "model.json"),
        str(metrics),
        str(reports / "confidence.json"),
        str(reports / "importance.json"),
        str(reports / "validation.json"),
        str(folder / "data" / "contract.yaml"),
        str(FACTS),
        str(out),
        "--params",
        str(REPO_ROOT / "params.yaml"),
        "--no-attach",
    ]
    assert main(args) == 0
    assert "**Breaking input change**" in out.read_text(encoding="utf-8")
    assert "still has `TODO:` hints in intended_use, users" in capsys.readouterr().err


def test_the_stage_refuses_a_failed_gate_and_writes_nothing(tmp_path: Path) -> None:
    gate = tmp_path / "gate.json"
    failed = _json(FIXTURES / "failing" / "reports" / "gate.json")
    assert failed["passed"] is False
    gate.write_text(json.dumps(failed))
    out = tmp_path / "card.md"
    missing = str(tmp_path / "missing.json")
    args = [str(gate), missing, missing, missing, missing, missing, missing, missing, str(out)]
    assert main(args) == 1
    assert not out.exists()


def test_the_cards_first_facts_are_a_list_not_a_headerless_table() -> None:
    card = render_card(_inputs("multiclass"))
    assert "|  |  |" not in card
    assert "\n- **Model file**: ONNX opset" in card


def test_a_card_whose_baseline_is_the_model_itself_compares_nothing() -> None:
    inputs = _inputs("multiclass")
    digest = inputs.gate.candidate.onnx_sha256
    baseline = inputs.gate.baseline.model_copy(update={"onnx_sha256": digest})
    gate = inputs.gate.model_copy(update={"baseline": baseline})
    card = render_card(dataclasses.replace(inputs, gate=gate))
    assert "is this very model (same ONNX sha256): not compared" in card
    assert "| change |" not in card
