"""DVC stage `card`: the model card of the gated model, attached to its MLflow model version.

Rendered from the stage outputs only (gate, metrics and their intervals, feature importance,
model metadata, params, the data contract) plus `model/card.yaml`, the few things no output
can say: intended use, users, what is out of scope and known limitations. Inputs, classes and the
dataset come from the model's metadata and the contract, so the card fits whatever table the
model was trained on. `render_card` is pure and deterministic; `main` reads the files, writes
reports/model_card.md atomically and, when the gate registered the model, logs the card to the
version's run and tags the version with it. The `package` stage then ships the same file inside
the Bento.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.artifacts import (
    ArtifactError,
    Confidence,
    GateReport,
    Importance,
    Metrics,
    Registered,
    read_artifact,
    read_optional,
)
from model.atomic import write_text_atomically
from model.contract import Contract
from model.inputs import RawInput
from model.params import Params
from reporting.card_facts import bullets, intended_use, read_facts
from reporting.card_inputs import inputs_section, raw_inputs
from reporting.gate_view import importance_table, metric_position, schema_change
from reporting.inputs import read_json, read_optional_json
from reporting.markdown import NONE, markdown_table, names

Json = dict[str, Any]
CARD_ARTIFACT = "model_card.md"
GATE_ORDER = ("metric", "behavior", "latency", "parity", "interface", "edge")
SECTIONS = (  # the card's outline, after the title table; every one is always rendered
    "## Intended use",
    "## Data",
    "## Inputs",
    "## Training",
    "## Metrics",
    "## Gate results",
    "## Behavioural checks",
    "## Top features",
    "## Known limitations",
)


@dataclass(frozen=True)
class CardInputs:
    facts: Json  # model/card.yaml
    model: Json  # models/model.json
    gate: GateReport
    metrics: Metrics
    params: Json  # params.yaml as read
    contract: Contract
    confidence: Confidence | None = None
    importance: Importance | None = None
    validation: Json | None = None

    @property
    def raw_inputs(self) -> list[RawInput]:
        return raw_inputs(self.model.get("inputs"), self.contract)


def _fixed(value: object, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else NONE


def _registry(name: str, registered: Registered | None) -> str:
    if registered is None:
        return "not registered (the gate ran with `--no-register`)"
    return (
        f"`{name}` version {registered.version}, alias `{registered.alias}`, "
        f"MLflow run `{registered.run_id}`"
    )


def _title(inputs: CardInputs) -> list[str]:
    registered = inputs.gate.registered
    name = registered.name if registered else inputs.params["registry"]["model_name"]
    if registered:
        title = f"# Model card: {name}, version {registered.version}"
    else:
        title = f"# Model card: {name} (not registered)"
    model = inputs.model
    rows = [
        ["Registry", _registry(name, registered)],
        [
            "Model file",
            f"ONNX opset {model.get('opset')}, {model.get('size_bytes', 0):,} bytes, "
            f"sha256 `{model.get('sha256', '')[:16]}`",
        ],
        ["Trained at commit", f"`{str(model.get('training_commit', 'unknown'))[:12]}`"],
        ["Baseline", _baseline(inputs.gate)],
        ["Inputs", f"{len(inputs.raw_inputs)} raw features; {_schema_status(inputs.gate)}"],
    ]
    # a list, not a headerless table: GFM draws an empty header row as a blank strip
    return [title, "", *(f"- **{fact}**: {value}" for fact, value in rows)]


def _schema_status(gate: GateReport) -> str:
    """The inputs against the baseline's, as the gate's interface check judged them."""
    change = schema_change(gate)
    if gate.breaks_clients:
        return f"**breaking input change** against the baseline ({change})"
    if change:
        return f"changed compatibly against the baseline ({change})"
    check = gate.schema_check
    same = check is not None and check.value == "same"
    return "the same as the baseline's" if same else "not compared with a baseline"


def _baseline(gate: GateReport) -> str:
    baseline = gate.baseline
    if baseline.kind == "none":
        return "none: the first version, judged on absolute floors only"
    text = f"{baseline.kind} `{baseline.source}`"
    if gate.same_model:
        text += " is this very model (same ONNX sha256): not compared"
    return text


def _labels(inputs: CardInputs) -> tuple[list[str], str | None]:
    """The classes in output order and the positive one (binary only): the model's own word
    first, the contract's for a model.json that predates them."""
    label = inputs.contract.label
    labels = [str(name) for name in inputs.model.get("labels") or label.values]
    positive = inputs.model.get("positive_label", label.positive_label)
    return labels, (str(positive) if positive is not None and len(labels) == 2 else None)


