"""Prediction logging off the hot path: sampled records go to a bounded in-memory buffer, and a
background thread writes them as JSON lines to rotating files.

The request path only samples and appends to a deque (O(1), no I/O, no serialisation); when the
buffer is full, new records are dropped and counted rather than slowing requests or growing
memory. Files rotate by size and the oldest are deleted, so the disk use is bounded too.
Labels that arrive later (POST /feedback) are logged with the request id they belong to, which
is how `make drift` joins them to predictions.

A prediction record keeps the row as the client sent it, `{"features": {column: value}}`, with
strings, booleans and nulls as they came, and the answer as the client got it (`probabilities`
keyed by label, so records of models with other classes never mix up columns): drift reads
both by name.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

CURRENT = "predictions.jsonl"


class PredictionLog:
    def __init__(
        self,
        folder: Path,
        *,
        sample_rate: float,
        buffer_rows: int,
        flush_interval_s: float,
        max_file_bytes: int,
        max_files: int,
    ) -> None:
        self.folder = folder
        self.sample_rate = sample_rate
        self.buffer: deque[dict[str, Any]] = deque()
        self.buffer_rows = buffer_rows
        self.flush_interval_s = flush_interval_s
        self.max_file_bytes = max_file_bytes
        self.max_files = max_files
        self.dropped = 0
        self.written = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._random = random.Random()

    # --- request path: cheap -------------------------------------------------------------

    def sampled(self) -> bool:
        return self.sample_rate >= 1 or self._random.random() < self.sample_rate

    def record(
        self,
        request_id: str,
        rows: Sequence[dict[str, Any]],
        predictions: Sequence[dict[str, Any]],
        latency_ms: float,
    ) -> None:
        """Queue one record per row: the row ({column: value}, null as None) and the answer it
        got ({"label", "probabilities" by label, "model_version"}). The caller decides sampling
        per request (`sampled()`)."""
        if len(self.buffer) + len(rows) > self.buffer_rows:
            self.dropped += len(rows)
            return
        now = time.time()
        for row, (values, answer) in enumerate(zip(rows, predictions, strict=True)):
            self.buffer.append(
                {
                    "kind": "prediction",
                    "ts": now,
                    "request_id": request_id,
                    "row": row,
                    "model_version": answer["model_version"],
                    "latency_ms": latency_ms,
                    "features": values,
                    "probabilities": answer["probabilities"],
                    "label": answer["label"],
                }
            )

    def feedback(self, request_id: str, row: int, label: str) -> None:
        """A true label for an earlier prediction; always kept (it is rare and valuable)."""
        self.buffer.append(
            {"kind": "feedback", "ts": time.time(), "request_id": request_id, "row": row,
             "true_label": label}
        )  # fmt: skip

    # --- background: the I/O ---------------------------------------------------------------

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self.flush()
        self.flush()

    def flush(self) -> int:
        """Write what is buffered; returns the number of records written."""
        records = []
        while self.buffer:
            records.append(self.buffer.popleft())
        if not records:
            return 0
        # orjson: several times faster than json, so the GIL is held in shorter bursts.
        lines = [orjson.dumps(record) for record in records]
        path = self.folder / CURRENT
        with path.open("ab") as handle:
            handle.write(b"\n".join(lines) + b"\n")
        self.written += len(records)
        if path.stat().st_size > self.max_file_bytes:
            self._rotate(path)
        return len(records)

    def _rotate(self, path: Path) -> None:
        path.rename(self.folder / f"predictions-{time.time_ns()}.jsonl")
        rotated = sorted(self.folder.glob("predictions-*.jsonl"))
        for old in rotated[: max(0, len(rotated) - (self.max_files - 1))]:
            old.unlink(missing_ok=True)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()


def log_files(folder: Path) -> list[Path]:
    """Every log file, oldest first (rotated files, then the current one)."""
    files = sorted(folder.glob("predictions-*.jsonl"))
    current = folder / CURRENT
    return [*files, current] if current.exists() else files
