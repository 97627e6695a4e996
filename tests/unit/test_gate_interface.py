"""The gate's interface checks fail, each under its own name, for every way an exported model can
disagree with the data contract or with its own model.json. Built on the generated mixed table;
features are picked by kind, never by name."""

from __future__ import annotations

from typing import Any

import onnx
import pytest

from model.artifacts import Check
from model.checks import interface_checks
from model.contract import Contract
from model.export import metadata, to_onnx
from model.features import fit_schema
from model.inference import INPUTS_PROPERTY, onnx_session
from model.network import Classifier
from tests.tables import mixed_contract, mixed_frame

CONTRACT = mixed_contract()
RAW = mixed_frame(120, seed=2)
SCHEMA = fit_schema(RAW, CONTRACT)


@pytest.fixture(scope="module")
def model() -> bytes:
    import torch

    torch.manual_seed(0)
    network = Classifier(len(SCHEMA.encoded_names), (8,), len(SCHEMA.labels)).eval()
    return to_onnx(network, SCHEMA, RAW.loc[:, list(CONTRACT.feature_names)], opset=18)


def _failed(
    model: bytes, info: dict[str, Any] | None = None, contract: Contract = CONTRACT
) -> set[str]:
    info = info if info is not None else metadata(SCHEMA, model, 18)
    checks: list[Check] = interface_checks(onnx_session(model), info, contract)
    assert all(check.gate == "parity" for check in checks)
    failed = {check.name for check in checks if not check.passed}
    for check in checks:
        if not check.passed:
            assert check.why.startswith(f"{check.name}: model has "), check.why
    return failed


def _edited(model: bytes, edit: Any) -> bytes:
    graph = onnx.load_from_string(model)
    edit(graph)
    edited: bytes = graph.SerializeToString()
    return edited


def _contract(**changes: Any) -> Contract:
    data = CONTRACT.model_dump(mode="json", exclude_none=True)
    return Contract.parse(data | changes)


def test_a_model_exported_from_the_contract_passes_every_interface_check(model: bytes) -> None:
    assert _failed(model) == set()


def test_features_in_another_order_fail_as_feature_order(model: bytes) -> None:
    info = metadata(SCHEMA, model, 18)
    info["feature_names"] = list(reversed(info["feature_names"]))
    assert _failed(model, info) == {"feature_order"}


def test_a_feature_of_another_kind_fails_as_feature_kinds(model: bytes) -> None:
    info = metadata(SCHEMA, model, 18)
    info["inputs"][0] = info["inputs"][0] | {"kind": "boolean"}
    assert _failed(model, info) == {"feature_kinds"}


def test_renamed_classes_fail_as_labels(model: bytes) -> None:
    renamed = [f"{value} (renamed)" for value in CONTRACT.label.values]
    contract = _contract(label={"name": CONTRACT.label.name, "values": renamed})
    assert _failed(model, contract=contract) == {"labels"}


def test_a_class_the_model_does_not_output_fails_as_labels_and_output_width(model: bytes) -> None:
    more = [*CONTRACT.label.values, "one class more"]
    contract = _contract(label={"name": CONTRACT.label.name, "values": more})
    assert _failed(model, contract=contract) == {"labels", "output_width"}


def test_a_model_that_does_not_describe_its_inputs_fails_as_inputs_described(
    model: bytes,
) -> None:
    def strip(graph: onnx.ModelProto) -> None:
        kept = [p for p in graph.metadata_props if p.key != INPUTS_PROPERTY]
        del graph.metadata_props[:]
        graph.metadata_props.extend(kept)

    assert _failed(_edited(model, strip)) == {"inputs_described"}


def test_a_renamed_output_fails_as_output_name(model: bytes) -> None:
    def rename(graph: onnx.ModelProto) -> None:
        old = graph.graph.output[0].name
        for node in graph.graph.node:
            node.output[:] = ["renamed" if name == old else name for name in node.output]
        graph.graph.output[0].name = "renamed"

    assert _failed(_edited(model, rename)) == {"output_name"}


def test_a_fixed_batch_size_fails_as_the_batch_axis(model: bytes) -> None:
    def fix(graph: onnx.ModelProto) -> None:
        for graph_input in graph.graph.input:
            if graph_input.name == "numeric":
                graph_input.type.tensor_type.shape.dim[0].dim_value = 4

    assert _failed(_edited(model, fix)) == {"numeric_batch_axis"}


def test_a_numeric_feature_the_model_lacks_fails_as_the_numeric_width(model: bytes) -> None:
    extra = {"name": "one feature more", "kind": "numeric"}
    contract = _contract(features=[*CONTRACT.model_dump(mode="json")["features"], extra])
    failed = _failed(model, contract=contract)
    assert "numeric_width" in failed
    assert failed <= {"numeric_width", "feature_order", "feature_kinds"}


def test_a_categorical_input_the_contract_does_not_have_fails(model: bytes) -> None:
    """With no categorical feature in the contract, a graph asking for one is refused."""
    features = [
        item
        for item in CONTRACT.model_dump(mode="json", exclude_none=True)["features"]
        if item["kind"] != "categorical"
    ]
    failed = _failed(model, contract=_contract(features=features))
    assert "categorical_input" in failed
    assert "numeric_width" not in failed


def test_a_numeric_input_of_another_dtype_fails_as_the_numeric_dtype(model: bytes) -> None:
    """A graph that takes doubles (cast to floats inside, so it still loads) is refused: the
    service sends float32."""

    def widen(graph: onnx.ModelProto) -> None:
        [numeric] = [item for item in graph.graph.input if item.name == "numeric"]
        for node in graph.graph.node:
            node.input[:] = ["numeric_float" if name == "numeric" else name for name in node.input]
        cast = onnx.helper.make_node(
            "Cast", ["numeric"], ["numeric_float"], to=onnx.TensorProto.FLOAT
        )
        graph.graph.node.insert(0, cast)
        numeric.type.tensor_type.elem_type = onnx.TensorProto.DOUBLE

    assert _failed(_edited(model, widen)) == {"numeric_dtype"}
