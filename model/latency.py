"""In-process latency of ONNX models, measured side by side so that machine noise cancels.

Shared machines drift by tens of percent within minutes, so a number measured now is compared
with a baseline measured in the same rounds: models take turns (order flipped every round), each
round yields a p50/p99 per model, and the median over rounds is reported.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from model.inference import Feeds
from model.inputs import OUTPUT_NAME

WARMUP_CALLS = 50
ROWS_PER_THROUGHPUT_SAMPLE = 4096


@dataclass(frozen=True)
class LatencyProfile:
    """Single-row latency and throughput of one model."""

    p50_ms: float
    p99_ms: float
    rows_per_second: dict[int, float]


def _rows(feeds: Feeds) -> int:
    return len(next(iter(feeds.values())))


def take(feeds: Feeds, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The same rows of every input tensor."""
    return {name: values[rows] for name, values in feeds.items()}


def _single_row_times(session: ort.InferenceSession, feeds: Feeds, calls: int) -> np.ndarray:
    """Seconds per call for `calls` single-row predictions, cycling through the rows."""
    rows = [take(feeds, np.array([index])) for index in range(_rows(feeds))]
    times = np.empty(calls)
    outputs = [OUTPUT_NAME]
    for call in range(calls):
        feed = rows[call % len(rows)]
        start = time.perf_counter()
        session.run(outputs, feed)
        times[call] = time.perf_counter() - start
    return times


def _rows_per_second(session: ort.InferenceSession, feeds: Feeds, batch: int) -> float:
    feed = take(feeds, np.arange(batch) % _rows(feeds))
    calls = max(3, ROWS_PER_THROUGHPUT_SAMPLE // batch)
    outputs = [OUTPUT_NAME]
    start = time.perf_counter()
    for _ in range(calls):
        session.run(outputs, feed)
    return calls * batch / (time.perf_counter() - start)


def measure_side_by_side(
    models: Mapping[str, tuple[ort.InferenceSession, Feeds]],
    *,
    rounds: int,
    calls_per_round: int,
    batch_sizes: tuple[int, ...],
) -> dict[str, LatencyProfile]:
    """Interleaved rounds over every model, each fed the same rows laid out for its own inputs;
    medians over rounds of per-round percentiles."""
    names = list(models)
    for name in names:
        _single_row_times(*models[name], WARMUP_CALLS)
    p50: dict[str, list[float]] = {name: [] for name in names}
    p99: dict[str, list[float]] = {name: [] for name in names}
    throughput: dict[str, dict[int, list[float]]] = {
        name: {batch: [] for batch in batch_sizes} for name in names
    }
    for round_index in range(rounds):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            times = _single_row_times(*models[name], calls_per_round)
            p50[name].append(float(np.percentile(times, 50)) * 1e3)
            p99[name].append(float(np.percentile(times, 99)) * 1e3)
            for batch in batch_sizes:
                throughput[name][batch].append(_rows_per_second(*models[name], batch))
    return {
        name: LatencyProfile(
            p50_ms=statistics.median(p50[name]),
            p99_ms=statistics.median(p99[name]),
            rows_per_second={b: statistics.median(v) for b, v in throughput[name].items()},
        )
        for name in names
    }
