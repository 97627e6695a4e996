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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from model.atomic import write_text_atomically
from model.contract import CategoricalFeature, Contract, NumericFeature
from model.inputs import RawInput
from model.params import Params
from reporting.render import (
    METRIC_ORDER,
    NONE,
    identical_to_baseline,
    importance_table,
    input_schema,
    is_breaking,
    markdown_table,
    schema_change,
)

Json = dict[str, Any]
CARD_ARTIFACT = "model_card.md"
GATE_ORDER = ("metric", "behavior", "latency", "parity", "interface", "edge")
PLACEHOLDER = "TODO:"  # a card.yaml value starting with this is a hint for the team, not a fact
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


class CardFacts(BaseModel):
    """model/card.yaml: a typo in a key fails the stage instead of leaving a section empty."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    owners: str = Field(min_length=1)
    intended_use: str = Field(min_length=1)
    users: str = Field(min_length=1)
    out_of_scope: tuple[str, ...] = ()
    limitations: tuple[str, ...] = ()


def placeholders(facts: Mapping[str, Any]) -> list[str]:
    """The card.yaml keys still holding a `TODO:` hint."""
    found = []
    for key, value in facts.items():
        values = [value] if isinstance(value, str) else list(value or [])
        if any(str(item).strip().startswith(PLACEHOLDER) for item in values):
            found.append(key)
    return found


@dataclass(frozen=True)
class CardInputs:
    facts: Json  # model/card.yaml
    model: Json  # models/model.json
    gate: Json
    metrics: Json
    params: Json  # params.yaml as read
    contract: Contract
    confidence: Json | None = None
    importance: Json | None = None
    validation: Json | None = None


def _fixed(value: object, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else NONE


def _fact(text: object) -> str:
    """A card.yaml value on one line; a `TODO:` hint shows as a visible gap, not as a claim."""
    words = " ".join(str(text).split())
    if words.startswith(PLACEHOLDER):
        return f"_Not written yet: {words.removeprefix(PLACEHOLDER).strip()}_"
    return words


def _bullets(items: Sequence[object] | str | None) -> list[str]:
    if not items:
        return []
    if isinstance(items, str):
        return [f"- {_fact(items)}"]
    return [f"- {_fact(item)}" for item in items]


def _names(names: Sequence[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def _title(inputs: CardInputs) -> list[str]:
    registered = inputs.gate.get("registered")
    name = (registered or {}).get("name") or inputs.params["registry"]["model_name"]
    if registered:
        title = f"# Model card: {name}, version {registered['version']}"
    else:
        title = f"# Model card: {name} (not registered)"
    model = inputs.model
    rows = [
        [
            "Registry",
            f"`{name}` version {registered['version']}, alias `{registered['alias']}`, "
            f"MLflow run `{registered['run_id']}`"
            if registered
            else "not registered (the gate ran with `--no-register`)",
        ],
        [
            "Model file",
            f"ONNX opset {model.get('opset')}, {model.get('size_bytes', 0):,} bytes, "
            f"sha256 `{model.get('sha256', '')[:16]}`",
        ],
        ["Trained at commit", f"`{str(model.get('training_commit', 'unknown'))[:12]}`"],
        ["Baseline", _baseline(inputs.gate)],
        ["Inputs", f"{len(_raw_inputs(inputs))} raw features; {_schema_status(inputs.gate)}"],
    ]
    # a list, not a headerless table: GFM draws an empty header row as a blank strip
    return [title, "", *(f"- **{fact}**: {value}" for fact, value in rows)]


def _schema_status(gate: Json) -> str:
    """The inputs against the baseline's, as the gate's interface check judged them."""
    change = schema_change(gate)
    if is_breaking(gate):
        return f"**breaking input change** against the baseline ({change})"
    if change:
        return f"changed compatibly against the baseline ({change})"
    value = (input_schema(gate) or {}).get("value")
    return "the same as the baseline's" if value == "same" else "not compared with a baseline"


def _baseline(gate: Json) -> str:
    baseline = gate.get("baseline") or {}
    if baseline.get("kind", "none") == "none":
        return "none: the first version, judged on absolute floors only"
    text = f"{baseline.get('kind')} `{baseline.get('source')}`"
    if identical_to_baseline(gate):
        text += " is this very model (same ONNX sha256): not compared"
    return text


def _intended_use(facts: Json) -> list[str]:
    lines = ["## Intended use", "", _fact(facts.get("intended_use", NONE)), ""]
    lines += [
        f"- **Users**: {_fact(facts.get('users', NONE))}",
        f"- **Owners**: {_fact(facts.get('owners', NONE))}",
    ]
    out_of_scope = _bullets(facts.get("out_of_scope"))
    return [*lines, "", "**Out of scope**:", "", *out_of_scope] if out_of_scope else lines


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
        f"{_names(labels)}; "
    )
    if positive is not None:
        return line + f"positive class `{positive}` (ROC and precision-recall are drawn for it)"
    return line + "no positive class (ROC AUC is one-vs-rest, F1 macro-averaged over classes)"


def _data(inputs: CardInputs) -> list[str]:
    dataset = inputs.contract.dataset
    prepare = inputs.params.get("prepare", {})
    validation = inputs.validation or {}
    lines = ["## Data", ""]
    if dataset is not None:
        link = f" ({dataset.url})" if dataset.url else ""
        lines.append(f"- **Dataset**: {dataset.name}{link}")
        lines.append(f"- **Source**: {dataset.source}")
        lines.append(f"- **Licence**: {dataset.licence}")
    else:
        lines.append("- **Dataset**: not described (add `dataset:` to the data contract)")
    rows = validation.get("rows")
    ignored = inputs.contract.ignore
    lines += [
        f"- **File**: `{validation.get('data', 'unknown')}`"
        + (f", {rows:,} rows" if isinstance(rows, int) else "")
        + f", md5 `{inputs.model.get('data_md5', 'unknown')}`",
        _label_line(inputs),
        f"- **Features**: {len(_raw_inputs(inputs))} (listed under Inputs)"
        + (f"; columns left out of the model: {_names(ignored)}" if ignored else ""),
        f"- **Splits**: test {prepare.get('test_fraction')}, validation "
        f"{prepare.get('val_fraction')}, the rest training; seed {prepare.get('seed')}",
    ]
    return lines


def _raw_inputs(inputs: CardInputs) -> list[RawInput]:
    """What clients send, in the model's order: model.json's `inputs`, else the contract's."""
    described = inputs.model.get("inputs")
    if described:
        return [RawInput.model_validate(item) for item in described]
    return [
        RawInput(
            name=feature.name,
            kind=feature.kind,
            nullable=feature.nullable,
            categories=feature.values if isinstance(feature, CategoricalFeature) else (),
            unseen=feature.unseen if isinstance(feature, CategoricalFeature) else "reject",
        )
        for feature in inputs.contract.features
    ]


