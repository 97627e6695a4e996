"""The live window drift judges: the latest logged predictions and every labelled feedback.

Reads the JSON lines serving/prediction_log.py writes. A prediction record carries its row's raw
features as {feature: value} (null for a missing value), the probabilities per label and the
predicted label; a feedback record carries the true label of an earlier (request_id, row).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from serving.prediction_log import log_files

PREDICTION_COLUMNS = ["request_id", "row", "label", "probabilities"]
FEEDBACK_COLUMNS = ["request_id", "row", "true_label"]


@dataclass(frozen=True)
class Window:
    """Logged rows, kept apart from their bookkeeping so any feature name is safe."""

    features: pd.DataFrame  # (rows, features): raw values; a feature absent from a record is null
    predictions: pd.DataFrame  # (rows, 4): PREDICTION_COLUMNS, row for row with `features`
    feedback: pd.DataFrame  # FEEDBACK_COLUMNS, every feedback record in the log

    def __len__(self) -> int:
        return len(self.features)


def window_of(
    records: Iterable[dict[str, Any]], feature_names: Sequence[str], window_rows: int
) -> Window:
    """The latest `window_rows` prediction records and all feedback records, in log order."""
    predictions: deque[dict[str, Any]] = deque(maxlen=window_rows)
    feedback: list[dict[str, Any]] = []
    for record in records:
        if record.get("kind") == "prediction":
            predictions.append(record)
        elif record.get("kind") == "feedback":
            feedback.append(record)
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


def read_log(folder: Path, feature_names: Sequence[str], window_rows: int) -> Window:
    return window_of(read_records(folder), feature_names, window_rows)
