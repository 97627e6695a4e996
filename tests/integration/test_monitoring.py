"""The real service logs sampled predictions and feedback; `drift` reads those logs."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml

from serving.bento_server import BentoServer
from serving.prediction_log import log_files
from tests.pipeline_fixtures import VENV_BIN, run

pytestmark = pytest.mark.slow


def _serve_and_send(repo: Path, logs: Path, rows: list[dict[str, float]]) -> list[str]:
    """Send each row as one request; returns the x-request-id of each answer."""
    env = {"BENTOML_HOME": str(repo / ".bentoml"), "PREDICTION_LOG_DIR": str(logs)}
    with BentoServer(cwd=repo, env=env) as server, httpx.Client(timeout=10) as client:

        def send(row: dict[str, float]) -> str:
            response = client.post(f"{server.url}/predict", json={"rows": [row]})
            response.raise_for_status()
            return response.headers["x-request-id"]

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(send, rows))
        for request_id in ids[:5]:
            feedback = {"request_id": request_id, "label": "benign"}
            assert client.post(f"{server.url}/feedback", json=feedback).status_code == 200
        bad = client.post(f"{server.url}/feedback", json={"request_id": "x", "label": "maybe"})
        assert bad.status_code == 400
    return ids  # leaving the block stops the server, which flushes the log


@pytest.fixture
def logged_repo(repo_copy: Path) -> Path:
    params = yaml.safe_load((repo_copy / "params.yaml").read_text())
    params["monitoring"].update(sample_rate=1.0, flush_interval_s=0.2)
    (repo_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return repo_copy


def _rows(repo: Path, count: int) -> list[dict[str, float]]:
    frame = pd.read_csv(repo / "data/prepared/test.csv").drop(columns="diagnosis")
    records: list[dict[str, float]] = frame.astype(float).to_dict("records")
    return [records[i % len(records)] for i in range(count)]


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
    assert set(predictions[0]["features"]) >= {"mean_radius", "worst_area"}


def test_drift_names_a_feature_that_shifted_in_live_traffic(
    logged_repo: Path, tmp_path: Path
) -> None:
    rows = _rows(logged_repo, 300)
    for row in rows:
        row["worst_area"] *= 1.6  # an upstream unit change, still inside the contract's range
    _serve_and_send(logged_repo, tmp_path / "logs", rows)
    python = str(VENV_BIN / "python")
    out = tmp_path / "drift"
    result = run(
        logged_repo, python, "-m", "monitoring.drift", "--logs", str(tmp_path / "logs"),
        "--out", str(out), check=False,
    )  # fmt: skip
    assert result.returncode == 3, result.stdout + result.stderr
    report = json.loads((out / "drift.json").read_text())
    assert "worst_area" in report["drifted_features"]
    assert "```mermaid" in (out / "drift.md").read_text()