IMPUTATION = {  # the contract's `impute`, as the card says it
    "median": "filled with the training median",
    "mean": "filled with the training mean",
    "most_frequent": "filled with the most frequent training value",
    "missing": "kept as a category of its own",
}


def _nulls(item: RawInput, contract: Contract) -> str:
    if not item.nullable:
        return "no"
    try:
        feature = contract.feature(item.name)
    except KeyError:
        return "yes"
    if feature.imputation == "constant":
        return f"yes, filled with `{json.dumps(feature.fill)}`"
    return f"yes, {IMPUTATION.get(feature.imputation, feature.imputation)}"


def _values(item: RawInput, contract: Contract) -> str:
    if item.kind == "boolean":
        return "true or false"
    if item.kind == "categorical":
        unseen = "refused" if item.unseen == "reject" else "scored as one `(other)` value"
        return f"{_names(item.categories)}; any other value is {unseen}"
    feature = contract.feature(item.name) if item.name in contract.feature_names else None
    if not isinstance(feature, NumericFeature):
        return "any number"
    low, high = feature.min, feature.max
    kind = "integer" if feature.dtype == "int64" else "number"
    if low is not None and high is not None:
        return f"{kind} from {low:g} to {high:g}"
    if low is not None or high is not None:
        return f"{kind} {'≥' if low is not None else '≤'} {low if low is not None else high:g}"
    return f"any {kind}"


