"""The prediction log stays bounded in memory and on disk, and writes what drift reads."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from serving.prediction_log import (
    SLICE_RECORDS,
    UNSERIALISABLE,
    WRITER_RESTARTED,
    PredictionLog,
    log_files,
)

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
    rotated = sorted(tmp_path.glob("predictions-*.jsonl"))
    # max_files - 1 rotated files, beside the current one unless the last flush just rotated it:
    # the limit is reached, not merely respected by an empty folder
    assert len(rotated) == 2
    assert set(files) - set(rotated) <= {tmp_path / "predictions.jsonl"}
    assert all(path.stat().st_size > 2_000 for path in rotated)  # each rotated once past the size
    assert sum(path.stat().st_size for path in files) < 3 * 2_000 + 5_000
    kept = sum(len(path.read_bytes().splitlines()) for path in files)
    assert 0 < kept < log.written == 200  # the oldest records were deleted


def test_a_file_is_rotated_only_once_it_is_past_the_size_limit(tmp_path: Path) -> None:
    log = _log(tmp_path, max_file_bytes=10_000, max_files=3)
    _record(log, 1)
    log.flush()
    assert [path.name for path in log_files(tmp_path)] == ["predictions.jsonl"]


def test_sampling_at_zero_logs_nothing_but_feedback_is_kept(tmp_path: Path) -> None:
    log = _log(tmp_path, sample_rate=0.0)
    assert not any(log.sampled() for _ in range(1000))
    log.feedback("r", 0, "yes")
    assert log.flush() == 1


def test_the_background_thread_flushes_without_being_asked(tmp_path: Path) -> None:
    log = _log(tmp_path, flush_interval_s=0.02)
    log.start()
    _record(log, 3)
    deadline = time.monotonic() + 10  # generous: the machine may be loaded
    while log.written < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    written_before_close = log.written
    assert log._thread is not None
    assert log._thread.is_alive()
    log.close()
    assert written_before_close == 3  # the thread wrote them; close() had nothing left to do
    assert not log._thread.is_alive()


def test_close_writes_what_the_thread_has_not_flushed_yet(tmp_path: Path) -> None:
    log = _log(tmp_path, flush_interval_s=60.0)  # the thread will not come round in this test
    log.start()
    _record(log, 3)
    assert log.written == 0
    log.close()
    assert log.written == 3
    assert len((tmp_path / "predictions.jsonl").read_bytes().splitlines()) == 3


def test_each_prediction_record_says_which_traffic_it_was(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.record("r", [dict(ROW)], [dict(ANSWER)], 1.0, "load-test")
    _record(log, 1)
    log.flush()
    lines = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert [line["source"] for line in lines] == ["load-test", "production"]


def test_a_record_json_cannot_hold_is_dropped_and_counted_not_fatal(tmp_path: Path) -> None:
    events: list[tuple[str, int]] = []
    log = _log(tmp_path)
    log.on_event = lambda name, count: events.append((name, count))
    log.feedback("big", 2**64, "yes")  # orjson refuses integers over 64 bits
    _record(log, 2)
    assert log.flush() == 2
    assert events == [(UNSERIALISABLE, 1)]
    assert log.dropped == 1


def test_the_feedback_buffer_is_bounded_too(tmp_path: Path) -> None:
    log = _log(tmp_path, buffer_rows=5)
    for index in range(8):
        log.feedback(f"r{index}", 0, "yes")
    assert len(log.feedback_buffer) == 5
    assert log.dropped == 3


def test_feedback_is_kept_when_predictions_fill_their_buffer(tmp_path: Path) -> None:
    log = _log(tmp_path, buffer_rows=4)
    _record(log, 4)
    log.feedback("r", 0, "yes")
    assert log.flush() == 5


def test_a_write_that_fails_is_counted_and_the_next_flush_writes(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log folder should be")
    log = _log(blocker)
    _record(log, 2)
    assert log.flush() == 0
    assert log.dropped == 2
    blocker.unlink()
    _record(log, 1)
    assert log.flush() == 1


def test_a_dead_writer_is_restarted_by_the_next_record(tmp_path: Path) -> None:
    events: list[tuple[str, int]] = []
    log = _log(tmp_path, flush_interval_s=0.02)
    log.on_event = lambda name, count: events.append((name, count))
    log.start()
    log._stop.set()  # the writer ends as if it had died
    assert log._thread is not None
    log._thread.join(timeout=5)
    log._stop.clear()
    _record(log, 1)
    assert events == [(WRITER_RESTARTED, 1)]
    deadline = time.monotonic() + 5
    while log.written < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert log.written == 1
    log.close()


def test_a_stalled_writer_makes_the_log_unhealthy(tmp_path: Path) -> None:
    log = _log(tmp_path, flush_interval_s=0.02)
    log.start()
    assert log.healthy()
    log.heartbeat -= log.stall_after_s + 1  # as if the writer had not come round for that long
    assert not log.healthy()
    log.close()


# Anything a request can put in a record: the JSON values pydantic hands over, and worse.
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.binary(max_size=4)
    | st.builds(object),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.dictionaries(st.text(max_size=10), VALUES, max_size=4), max_size=4),
    feedback_row=st.integers(),
    source=st.text(max_size=20),
)
@example(rows=[], feedback_row=0, source="")  # nothing but the feedback record
@example(rows=[{"x": float("nan")}], feedback_row=-1, source="production")  # JSON cannot hold NaN
def test_every_record_is_written_or_counted_and_the_writer_survives(
    rows: list[dict[str, Any]], feedback_row: int, source: str
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        log = _log(Path(folder), flush_interval_s=0.01)
        log.start()
        answers = [dict(ANSWER) for _ in rows]
        log.record("r", rows, answers, 1.0, source)
        log.feedback("r", feedback_row, "yes")
        deadline = time.monotonic() + 5
        while log.written + log.dropped < len(rows) + 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert log._thread is not None
        assert log._thread.is_alive()
        log.close()
        assert log.written + log.dropped == len(rows) + 1
        written = sum(len(path.read_bytes().splitlines()) for path in log_files(Path(folder)))
        assert written == log.written


def test_a_flush_yields_between_slices_and_leaves_later_records_for_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer hands the GIL back after every SLICE_RECORDS records (the event loop's tail
    depends on it), in order, and a flush ends even while requests keep adding records."""
    log = _log(tmp_path, buffer_rows=1_000, max_file_bytes=10_000_000)
    for index in range(3 * SLICE_RECORDS + 1):
        _record(log, 1, f"r{index}")
    yields = []

    def a_request_arrives(seconds: float) -> None:
        yields.append(seconds)
        _record(log, 1, "during the flush")

    monkeypatch.setattr(time, "sleep", a_request_arrives)
    written = log.flush()
    assert yields == [0, 0, 0, 0]  # as many slices as the records there were when it began
    text = (tmp_path / "predictions.jsonl").read_text(encoding="utf-8")
    ids = [json.loads(line)["request_id"] for line in text.splitlines()]
    first = [f"r{index}" for index in range(3 * SLICE_RECORDS + 1)]
    assert ids[: len(first)] == first  # in order
    later = ids[len(first) :] + [record["request_id"] for record in log.buffer]
    assert later == ["during the flush"] * 4  # written now or waiting, none lost
    assert written == len(ids)
