"""Training gives the same weight and ONNX bytes whichever vector unit the CPU has.

Each run is a fresh interpreter with ATen pinned to one CPU capability (`default` emulates a CPU
without AVX, `avx2` one without AVX-512): the kernels differ, the bytes must not.
Run as a module, this file trains once and prints the sha256 of the weights and the ONNX model.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CAPABILITIES = ("default", "avx2", "avx512")


def _supported(capability: str) -> bool:
    """ATen falls back silently to a lower level the CPU lacks: compare only real ones."""
    if capability == "default":
        return True
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return {"avx2": " avx2", "avx512": " avx512f"}[capability] in flags


def train_and_hash() -> dict[str, str]:
    """Train a small network on the mixed table and hash its checkpoint and ONNX bytes."""
    # model.train first: it pins ATen's kernels, which holds only before torch loads.
    train = importlib.import_module("model.train").train
    from model.export import to_onnx
    from model.features import encode, fit_schema, label_codes
    from model.network import checkpoint_bytes
    from model.params import TrainParams
    from tests.tables import mixed_contract, mixed_frame

    contract = mixed_contract()
    raw = mixed_frame(rows=300, seed=3)
    schema = fit_schema(raw, contract)
    params = TrainParams(
        seed=7, hidden_units=(32, 16), epochs=40, learning_rate=0.01, weight_decay=0.001
    )
    network, _ = train(encode(raw, schema), label_codes(raw, schema), schema, params)
    frame = raw.loc[:, list(contract.feature_names)]
    return {
        "weights": hashlib.sha256(checkpoint_bytes(network)).hexdigest(),
        "onnx": hashlib.sha256(to_onnx(network, schema, frame, opset=18)).hexdigest(),
    }


def _hashes_under(capability: str) -> dict[str, str]:
    env = {**os.environ, "ATEN_CPU_CAPABILITY": capability, "PYTHONHASHSEED": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "tests.unit.test_reproducible_training"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    weights, onnx = result.stdout.split()[-2:]
    return {"weights": weights, "onnx": onnx}


@pytest.mark.slow
def test_weights_and_onnx_bytes_match_across_cpu_capabilities() -> None:
    """default, AVX2 and AVX-512 kernels train the very same bytes."""
    capabilities = [capability for capability in CAPABILITIES if _supported(capability)]
    hashes = {capability: _hashes_under(capability) for capability in capabilities}
    assert len({tuple(sorted(h.items())) for h in hashes.values()}) == 1, hashes


if __name__ == "__main__":
    digests = train_and_hash()
    print(digests["weights"], digests["onnx"])