def _inputs(inputs: CardInputs) -> list[str]:
    """Every raw input a client sends, with what the model does with nulls and unknown values."""
    lines = ["## Inputs", ""]
    change = schema_change(inputs.gate)
    if is_breaking(inputs.gate):
        lines += [
            f"**Breaking input change** against the baseline: {change}. Clients of the "
            "baseline would be refused.",
            "",
        ]
    elif change:
        lines += [f"Changed compatibly against the baseline: {change}.", ""]
    lines += [
        "Clients send raw values, one row per record; imputation, encoding and scaling are "
        "inside the ONNX graph.",
        "",
    ]
    rows = [
        [f"`{item.name}`", item.kind, _nulls(item, inputs.contract), _values(item, inputs.contract)]
        for item in _raw_inputs(inputs)
    ]
    return [*lines, *markdown_table(["input", "kind", "null allowed", "values"], rows)]


def _training(params: Json) -> list[str]:
    train = params.get("train", {})
    rows = [[f"`train.{key}`", f"`{json.dumps(value)}`"] for key, value in train.items()]
    return ["## Training", "", *markdown_table(["param", "value"], rows)]


def _metrics(inputs: CardInputs) -> list[str]:
    confidence = inputs.confidence or {}
    intervals = confidence.get("intervals", {})
    level = confidence.get("confidence")
    identical = identical_to_baseline(inputs.gate)
    base = {} if identical else (inputs.gate.get("baseline") or {}).get("metrics") or {}
    ci_header = f"{level:.0%} interval" if isinstance(level, float) else "interval"
    rows = []
    ordered = sorted(inputs.metrics.items(), key=lambda item: _metric_position(item[0]))
    for name, value in ordered:
        interval = intervals.get(name)
        shown = f"{interval['low']:.4f} to {interval['high']:.4f}" if interval else NONE
        before = base.get(name)
        # round first: a change of -0.00001 would print as "-0.0000"
        change = (
            f"{round(value - before, 4) + 0.0:+.4f}" if isinstance(before, int | float) else NONE
        )
        rows.append([name, _fixed(value), shown, *([] if identical else [_fixed(before), change])])
    rows_note = confidence.get("rows")
    intro = "Test split" + (f", {rows_note} rows" if rows_note else "")
    if confidence:
        intro += f"; intervals from {confidence.get('resamples')} bootstrap resamples"
    return [
        "## Metrics",
        "",
        intro + ".",
        "",
        *markdown_table(
            ["metric", "value", ci_header, *([] if identical else ["baseline", "change"])], rows
        ),
    ]


def _metric_position(name: str) -> tuple[int, str]:
    return (METRIC_ORDER.index(name) if name in METRIC_ORDER else len(METRIC_ORDER), name)


def _gates(gate: Json) -> list[str]:
    checks = gate.get("checks", [])
    rows = []
    for name in GATE_ORDER:
        mine = [check for check in checks if check.get("gate") == name]
        if mine:
            passed = sum(1 for check in mine if check.get("passed"))
            failing = ", ".join(f"`{c['name']}`" for c in mine if not c.get("passed")) or NONE
            rows.append([name, f"{passed} of {len(mine)}", failing])
    verdict = "passed" if gate.get("passed") else "FAILED"
    return [
        "## Gate results",
        "",
        f"The gate {verdict}: {sum(1 for c in checks if c.get('passed'))} of {len(checks)} "
        "checks (thresholds in `params.yaml`, section `gate`).",
        "",
        *markdown_table(["gate", "passed", "failing"], rows),
    ]


