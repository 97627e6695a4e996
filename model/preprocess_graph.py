"""The fitted preprocessing as an ONNX graph, composed in front of the exported network.

Why a hand-built graph of standard operators rather than a converted scikit-learn pipeline: the
fitted values already live in features.json (typed, readable, no pickle between stages); the
graph is a dozen nodes of the default domain plus one `ai.onnx.ml.LabelEncoder` per categorical,
which every ONNX runtime implements, which the int8 quantizer leaves alone and which serialise to
the same bytes on every run; and null and unseen-category semantics are exactly those of
`model.features.encode`, which the parity check compares against on raw rows.

    numeric (rows, k) float32  --IsNaN/Where(fill)--Sub(mean)--Div(std)-------------------+
    categorical (rows, m) str  --Gather(col j)--LabelEncoder(code)--Equal(0..w)--Cast--+--Concat
                                                                 -> encoded (rows, n_encoded)
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from model.features import CategoricalEncoding, FeatureSchema
from model.inputs import CATEGORICAL_INPUT, NULL_CATEGORY, NUMERIC_INPUT

ENCODED = "encoded"
ML_DOMAIN = "ai.onnx.ml"
ML_OPSET = 3
_PREFIX = "preprocess/"


def _constant(name: str, values: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(values, _PREFIX + name)


def _category_nodes(
    index: int, encoding: CategoricalEncoding
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    """Column `index` of the string input -> its one-hot block (rows, width) float32."""
    p = f"{_PREFIX}cat{index}/"
    keys = list(encoding.categories)
    values = list(range(len(keys)))
    if encoding.missing_column or encoding.fill is not None:
        keys.append(NULL_CATEGORY)
        values.append(encoding.code(NULL_CATEGORY))
    width = len(encoding.columns)
    default = width - 1 if encoding.other_column else -1
    initializers = [
        numpy_helper.from_array(np.array([index], dtype=np.int64), p + "column"),
        numpy_helper.from_array(np.arange(width, dtype=np.int64)[None, :], p + "slots"),
    ]
    nodes = [
        helper.make_node("Gather", [CATEGORICAL_INPUT, p + "column"], [p + "raw"], axis=1),
        helper.make_node(
            "LabelEncoder",
            [p + "raw"],
            [p + "code"],
            domain=ML_DOMAIN,
            keys_strings=keys,
            values_int64s=values,
            default_int64=default,
        ),
        helper.make_node("Equal", [p + "code", p + "slots"], [p + "hot"]),
        helper.make_node("Cast", [p + "hot"], [p + "onehot"], to=TensorProto.FLOAT),
    ]
    return nodes, initializers, p + "onehot"


def preprocessing_graph(schema: FeatureSchema, opset: int, ir_version: int) -> onnx.ModelProto:
    """Raw inputs (see model/inputs.py) -> `encoded` (rows, n_encoded) float32."""
    nodes: list[onnx.NodeProto] = []
    initializers: list[onnx.TensorProto] = []
    inputs: list[onnx.ValueInfoProto] = []
    parts: list[str] = []
    if schema.numeric:
        width = len(schema.numeric)
        inputs.append(
            helper.make_tensor_value_info(NUMERIC_INPUT, TensorProto.FLOAT, ["batch", width])
        )
        for name in ("fill", "mean", "std"):
            values = np.array([getattr(item, name) for item in schema.numeric], dtype=np.float32)
            initializers.append(_constant(name, values))
        nodes += [
            helper.make_node("IsNaN", [NUMERIC_INPUT], [_PREFIX + "isnan"]),
            helper.make_node(
                "Where",
                [_PREFIX + "isnan", _PREFIX + "fill", NUMERIC_INPUT],
                [_PREFIX + "filled"],
            ),
            helper.make_node("Sub", [_PREFIX + "filled", _PREFIX + "mean"], [_PREFIX + "centred"]),
            helper.make_node("Div", [_PREFIX + "centred", _PREFIX + "std"], [_PREFIX + "scaled"]),
        ]
        parts.append(_PREFIX + "scaled")
    if schema.categorical:
        inputs.append(
            helper.make_tensor_value_info(
                CATEGORICAL_INPUT, TensorProto.STRING, ["batch", len(schema.categorical)]
            )
        )
        for index, encoding in enumerate(schema.categorical):
            more_nodes, more_initializers, output = _category_nodes(index, encoding)
            nodes += more_nodes
            initializers += more_initializers
            parts.append(output)
    nodes.append(helper.make_node("Concat", parts, [ENCODED], axis=1))
    output = helper.make_tensor_value_info(
        ENCODED, TensorProto.FLOAT, ["batch", len(schema.encoded_names)]
    )
    graph = helper.make_graph(nodes, "preprocess", inputs, [output], initializers)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(ML_DOMAIN, ML_OPSET)],
        producer_name="mlops-starter",
    )
    model.ir_version = ir_version
    onnx.checker.check_model(model)
    return model


def with_preprocessing(network: onnx.ModelProto, schema: FeatureSchema) -> onnx.ModelProto:
    """One model: raw inputs -> preprocessing -> the network's `encoded` input -> probabilities."""
    opset = next(item.version for item in network.opset_import if item.domain in ("", "ai.onnx"))
    pre = preprocessing_graph(schema, opset, network.ir_version)
    merged = onnx.compose.merge_models(pre, network, io_map=[(ENCODED, ENCODED)])
    # merge_models lists a domain once per model; tools (the int8 quantizer) expect it once.
    unique = {(item.domain or "ai.onnx"): item.version for item in merged.opset_import}
    del merged.opset_import[:]
    merged.opset_import.extend(
        helper.make_opsetid("" if domain == "ai.onnx" else domain, version)
        for domain, version in unique.items()
    )
    merged.producer_name = network.producer_name
    merged.producer_version = network.producer_version
    onnx.checker.check_model(merged)
    return merged
