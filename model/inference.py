"""Running the exported ONNX model with onnxruntime: what gates, benchmarks and serving share.

Torch-free on purpose (serving imports it). The graph's contract: input `features`, float32,
(batch, n_features) raw values; output `probabilities`, (batch, n_classes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"


def onnx_session(model: bytes | Path, threads: int = 1) -> ort.InferenceSession:
    """A CPU session; `threads` intra-op threads and no inter-op parallelism (tiny graphs)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def predict_proba(session: ort.InferenceSession, features: np.ndarray) -> np.ndarray:
    # (rows, n_features) float32 -> (rows, n_classes)
    result: np.ndarray = session.run([OUTPUT_NAME], {INPUT_NAME: features})[0]
    return result