def _label_line(inputs: CardInputs) -> str:
    labels, positive = _labels(inputs)
    line = (
        f"- **Label**: `{inputs.contract.label.name}`, {len(labels)} classes in output order: "
        f"{names(labels)}; "
    )
    if positive is not None:
        return line + f"positive class `{positive}` (ROC and precision-recall are drawn for it)"
    return line + "no positive class (ROC AUC is one-vs-rest, F1 macro-averaged over classes)"


def _dataset(contract: Contract) -> list[str]:
    dataset = contract.dataset
    if dataset is None:
        return ["- **Dataset**: not described (add `dataset:` to the data contract)"]
    link = f" ({dataset.url})" if dataset.url else ""
    return [
        f"- **Dataset**: {dataset.name}{link}",
        f"- **Source**: {dataset.source}",
        f"- **Licence**: {dataset.licence}",
    ]


def _data(inputs: CardInputs) -> list[str]:
    prepare = inputs.params.get("prepare", {})
    validation = inputs.validation or {}
    rows = validation.get("rows")
    ignored = inputs.contract.ignore
    return [
        "## Data",
        "",
        *_dataset(inputs.contract),
        f"- **File**: `{validation.get('data', 'unknown')}`"
        + (f", {rows:,} rows" if isinstance(rows, int) else "")
        + f", md5 `{inputs.model.get('data_md5', 'unknown')}`",
        _label_line(inputs),
        f"- **Features**: {len(inputs.raw_inputs)} (listed under Inputs)"
        + (f"; columns left out of the model: {names(ignored)}" if ignored else ""),
        f"- **Splits**: test {prepare.get('test_fraction')}, validation "
        f"{prepare.get('val_fraction')}, the rest training; seed {prepare.get('seed')}",
    ]


def _training(params: Json) -> list[str]:
    train = params.get("train", {})
    rows = [[f"`train.{key}`", f"`{json.dumps(value)}`"] for key, value in train.items()]
    return ["## Training", "", *markdown_table(["param", "value"], rows)]


def _change(value: float, before: float | None) -> str:
    # round first: a change of -0.00001 would print as "-0.0000"
    return NONE if before is None else f"{round(value - before, 4) + 0.0:+.4f}"


def _metrics(inputs: CardInputs) -> list[str]:
    confidence = inputs.confidence
    intervals = confidence.intervals if confidence else {}
    identical = inputs.gate.same_model
    base = {} if identical else inputs.gate.baseline.metrics or {}
    ci_header = f"{confidence.confidence:.0%} interval" if confidence else "interval"
    rows = []
    for name in sorted(inputs.metrics.root, key=metric_position):
        value, interval, before = inputs.metrics.root[name], intervals.get(name), base.get(name)
        shown = f"{interval.low:.4f} to {interval.high:.4f}" if interval else NONE
        compared = [] if identical else [_fixed(before), _change(value, before)]
        rows.append([name, _fixed(value), shown, *compared])
    intro = "Test split"
    if confidence:
        intro += f", {confidence.rows} rows" if confidence.rows else ""
        intro += f"; intervals from {confidence.resamples} bootstrap resamples"
    header = ["metric", "value", ci_header, *([] if identical else ["baseline", "change"])]
    return ["## Metrics", "", intro + ".", "", *markdown_table(header, rows)]


def _gates(gate: GateReport) -> list[str]:
    rows = []
    for name in GATE_ORDER:
        mine = [check for check in gate.checks if check.gate == name]
        if mine:
            passed = sum(1 for check in mine if check.passed)
            failing = names(c.name for c in mine if not c.passed) or NONE
            rows.append([name, f"{passed} of {len(mine)}", failing])
    verdict = "passed" if gate.passed else "FAILED"
    held = sum(1 for check in gate.checks if check.passed)
    return [
        "## Gate results",
        "",
        f"The gate {verdict}: {held} of {len(gate.checks)} "
        "checks (thresholds in `params.yaml`, section `gate`).",
        "",
        *markdown_table(["gate", "passed", "failing"], rows),
    ]


