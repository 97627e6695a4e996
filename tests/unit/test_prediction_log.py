"""The prediction log stays bounded in memory and on disk, and writes what drift reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from serving.prediction_log import PredictionLog, log_files

# A raw row as a client sends it: odd column names, a string, a boolean and a null.
ROW: dict[str, Any] = {"Size (cm)": 1.5, "Région": "north", "Is Active": True, "weight.kg": None}
# The answer it got, as the client got it.
ANSWER: dict[str, Any] = {
    "label": "blue/green",
    "probabilities": {"ämber": 0.2, "blue/green": 0.7, "red.0": 0.1},
    "model_version": "v1-abc",
}


def _log(folder: Path, **overrides: float) -> PredictionLog:
    settings = {
        "sample_rate": 1.0,
        "buffer_rows": 100,
        "flush_interval_s": 60.0,
        "max_file_bytes": 10_000,
        "max_files": 3,
    } | overrides
    return PredictionLog(folder, **settings)  # type: ignore[arg-type]


def _record(log: PredictionLog, rows: int, request_id: str = "r") -> None:
    log.record(request_id, [dict(ROW)] * rows, [dict(ANSWER)] * rows, 1.5)


def test_records_are_written_as_json_lines_drift_can_read(tmp_path: Path) -> None:
    log = _log(tmp_path)
    _record(log, 2, "req-1")
    log.feedback("req-1", 1, "no")
    assert log.flush() == 3
    text = (tmp_path / "predictions.jsonl").read_text(encoding="utf-8")
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["features"] == ROW  # strings, booleans and nulls as sent, by column name
    assert lines[0] == lines[0] | ANSWER  # the answer as the client got it, classes by name
    assert lines[1]["row"] == 1
    assert lines[2] == lines[2] | {"kind": "feedback", "request_id": "req-1", "true_label": "no"}


def test_a_full_buffer_drops_and_counts_instead_of_growing(tmp_path: Path) -> None:
    log = _log(tmp_path, buffer_rows=10)
    for _ in range(5):
        _record(log, 4)
    assert len(log.buffer) == 8
    assert log.dropped == 12


def test_files_rotate_and_the_oldest_are_deleted(tmp_path: Path) -> None:
    log = _log(tmp_path, max_file_bytes=2_000, max_files=3)
    for _ in range(40):
        _record(log, 5)
        log.flush()
    files = log_files(tmp_path)
    assert len(files) <= 3
    assert sum(path.stat().st_size for path in files) < 3 * 2_000 + 5_000


def test_sampling_at_zero_logs_nothing_but_feedback_is_kept(tmp_path: Path) -> None:
    log = _log(tmp_path, sample_rate=0.0)
    assert not any(log.sampled() for _ in range(1000))
    log.feedback("r", 0, "yes")
    assert log.flush() == 1


def test_the_background_thread_flushes_and_close_writes_the_rest(tmp_path: Path) -> None:
    log = _log(tmp_path, flush_interval_s=0.05)
    log.start()
    _record(log, 3)
    log.close()
    assert log.written == 3
