"""DVC stage `quantize`: an int8 copy of the ONNX model for devices, from onnxruntime's tools.

Dynamic quantization: weights stored as int8, activations quantized at run time, so no
calibration data is needed. The `gate` stage judges its accuracy drop, size and latency.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from onnxruntime.quantization import QuantType, quantize_dynamic

from model.atomic import atomic_path


def quantize(source: Path, target: Path) -> None:
    """Write the int8 model atomically (a failed run leaves no partial file)."""
    logging.getLogger("root").setLevel(logging.ERROR)  # the tool warns about pre-processing
    with atomic_path(target) as temporary:
        quantize_dynamic(source, temporary, weight_type=QuantType.QInt8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("onnx", type=Path, help="fp32 model written by `export`")
    parser.add_argument("int8", type=Path, help="where to write the int8 model")
    args = parser.parse_args(argv)
    quantize(args.onnx, args.int8)
    before, after = args.onnx.stat().st_size, args.int8.stat().st_size
    print(f"quantize: {args.int8} ({after} bytes, {after / before:.0%} of fp32)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
