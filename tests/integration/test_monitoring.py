"""The real service logs sampled predictions and feedback; `drift` reads those logs.

Nothing here knows the dataset: rows come from the prepared test split, feature kinds from
features.json and labels from the model's metadata (models/model.json).
"""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from model.features import FeatureSchema, read_split
from rollout.bento_server import BentoServer
from serving.prediction_log import log_files
from serving.schema import TRAFFIC_SOURCE_HEADER
from tests.pipeline_fixtures import VENV_BIN, run

pytestmark = pytest.mark.slow

Row = dict[str, Any]


def _schema(repo: Path) -> FeatureSchema:
    return FeatureSchema.load(repo / "data/prepared/features.json")


def _labels(repo: Path) -> list[str]:
    labels: list[str] = json.loads((repo / "models/model.json").read_text())["labels"]
    return labels


def _serve_and_send(
    repo: Path, logs: Path, rows: list[Row], load_test_rows: Sequence[Row] = ()
) -> list[str]:
    """Send each row as one request (then `load_test_rows` marked as load-test traffic);
    returns the x-request-id of each answer to `rows`."""
    env = {"BENTOML_HOME": str(repo / ".bentoml"), "PREDICTION_LOG_DIR": str(logs)}
    labels = _labels(repo)
    with BentoServer(cwd=repo, env=env) as server, httpx.Client(timeout=10) as client:

        def send(row: Row, source: str | None = None) -> str:
            headers = {TRAFFIC_SOURCE_HEADER: source} if source else {}
            response = client.post(f"{server.url}/predict", json={"rows": [row]}, headers=headers)
            response.raise_for_status()
            return response.headers["x-request-id"]

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(send, rows))
            list(pool.map(send, load_test_rows, ["load-test"] * len(load_test_rows)))
        for request_id in ids[:5]:
            feedback = {"request_id": request_id, "label": labels[0]}
            assert client.post(f"{server.url}/feedback", json=feedback).status_code == 200
        not_a_label = "-".join(labels) + "?"  # longer than any one label, so none of them
        bad = client.post(f"{server.url}/feedback", json={"request_id": "x", "label": not_a_label})
        assert bad.status_code == 400
    return ids  # leaving the block stops the server, which flushes the log


@pytest.fixture
def logged_repo(repo_copy: Path) -> Path:
    params = yaml.safe_load((repo_copy / "params.yaml").read_text())
    params["monitoring"].update(sample_rate=1.0, flush_interval_s=0.2)
    (repo_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return repo_copy


def _plain(value: Any) -> Any:
    """A split cell as a client sends it: null for missing, plain JSON types."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _rows(repo: Path, count: int) -> list[Row]:
    """`count` raw rows of the prepared test split (repeated as needed), keyed by feature."""
    frame, _ = read_split(repo / "data/prepared/test.csv", _schema(repo))
    records = [
        {name: _plain(value) for name, value in record.items()}
        for record in frame.to_dict("records")
    ]
    return [records[i % len(records)] for i in range(count)]


def _shift_one_feature(repo: Path, rows: list[Row]) -> str:
    """Move one feature's live distribution while staying inside the contract: a numeric
    feature takes only values from the top quarter of its training values, any other kind
    only its most common training value. Returns the feature's name."""
    schema = _schema(repo)
    train, _ = read_split(repo / "data/prepared/train.csv", schema)
    numeric = [item.name for item in schema.inputs if item.kind == "numeric"]
    name = numeric[0] if numeric else schema.feature_names[0]
    values = train[name].dropna()
    if numeric:
        pool = [_plain(value) for value in values[values >= values.quantile(0.75)]]
    else:
        pool = [_plain(values.mode().iloc[0])]
    for index, row in enumerate(rows):
        row[name] = pool[index % len(pool)]
    return name


def test_predictions_and_feedback_are_logged_with_request_ids(
    logged_repo: Path, tmp_path: Path
) -> None:
    ids = _serve_and_send(logged_repo, tmp_path / "logs", _rows(logged_repo, 40))
    records = [
        json.loads(line)
        for path in log_files(tmp_path / "logs")
        for line in path.read_text().splitlines()
    ]
    predictions = [r for r in records if r["kind"] == "prediction"]
    feedback = [r for r in records if r["kind"] == "feedback"]
    assert sorted(r["request_id"] for r in predictions) == sorted(ids)
    assert {r["request_id"] for r in feedback} == set(ids[:5])
    assert set(predictions[0]["features"]) == set(_schema(logged_repo).feature_names)


def _drift(repo: Path, logs: Path, out: Path) -> subprocess.CompletedProcess[str]:
    python = str(VENV_BIN / "python")
    return run(
        repo, python, "-m", "monitoring.drift", "data/prepared", "models/model.onnx",
        "reports/metrics.json", "--logs", str(logs), "--out", str(out),
        check=False,
    )  # fmt: skip


def test_drift_judges_production_traffic_only_and_says_what_it_left_out(
    logged_repo: Path, tmp_path: Path
) -> None:
    """Clean production rows beside a shifted load test: no retraining, the load test counted."""
    load_test = _rows(logged_repo, 300)
    _shift_one_feature(logged_repo, load_test)
    _serve_and_send(logged_repo, tmp_path / "logs", _rows(logged_repo, 300), load_test)
    result = _drift(logged_repo, tmp_path / "logs", tmp_path / "drift")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "drift" / "drift.json").read_text())
    assert report["window"]["rows"] == 300
    assert report["window"]["other_sources"] == {"load-test": 300}
    assert report["window"]["version"] is not None
    assert "left out: 300 load-test" in result.stdout


def test_drift_names_a_feature_that_shifted_in_live_traffic(
    logged_repo: Path, tmp_path: Path
) -> None:
    rows = _rows(logged_repo, 300)
    shifted = _shift_one_feature(logged_repo, rows)
    _serve_and_send(logged_repo, tmp_path / "logs", rows)
    out = tmp_path / "drift"
    result = _drift(logged_repo, tmp_path / "logs", out)
    assert result.returncode == 3, result.stdout + result.stderr
    report = json.loads((out / "drift.json").read_text())
    assert shifted in report["drifted_features"]
    assert json.dumps(shifted, ensure_ascii=False) in result.stdout  # named on the terminal too
    assert "```mermaid" in (out / "drift.md").read_text()
