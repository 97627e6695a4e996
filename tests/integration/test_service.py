"""The real BentoML service on loopback, serving the model the pipeline packaged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.inference import onnx_session, predict_proba
from serving.bento_server import BentoServer, NotReadyError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(pipeline_repo: Path) -> Iterator[BentoServer]:
    env = {"BENTOML_HOME": str(pipeline_repo / ".bentoml")}
    with BentoServer(cwd=pipeline_repo, env=env, ready_timeout_s=90) as running:
        yield running


@pytest.fixture(scope="module")
def test_rows(pipeline_repo: Path) -> tuple[list[dict[str, float]], np.ndarray]:
    frame = pd.read_csv(pipeline_repo / "data/prepared/test.csv").drop(columns="diagnosis")
    records: list[dict[str, float]] = frame.astype(float).to_dict("records")
    return records, frame.to_numpy(dtype=np.float32)


def _post(server: BentoServer, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/predict", json=body, timeout=10, **kwargs)


def test_predictions_match_the_offline_onnx_model_whatever_the_batching(
    server: BentoServer, pipeline_repo: Path, test_rows: tuple[list[dict[str, float]], np.ndarray]
) -> None:
    """Concurrent single-row requests (which the batcher merges) and one big request agree."""
    records, features = test_rows
    expected = predict_proba(onnx_session(pipeline_repo / "models/model.onnx"), features)
    labels = json.loads((pipeline_repo / "models/model.json").read_text())["labels"]
    with ThreadPoolExecutor(16) as pool:
        singles = list(pool.map(lambda row: _post(server, {"rows": [row]}).json()[0], records))
    together = _post(server, {"rows": records}).json()
    for answers in (singles, together):
        got = np.array([[answer["probabilities"][label] for label in labels] for answer in answers])
        assert [answer["label"] for answer in answers] == [labels[i] for i in expected.argmax(1)]
        assert np.abs(got - expected).max() <= 1e-6


def test_metadata_describes_the_served_model(server: BentoServer, pipeline_repo: Path) -> None:
    info = httpx.get(f"{server.url}/metadata", timeout=10).json()
    exported = json.loads((pipeline_repo / "models/model.json").read_text())
    assert info["feature_names"] == exported["feature_names"]
    assert info["onnx_sha256"] == exported["sha256"]
    assert info["model_version"].startswith("v1-")


def test_the_model_card_travels_with_the_model(server: BentoServer, pipeline_repo: Path) -> None:
    response = httpx.get(f"{server.url}/model-card", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/markdown")
    assert response.text == (pipeline_repo / "reports" / "model_card.md").read_text()


def test_metrics_count_predictions_by_label_and_version(server: BentoServer) -> None:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert 'predictions_total{label="' in text
    assert 'model_version="v1-' in text


BAD_VALUES = st.one_of(
    st.text(max_size=5),
    st.booleans(),
    st.none(),
    st.just("NaN"),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def bad_payloads(draw: st.DrawFn, features: list[str]) -> tuple[bytes, str]:
    """Bodies a careless or hostile client might send; each must get a 4xx, never a 5xx."""
    row = {name: 1.0 for name in features}
    kind = draw(st.sampled_from(["value", "missing", "extra", "rows", "json", "nan", "many"]))
    if kind == "value":
        row[draw(st.sampled_from(features))] = draw(BAD_VALUES)
        body = json.dumps({"rows": [row]})
    elif kind == "missing":
        del row[draw(st.sampled_from(features))]
        body = json.dumps({"rows": [row]})
    elif kind == "extra":
        row[draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in features))] = 1.0
        body = json.dumps({"rows": [row]})
    elif kind == "rows":
        body = json.dumps({"rows": draw(st.one_of(st.just([]), BAD_VALUES, st.just([1, 2])))})
    elif kind == "json":
        body = draw(st.sampled_from(["", "{", "[]", "null", '{"rows": [', "rows=1", '{"x": 1}']))
    elif kind == "nan":
        body = json.dumps({"rows": [row]}).replace(
            "1.0", draw(st.sampled_from(["NaN", "Infinity"])), 1
        )
    else:
        body = json.dumps({"rows": [row] * draw(st.integers(257, 400))})
    content_type = draw(
        st.sampled_from(["application/json", "text/plain", "application/octet-stream"])
    )
    return body.encode(), content_type


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_bad_payloads_get_a_4xx_naming_the_problem(
    server: BentoServer, data: st.DataObject
) -> None:
    features = httpx.get(f"{server.url}/metadata", timeout=10).json()["feature_names"]
    body, content_type = data.draw(bad_payloads(features))
    response = httpx.post(
        f"{server.url}/predict", content=body, headers={"content-type": content_type}, timeout=10
    )
    assert 400 <= response.status_code < 500, (body[:200], response.text[:300])


def test_a_bad_row_is_named_by_index_and_field(
    server: BentoServer, test_rows: tuple[list[dict[str, float]], np.ndarray]
) -> None:
    rows = [dict(row) for row in test_rows[0][:3]]
    rows[2]["mean_area"] = "large"  # type: ignore[assignment]
    response = _post(server, {"rows": rows})
    assert response.status_code == 400
    assert [error["loc"] for error in response.json()["detail"]] == [["rows", 2, "mean_area"]]


def test_an_oversized_body_gets_413(server: BentoServer) -> None:
    response = httpx.post(
        f"{server.url}/predict",
        content=b" " * 2_000_000,
        timeout=10,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413


def test_the_server_stays_healthy_after_bad_input(
    server: BentoServer, test_rows: tuple[list[dict[str, float]], np.ndarray]
) -> None:
    assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
    assert _post(server, {"rows": test_rows[0][:1]}).status_code == 200


def test_readyz_never_turns_200_without_a_model(pipeline_repo: Path, tmp_path: Path) -> None:
    """An empty model store: workers crash-loop, /readyz stays down, the deadline reports it."""
    server = BentoServer(cwd=pipeline_repo, env={"BENTOML_HOME": str(tmp_path)}, ready_timeout_s=8)
    with pytest.raises(NotReadyError, match="make package"), server:
        pass
    assert server.process is not None
    assert server.process.poll() is not None


def test_the_bento_is_built_offline_with_labels_and_no_torch(pipeline_repo: Path) -> None:
    built = json.loads((pipeline_repo / "reports/bento.json").read_text())
    bento = Path(built["path"])
    manifest = (bento / "bento.yaml").read_text()
    assert (bento / "src/serving/service.py").is_file()
    assert f"tag: {built['model_tag']}" in manifest  # packed from the model store on export
    for label in ("model_version", "git_commit", "data_md5"):
        assert label in built["labels"]
        assert label in manifest
    requirements = (bento / "env/python/requirements.txt").read_text()
    assert "onnxruntime" in requirements
    assert "torch" not in requirements
