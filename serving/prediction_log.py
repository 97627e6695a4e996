"""Prediction logging off the hot path: sampled records go to a bounded in-memory buffer, and a
background thread writes them as JSON lines to rotating files.

The request path only samples and appends to a deque (O(1), no I/O, no serialisation); when the
buffer is full, new records are dropped and counted rather than slowing requests or growing
memory. Files rotate by size and the oldest are deleted, so the disk use is bounded too.
Labels that arrive later (POST /feedback) are logged with the request id they belong to, which
is how `make drift` joins them to predictions; they have a bounded buffer of their own, so a
flood of predictions never crowds them out (nor the reverse).

A prediction record keeps the row as the client sent it, `{"features": {column: value}}`, with
strings, booleans and nulls as they came, and the answer as the client got it (`probabilities`
keyed by label, so records of models with other classes never mix up columns): drift reads
both by name. `source` says what kind of traffic it was (`X-Traffic-Source`): drift judges
production traffic only.

Nothing a request can put in a record stops the log: a record that cannot be serialised is
dropped and counted, a failed write is counted and retried on the next flush, and a writer
thread that died anyway is restarted by the next record or readiness check. A writer that has
not come round for `stall_after_s` is reported unhealthy (`healthy()`, which /readyz asks).
Every drop and restart is reported to `on_event(name, count)` (the service's Prometheus
counters).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

CURRENT = "predictions.jsonl"
# What `on_event` is told: records dropped for each reason, and writer restarts.
BUFFER_FULL = "buffer_full"
FEEDBACK_FULL = "feedback_full"
UNSERIALISABLE = "unserialisable"
WRITE_FAILED = "write_failed"
WRITER_RESTARTED = "writer_restarted"
DROP_REASONS = (BUFFER_FULL, FEEDBACK_FULL, UNSERIALISABLE, WRITE_FAILED)
# Records encoded while the writer holds the GIL at a stretch. The writer gives the GIL back
# only every 5 ms (sys.getswitchinterval) unless it yields: encoding a 0.25 s flush at 12,000
# req/s (600 records, about 2 ms) in one go held the event loop that long, and was the service's
# p99 at 8 connections (3.6 ms; 0.95 ms with the log off). A slice of 64 takes about 0.2 ms.
SLICE_RECORDS = 64
MIN_STALL_S = 30.0  # a writer quiet for longer than this (or 10 flush intervals) is stalled

Event = Callable[[str, int], None]
logger = logging.getLogger(__name__)


def _ignore(name: str, count: int) -> None:
    """The default `on_event`: counts stay on the log's own attributes only."""


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
        on_event: Event = _ignore,
    ) -> None:
        self.folder = folder
        self.sample_rate = sample_rate
        self.buffer: deque[dict[str, Any]] = deque()
        self.feedback_buffer: deque[dict[str, Any]] = deque()
        self.buffer_rows = buffer_rows
        self.flush_interval_s = flush_interval_s
        self.stall_after_s = max(MIN_STALL_S, 10 * flush_interval_s)
        self.max_file_bytes = max_file_bytes
        self.max_files = max_files
        self.on_event = on_event
        self.dropped = 0  # every record dropped, whatever the reason
        self.written = 0
        self.restarts = 0
        self.heartbeat = time.monotonic()  # the writer's last round
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
        source: str = "production",
    ) -> None:
        """Queue one record per row: the row ({column: value}, null as None) and the answer it
        got ({"label", "probabilities" by label, "model_version"}). The caller decides sampling
        per request (`sampled()`)."""
        self._keep_writer_alive()
        if len(self.buffer) + len(rows) > self.buffer_rows:
            self._drop(BUFFER_FULL, len(rows))
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
                    "source": source,
                    "latency_ms": latency_ms,
                    "features": values,
                    "probabilities": answer["probabilities"],
                    "label": answer["label"],
                }
            )

    def feedback(self, request_id: str, row: int, label: str) -> None:
        """A true label for an earlier prediction, in a buffer of its own (as bounded)."""
        self._keep_writer_alive()
        if len(self.feedback_buffer) >= self.buffer_rows:
            self._drop(FEEDBACK_FULL, 1)
            return
        self.feedback_buffer.append(
            {"kind": "feedback", "ts": time.time(), "request_id": request_id, "row": row,
             "true_label": label}
        )  # fmt: skip

    def _drop(self, reason: str, count: int) -> None:
        self.dropped += count
        self.on_event(reason, count)

    # --- the writer's health --------------------------------------------------------------

    def _keep_writer_alive(self) -> None:
        """Restart a writer that died (it never should); a no-op before `start()` and after
        `close()`."""
        thread = self._thread
        if thread is None or thread.is_alive() or self._stop.is_set():
            return
        self.restarts += 1
        self.on_event(WRITER_RESTARTED, 1)
        logger.error("the prediction-log writer had died: restarted")
        self._spawn()

    def healthy(self) -> bool:
        """Whether the writer is running and came round recently (a dead one is restarted)."""
        self._keep_writer_alive()
        if self._thread is None:
            return True  # not started: nothing is expected of it
        return time.monotonic() - self.heartbeat < self.stall_after_s

    # --- background: the I/O ---------------------------------------------------------------

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._spawn()

    def _spawn(self) -> None:
        self.heartbeat = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self.heartbeat = time.monotonic()
            self._flush_logging_errors()
        self._flush_logging_errors()

    def _flush_logging_errors(self) -> None:
        try:
            self.flush()
        except Exception:  # flush counts what it can; anything else must not end the thread
            logger.exception("the prediction log could not flush")

    def flush(self) -> int:
        """Write what is buffered; returns the number of records written."""
        lines: list[bytes] = []
        for buffer in (self.buffer, self.feedback_buffer):
            # A snapshot's worth, in slices: between two, the GIL goes back to the event loop.
            for _ in range(0, len(buffer), SLICE_RECORDS):
                self._encode(_take(buffer, SLICE_RECORDS), lines)
                time.sleep(0)
        if not lines:
            return 0
        path = self.folder / CURRENT
        try:
            self.folder.mkdir(parents=True, exist_ok=True)  # someone may have removed it
            with path.open("ab") as handle:
                handle.write(b"\n".join(lines) + b"\n")
        except OSError:
            logger.exception("the prediction log could not write %d records", len(lines))
            self._drop(WRITE_FAILED, len(lines))
            return 0
        self.written += len(lines)
        if path.stat().st_size > self.max_file_bytes:
            self._rotate(path)
        return len(lines)

    def _encode(self, records: list[dict[str, Any]], lines: list[bytes]) -> None:
        for record in records:
            try:
                lines.append(orjson.dumps(record))
            except TypeError:  # orjson's JSONEncodeError: a value JSON cannot hold
                self._drop(UNSERIALISABLE, 1)

    def _rotate(self, path: Path) -> None:
        path.rename(self.folder / f"predictions-{time.time_ns()}.jsonl")
        rotated = sorted(self.folder.glob("predictions-*.jsonl"))
        for old in rotated[: max(0, len(rotated) - (self.max_files - 1))]:
            old.unlink(missing_ok=True)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._flush_logging_errors()


def _take(buffer: deque[dict[str, Any]], most: int) -> list[dict[str, Any]]:
    """Up to `most` records from `buffer`, oldest first (appends from other threads stay)."""
    records: list[dict[str, Any]] = []
    while buffer and len(records) < most:
        records.append(buffer.popleft())
    return records


def log_files(folder: Path) -> list[Path]:
    """Every log file, oldest first (rotated files, then the current one)."""
    files = sorted(folder.glob("predictions-*.jsonl"))
    current = folder / CURRENT
    return [*files, current] if current.exists() else files
