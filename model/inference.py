"""Running the exported ONNX model with onnxruntime: what gates, benchmarks and serving share.

Torch-free on purpose (serving imports it). The graph takes raw features laid out by
model/inputs.py (`numeric` float32, `categorical` strings) and returns `probabilities`,
(batch, n_classes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort

from model.inputs import OUTPUT_NAME, InputLayout, RawInput

INPUTS_PROPERTY = "raw_inputs"  # ONNX metadata: the graph's raw inputs, as JSON
LABELS_PROPERTY = "labels"  # ONNX metadata: class names in output order, as JSON

Feeds = Mapping[str, np.ndarray]


def onnx_session(model: bytes | Path, threads: int = 1) -> ort.InferenceSession:
    """A CPU session; `threads` intra-op threads and no inter-op parallelism (tiny graphs)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def predict_proba(session: ort.InferenceSession, feeds: Feeds) -> np.ndarray:
    # {"numeric": (rows, k) float32, "categorical": (rows, m) str} -> (rows, n_classes)
    result: np.ndarray = session.run([OUTPUT_NAME], dict(feeds))[0]
    return result


def layout_of(session: ort.InferenceSession) -> InputLayout | None:
    """The raw inputs an exported model declares in its own metadata (None for a model exported
    before models described themselves): what any consumer needs, given only the file."""
    described = session.get_modelmeta().custom_metadata_map.get(INPUTS_PROPERTY)
    if described is None:
        return None
    return InputLayout([RawInput.model_validate(item) for item in json.loads(described)])
