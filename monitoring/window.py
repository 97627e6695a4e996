"""The live window drift judges: one model version's latest production predictions, and every
labelled feedback.

Reads the JSON lines serving/prediction_log.py writes. A prediction record carries its row's raw
features as {feature: value} (null for a missing value), the probabilities per label, the
predicted label, the model version and the traffic source; a feedback record carries the true
label of an earlier (request_id, row). Only `"source": "production"` predictions are judged (a
record without a source is production: logs written before sources existed); load-test,
smoke-test, agreement and shadow traffic is counted and left out. Of production traffic, one
model version is judged: the one that answered the newest production record (the champion),
unless asked for another.
"""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from monitoring.report import WindowSummary
from serving.prediction_log import log_files

PRODUCTION = "production"
PREDICTION_COLUMNS = ["request_id", "row", "label", "probabilities"]
FEEDBACK_COLUMNS = ["request_id", "row", "true_label"]


@dataclass(frozen=True)
class Window:
    """Logged rows, kept apart from their bookkeeping so any feature name is safe."""

    features: pd.DataFrame  # (rows, features): raw values; a feature absent from a record is null
    predictions: pd.DataFrame  # (rows, 4): PREDICTION_COLUMNS, row for row with `features`
    feedback: pd.DataFrame  # FEEDBACK_COLUMNS, every feedback record in the log
    version: str | None = None  # the model version whose rows these are
    first_ts: float | None = None  # unix seconds of the oldest and newest row
    last_ts: float | None = None
    other_sources: dict[str, int] = field(default_factory=dict)  # prediction records left out
    other_versions: dict[str, int] = field(default_factory=dict)  # production, other versions

    def __len__(self) -> int:
        return len(self.features)

    def summary(self) -> WindowSummary:
        return WindowSummary(
            version=self.version,
            rows=len(self),
            first_ts=self.first_ts,
            last_ts=self.last_ts,
            other_sources=dict(self.other_sources),
            other_versions=dict(self.other_versions),
        )


def source_of(record: dict[str, Any]) -> str:
    """The record's traffic source; none written means production (older logs)."""
    source = record.get("source")
    return source if isinstance(source, str) and source else PRODUCTION


def _version_of(record: dict[str, Any]) -> str | None:
    version = record.get("model_version")
    return None if version is None else str(version)


def _ts(record: dict[str, Any]) -> float | None:
    ts = record.get("ts")
    return float(ts) if isinstance(ts, int | float) else None


def window_of(
    records: Iterable[dict[str, Any]],
    feature_names: Sequence[str],
    window_rows: int,
    version: str | None = None,
) -> Window:
    """The latest `window_rows` production predictions of `version` (default: the version of
    the newest production prediction) and all feedback records, in log order."""
    latest: dict[str | None, deque[dict[str, Any]]] = {}
    production: Counter[str | None] = Counter()
    other_sources: Counter[str] = Counter()
    feedback: list[dict[str, Any]] = []
    newest: tuple[float, int] | None = None  # (ts, position in the log) of the newest production
    champion: str | None = None
    for position, record in enumerate(records):
        kind = record.get("kind")
        if kind == "feedback":
            feedback.append(record)
        if kind != "prediction":
            continue
        source = source_of(record)
        if source != PRODUCTION:
            other_sources[source] += 1
            continue
        record_version = _version_of(record)
        production[record_version] += 1
        latest.setdefault(record_version, deque(maxlen=window_rows)).append(record)
        key = (_ts(record) or float("-inf"), position)
        if newest is None or key >= newest:
            newest, champion = key, record_version
    judged = version if version is not None else champion
    predictions = list(latest.get(judged, ()))
    stamps = [ts for ts in map(_ts, predictions) if ts is not None]
    return Window(
        features=pd.DataFrame(
            [record.get("features") or {} for record in predictions],
            columns=list(feature_names),
            dtype=object,
        ),
        predictions=pd.DataFrame(
            [[record.get(column) for column in PREDICTION_COLUMNS] for record in predictions],
            columns=PREDICTION_COLUMNS,
        ),
        feedback=pd.DataFrame(
            [[record.get(column) for column in FEEDBACK_COLUMNS] for record in feedback],
            columns=FEEDBACK_COLUMNS,
        ),
        version=judged,
        first_ts=min(stamps) if stamps else None,
        last_ts=max(stamps) if stamps else None,
        other_sources=dict(other_sources),
        other_versions={
            str(other): count for other, count in production.items() if other != judged
        },
    )


def read_records(folder: Path) -> Iterable[dict[str, Any]]:
    """Every record in the log folder, oldest first; a torn last line is skipped."""
    for path in log_files(folder):
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a partial line from a server stopped mid-write
            if isinstance(record, dict):
                yield record


def read_log(
    folder: Path, feature_names: Sequence[str], window_rows: int, version: str | None = None
) -> Window:
    return window_of(read_records(folder), feature_names, window_rows, version)