def _behavior(gate: Json) -> list[str]:
    rows = [
        ["pass" if check.get("passed") else "FAIL", f"`{check['name']}`", check.get("why", "")]
        for check in gate.get("checks", [])
        if check.get("gate") == "behavior"
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
        f"{importance.get('repeats')} shuffles per feature."
    )
    return ["## Top features", "", intro, "", *importance_table(importance, inputs.gate)]


def _limitations(inputs: CardInputs) -> list[str]:
    lines = ["## Known limitations", "", *_bullets(inputs.facts.get("limitations"))]
    intervals = (inputs.confidence or {}).get("intervals", {})
    widest = max(intervals.items(), key=lambda item: item[1]["high"] - item[1]["low"], default=None)
    if widest is not None:
        name, interval = widest
        lines.append(
            f"- The test split is small: the widest interval ({name}) spans "
            f"{interval['high'] - interval['low']:.4f}."
        )
    latency = (inputs.gate.get("latency") or {}).get("candidate") or {}
    if latency.get("p99_ms") is not None:
        lines.append(
            f"- Latency was measured in-process on the gate's machine (single-row p99 "
            f"{latency['p99_ms']:.4f} ms); the served latency is the load test's to judge."
        )
    edge = inputs.gate.get("edge") or {}
    if edge.get("int8_accuracy") is not None:
        lines.append(
            f"- The int8 copy for edge devices scores accuracy {edge['int8_accuracy']:.4f} "
            f"against fp32 {edge['fp32_accuracy']:.4f}."
        )
    return lines


def render_card(inputs: CardInputs) -> str:
    """The whole card as Markdown."""
    sections = [
        _title(inputs),
        _intended_use(inputs.facts),
        _data(inputs),
        _inputs(inputs),
        _training(inputs.params),
        _metrics(inputs),
        _gates(inputs.gate),
        _behavior(inputs.gate),
        _features(inputs),
        _limitations(inputs),
    ]
    return "\n\n".join("\n".join(section) for section in sections) + "\n"


def _json(path: Path) -> Json:
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def _optional_json(path: Path) -> Json | None:
    return _json(path) if path.is_file() else None


def _yaml(path: Path) -> Json:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping")
    return data


def attach(registered: Mapping[str, Any], card: str) -> str:
    """Log the card to the registered version's run and point a version tag at it."""
    from model.tracking import configure

    client = configure().MlflowClient()
    run_id, name, version = registered["run_id"], registered["name"], registered["version"]
    client.log_text(run_id, card, CARD_ARTIFACT)
    uri = f"runs:/{run_id}/{CARD_ARTIFACT}"
    client.set_model_version_tag(name, version, "model_card", uri)
    first_line = card.splitlines()[0].lstrip("# ")
    client.update_model_version(name, version, description=f"{first_line}. Card: {uri}")
    return uri


def main(argv: list[str] | None = None) -> int:
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
    args = parser.parse_args(argv)

    gate = _json(args.gate)
    if not gate.get("passed"):
        print(f"card: {args.gate} says the model failed its gates; no card", file=sys.stderr)
        return 1
    facts = CardFacts.model_validate(_yaml(args.facts)).model_dump()
    unwritten = placeholders(facts)
    if unwritten:
        print(
            f"card: {args.facts} still has `{PLACEHOLDER}` hints in {', '.join(unwritten)}; "
            "the card shows them as not written yet",
            file=sys.stderr,
        )
    inputs = CardInputs(
        facts=facts,
        model=_json(args.model),
        gate=gate,
        metrics=_json(args.metrics),
        params=Params.load(args.params).model_dump(mode="json"),
        contract=Contract.load(args.contract),
        confidence=_optional_json(args.confidence),
        importance=_optional_json(args.importance),
        validation=_optional_json(args.validation),
    )
    card = render_card(inputs)
    write_text_atomically(args.out, card)
    print(f"card: {args.out}")
    registered = gate.get("registered")
    if registered and not args.no_attach:
        uri = attach(registered, card)
        print(f"card: attached to {registered['name']} version {registered['version']} ({uri})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