def _behavior(gate: GateReport) -> list[str]:
    rows = [
        ["pass" if check.passed else "FAIL", f"`{check.name}`", check.why]
        for check in gate.checks
        if check.gate == "behavior"
    ]
    if not rows:
        return ["## Behavioural checks", "", "None ran."]
    return ["## Behavioural checks", "", *markdown_table(["", "check", "result"], rows)]


def _features(inputs: CardInputs) -> list[str]:
    importance = inputs.importance
    if not importance:
        return ["## Top features", "", "No importance file (run the `evaluate` stage)."]
    intro = (
        f"Permutation importance of the ONNX model on the test split, "
        f"{importance.repeats} shuffles per feature."
    )
    return ["## Top features", "", intro, "", *importance_table(importance, inputs.gate)]


def _limitations(inputs: CardInputs) -> list[str]:
    lines = ["## Known limitations", "", *bullets(inputs.facts.get("limitations"))]
    intervals = inputs.confidence.intervals if inputs.confidence else {}
    widest = max(intervals.items(), key=lambda item: item[1].width, default=None)
    if widest is not None:
        name, interval = widest
        lines.append(
            f"- The test split is small: the widest interval ({name}) spans {interval.width:.4f}."
        )
    latency = inputs.gate.latency.get("candidate")
    if latency is not None:
        lines.append(
            f"- Latency was measured in-process on the gate's machine (single-row p99 "
            f"{latency.p99_ms:.4f} ms); the served latency is the load test's to judge."
        )
    edge = inputs.gate.edge
    if edge is not None:
        lines.append(
            f"- The int8 copy for edge devices scores accuracy {edge.int8_accuracy:.4f} "
            f"against fp32 {edge.fp32_accuracy:.4f}."
        )
    return lines


def render_card(inputs: CardInputs) -> str:
    """The whole card as Markdown."""
    sections = [
        _title(inputs),
        intended_use(inputs.facts),
        _data(inputs),
        inputs_section(inputs.gate, inputs.raw_inputs, inputs.contract),
        _training(inputs.params),
        _metrics(inputs),
        _gates(inputs.gate),
        _behavior(inputs.gate),
        _features(inputs),
        _limitations(inputs),
    ]
    return "\n\n".join("\n".join(section) for section in sections) + "\n"


def attach(registered: Registered, card: str) -> str:
    """Log the card to the registered version's run and point a version tag at it."""
    from model.tracking import configure

    client = configure().MlflowClient()
    run_id, name, version = registered.run_id, registered.name, registered.version
    client.log_text(run_id, card, CARD_ARTIFACT)
    uri = f"runs:/{run_id}/{CARD_ARTIFACT}"
    client.set_model_version_tag(name, version, "model_card", uri)
    first_line = card.splitlines()[0].lstrip("# ")
    client.update_model_version(name, version, description=f"{first_line}. Card: {uri}")
    return uri


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("gate", type=Path, help="gate result written by `gate`")
    parser.add_argument("model", type=Path, help="model metadata written by `export`")
    parser.add_argument("metrics", type=Path, help="metrics written by `evaluate`")
    parser.add_argument("confidence", type=Path, help="metric intervals written by `evaluate`")
    parser.add_argument("importance", type=Path, help="feature importance written by `evaluate`")
    parser.add_argument("validation", type=Path, help="report written by `validate`")
    parser.add_argument("contract", type=Path, help="the data contract")
    parser.add_argument("facts", type=Path, help="what the card says by hand (model/card.yaml)")
    parser.add_argument("out", type=Path, help="where to write the card (Markdown)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--no-attach", action="store_true", help="do not touch MLflow")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        gate = read_artifact(args.gate, GateReport)
    except ArtifactError as error:
        print(f"card: {error}", file=sys.stderr)
        return 2
    if not gate.passed:
        print(f"card: {args.gate} says the model failed its gates; no card", file=sys.stderr)
        return 1
    inputs = CardInputs(
        facts=read_facts(args.facts),
        model=read_json(args.model),
        gate=gate,
        metrics=read_artifact(args.metrics, Metrics),
        params=Params.load(args.params).model_dump(mode="json"),
        contract=Contract.load(args.contract),
        confidence=read_optional(args.confidence, Confidence),
        importance=read_optional(args.importance, Importance),
        validation=read_optional_json(args.validation),
    )
    card = render_card(inputs)
    write_text_atomically(args.out, card)
    print(f"card: {args.out}")
    if gate.registered and not args.no_attach:
        uri = attach(gate.registered, card)
        print(f"card: attached to {gate.registered.name} version {gate.registered.version} ({uri})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
