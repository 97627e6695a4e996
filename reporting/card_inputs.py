"""The model card's Inputs section: every raw input a client sends, with what the model does
with a null and with a value it has not seen, from model.json and the data contract."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from model.artifacts import GateReport
from model.contract import CategoricalFeature, Contract, NumericFeature
from model.inputs import RawInput
from reporting.gate_view import schema_change
from reporting.markdown import markdown_table, names

IMPUTATION = {  # the contract's `impute`, as the card says it
    "median": "filled with the training median",
    "mean": "filled with the training mean",
    "most_frequent": "filled with the most frequent training value",
    "missing": "kept as a category of its own",
}


def raw_inputs(described: Sequence[dict[str, Any]] | None, contract: Contract) -> list[RawInput]:
    """What clients send, in the model's order: model.json's `inputs`, else the contract's."""
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
        for feature in contract.features
    ]


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


def _number_range(feature: NumericFeature) -> str:
    low, high = feature.min, feature.max
    kind = "integer" if feature.dtype == "int64" else "number"
    if low is not None and high is not None:
        return f"{kind} from {low:g} to {high:g}"
    if low is not None or high is not None:
        return f"{kind} {'≥' if low is not None else '≤'} {low if low is not None else high:g}"
    return f"any {kind}"


def _values(item: RawInput, contract: Contract) -> str:
    if item.kind == "boolean":
        return "true or false"
    if item.kind == "categorical":
        unseen = "refused" if item.unseen == "reject" else "scored as one `(other)` value"
        return f"{names(item.categories)}; any other value is {unseen}"
    feature = contract.feature(item.name) if item.name in contract.feature_names else None
    if not isinstance(feature, NumericFeature):
        return "any number"
    return _number_range(feature)


def inputs_section(gate: GateReport, inputs: Sequence[RawInput], contract: Contract) -> list[str]:
    """Every raw input a client sends, with what the model does with nulls and unknown values."""
    lines = ["## Inputs", ""]
    change = schema_change(gate)
    if gate.breaks_clients:
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
        [f"`{item.name}`", item.kind, _nulls(item, contract), _values(item, contract)]
        for item in inputs
    ]
    return [*lines, *markdown_table(["input", "kind", "null allowed", "values"], rows)]
