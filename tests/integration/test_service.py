"""The real BentoML service on loopback, serving the model the pipeline packaged, and a model
trained on the generated mixed table (strings, booleans, nulls, three classes, odd names).

Feature names, kinds and labels come from the model's metadata (models/model.json), never from
the shipped table's column names."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.export import example_rows
from model.features import FeatureSchema, read_split
from model.inference import onnx_session, predict_proba
from model.inputs import InputLayout, RawInput
from rollout.bento_server import BentoServer, NotReadyError
from serving.prediction_log import log_files
from serving.schema import ErrorBody
from tests.pipeline_fixtures import copy_project, dvc, run
from tests.tables import shipped_raw_path, write_mixed_table

pytestmark = pytest.mark.slow


def _metadata(repo: Path) -> dict[str, Any]:
    info: dict[str, Any] = json.loads((repo / "models/model.json").read_text())
    return info


def _test_rows(repo: Path) -> list[dict[str, Any]]:
    """The test split as a client sends it: {feature: value}, null as None."""
    schema = FeatureSchema.load(repo / "data/prepared/features.json")
    frame, _ = read_split(repo / "data/prepared/test.csv", schema)
    return example_rows(frame, schema, count=len(frame))


def _offline(repo: Path, rows: list[dict[str, Any]]) -> np.ndarray:
    """What the exported ONNX file says about raw rows (an absent feature is a null)."""
    layout = InputLayout.from_metadata(_metadata(repo))
    complete = [{name: row.get(name) for name in layout.names} for row in rows]
    return predict_proba(onnx_session(repo / "models/model.onnx"), layout.feeds(complete))


def _post(server: BentoServer, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/predict", json=body, timeout=10, **kwargs)


def _probabilities(answers: list[dict[str, Any]], labels: list[str]) -> np.ndarray:
    return np.array([[answer["probabilities"][label] for label in labels] for answer in answers])


@pytest.fixture(scope="module")
def server(pipeline_repo: Path) -> Iterator[BentoServer]:
    env = {"BENTOML_HOME": str(pipeline_repo / ".bentoml")}
    with BentoServer(cwd=pipeline_repo, env=env, ready_timeout_s=90) as running:
        yield running


@pytest.fixture(scope="module")
def test_rows(pipeline_repo: Path) -> list[dict[str, Any]]:
    return _test_rows(pipeline_repo)


def test_predictions_match_the_offline_onnx_model_whatever_the_batching(
    server: BentoServer, pipeline_repo: Path, test_rows: list[dict[str, Any]]
) -> None:
    """Concurrent single-row requests (which the batcher merges) and one big request agree."""
    expected = _offline(pipeline_repo, test_rows)
    labels = _metadata(pipeline_repo)["labels"]
    with ThreadPoolExecutor(16) as pool:
        singles = list(pool.map(lambda row: _post(server, {"rows": [row]}).json()[0], test_rows))
    together = _post(server, {"rows": test_rows}).json()
    for answers in (singles, together):
        assert [answer["label"] for answer in answers] == [labels[i] for i in expected.argmax(1)]
        assert np.abs(_probabilities(answers, labels) - expected).max() <= 1e-6


def test_metadata_describes_the_served_model(server: BentoServer, pipeline_repo: Path) -> None:
    info = httpx.get(f"{server.url}/metadata", timeout=10).json()
    exported = _metadata(pipeline_repo)
    for key in ("feature_names", "inputs", "labels", "positive_label"):
        assert info[key] == exported[key], key
    assert info["onnx_sha256"] == exported["sha256"]
    assert info["model_version"].startswith("v1-")


def test_the_api_documents_the_models_own_example_rows(
    server: BentoServer, pipeline_repo: Path
) -> None:
    openapi = httpx.get(f"{server.url}/docs.json", timeout=10).json()
    rows = openapi["components"]["schemas"]["predict__Input"]["properties"]["rows"]
    assert rows["examples"] == [_metadata(pipeline_repo)["examples"]]
    assert _post(server, {"rows": rows["examples"][0]}).status_code == 200


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
    st.just("NaN"),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
SENTINEL = 123456.75  # a number whose JSON text the "nan" case replaces


# What a refusal must point at: a column name (the issue's `loc` is ["rows", 0, <column>]),
# ROWS (the `rows` list itself) or BODY (the body as a whole: not JSON, not an object).
ROWS, BODY = "<rows>", "<body>"
EXTRA = "not a feature"


@st.composite
def bad_payloads(
    draw: st.DrawFn, inputs: list[RawInput], example: dict[str, Any]
) -> tuple[bytes, str]:
    """Bodies a careless or hostile client might send, each with what its 4xx must name."""
    row = dict(example)
    names = [item.name for item in inputs]
    required = [item.name for item in inputs if not item.nullable]
    numeric = [item.name for item in inputs if item.kind == "numeric"]
    kind = draw(
        st.sampled_from(["value", "null", "missing", "extra", "rows", "json", "nan", "many"])
    )
    named: str
    if kind == "value":  # a list or a dict is wrong for every kind; text and bools for some
        item = draw(st.sampled_from(inputs))
        wrong = BAD_VALUES.filter(lambda value: not _fits(item, value))
        row[item.name], named = draw(wrong), item.name
    elif kind in ("null", "missing") and required:
        named = draw(st.sampled_from(required))
        if kind == "null":
            row[named] = None
        else:
            del row[named]
    elif kind in ("null", "missing", "extra"):  # every feature nullable: an unknown key instead
        named = EXTRA if kind != "extra" else draw(st.text(min_size=1, max_size=8))
        if named in names:
            named = EXTRA
        row[named] = None if kind == "null" else 1.0
    elif kind == "rows":
        rows = draw(st.one_of(st.just([]), BAD_VALUES, st.just([1, 2])))
        return json.dumps({"rows": rows}).encode(), ROWS
    elif kind == "json":
        body = draw(st.sampled_from(["", "{", "[]", "null", '{"rows": [', "rows=1", '{"x": 1}']))
        return body.encode(), BODY
    elif kind == "nan" and numeric:
        named = draw(st.sampled_from(numeric))
        row[named] = SENTINEL
        text = json.dumps({"rows": [row]})
        bad = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e39", "-1e300"]))
        return text.replace(str(SENTINEL), bad, 1).encode(), named
    else:
        return json.dumps({"rows": [row] * draw(st.integers(257, 400))}).encode(), ROWS
    return json.dumps({"rows": [row]}).encode(), named


def _points_at(answer: ErrorBody, named: str) -> bool:
    """Whether one of the answer's issues locates `named` (see ROWS and BODY)."""
    locations = [issue.loc for issue in answer.detail]
    if named == BODY:
        return answer.error_count >= 1 and bool(answer.detail)
    if named == ROWS:
        return any(loc[:1] == ["rows"] for loc in locations)
    return any(loc[:3] == ["rows", 0, named] for loc in locations)


def _fits(item: RawInput, value: Any) -> bool:
    """Whether the schema would take `value` for `item` (so it is no bad value for it)."""
    if item.kind == "boolean":
        return isinstance(value, bool)
    if item.kind == "numeric":
        return False  # no strategy in BAD_VALUES draws a number
    if not isinstance(value, str):
        return False
    return value in item.categories if item.unseen == "reject" else 0 < len(value) <= 256


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_bad_payloads_get_a_4xx_naming_the_problem(
    server: BentoServer, pipeline_repo: Path, data: st.DataObject
) -> None:
    info = httpx.get(f"{server.url}/metadata", timeout=10).json()
    inputs = [RawInput.model_validate(item) for item in info["inputs"]]
    body, named = data.draw(bad_payloads(inputs, _metadata(pipeline_repo)["examples"][0]))
    content_type = data.draw(
        st.sampled_from(["application/json", "text/plain", "application/octet-stream"])
    )
    response = httpx.post(
        f"{server.url}/predict", content=body, headers={"content-type": content_type}, timeout=10
    )
    assert 400 <= response.status_code < 500, (body[:200], response.text[:300])
    answer = ErrorBody.model_validate_json(response.content)
    assert answer.error, response.text[:300]
    assert _points_at(answer, named), (named, body[:200], response.text[:300])


def test_a_bad_row_is_named_by_index_and_field(
    server: BentoServer, pipeline_repo: Path, test_rows: list[dict[str, Any]]
) -> None:
    rows = [dict(row) for row in test_rows[:3]]
    name = _metadata(pipeline_repo)["feature_names"][-1]
    rows[2][name] = ["no kind of feature takes a list"]
    response = _post(server, {"rows": rows})
    assert response.status_code == 400
    assert [error["loc"] for error in response.json()["detail"]] == [["rows", 2, name]]


@pytest.mark.parametrize("too_big", [1e39, -1e300])
def test_a_number_float32_cannot_hold_is_a_400_not_a_null_probability(
    server: BentoServer, pipeline_repo: Path, test_rows: list[dict[str, Any]], too_big: float
) -> None:
    inputs = _metadata(pipeline_repo)["inputs"]
    name = next(item["name"] for item in inputs if item["kind"] == "numeric")
    response = _post(server, {"rows": [test_rows[0] | {name: too_big}]})
    assert response.status_code == 400
    assert [error["loc"] for error in response.json()["detail"]] == [["rows", 0, name]]


def test_an_oversized_body_gets_413(server: BentoServer) -> None:
    response = httpx.post(
        f"{server.url}/predict",
        content=b" " * 2_000_000,
        timeout=10,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413


def test_the_server_stays_healthy_after_bad_input(
    server: BentoServer, test_rows: list[dict[str, Any]]
) -> None:
    assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
    assert _post(server, {"rows": test_rows[:1]}).status_code == 200


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


# --- a model of the mixed table ----------------------------------------------------------------

# The serving side of `package` without its gates: a store entry holding the ONNX file and the
# full model.json (what the service reads; BentoML's own metadata cannot hold nulls).
STORE_ENTRY = """
import json, shutil
from pathlib import Path
import bentoml
from model.params import Params
from model.model_store import METADATA_FILE, ONNX_FILE, model_version
info = json.loads(Path("models/model.json").read_text())
version = model_version(info, None)
tag = f"{Params.load().registry.model_name}:{version}"
with bentoml.models.create(name=tag, labels={"model_version": version}) as model:
    shutil.copyfile("models/model.onnx", Path(model.path) / ONNX_FILE)
    shutil.copyfile("models/model.json", Path(model.path) / METADATA_FILE)
"""


@pytest.fixture(scope="module")
def mixed_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project on the mixed table, trained and exported (no gates: they judge the shipped
    table's quality bars), its model in the project's BentoML store."""
    repo = copy_project(tmp_path_factory.mktemp("mixed"))
    table, contract = write_mixed_table(repo / "data" / "mixed")
    (repo / "data" / "contract.yaml").write_text(contract.read_text(encoding="utf-8"))
    stages = repo / "dvc.yaml"
    shipped = shipped_raw_path(repo).relative_to(repo).as_posix()
    mixed = table.relative_to(repo).as_posix()
    stages.write_text(stages.read_text().replace(f"raw_data: {shipped}", f"raw_data: {mixed}"))
    assert yaml.safe_load(stages.read_text())["vars"] == [{"raw_data": mixed}]
    run(repo, "git", "add", "--all")
    run(repo, "git", "commit", "--quiet", "--message", "the mixed table")
    dvc(repo, "repro", "export")
    run(repo, sys.executable, "-c", STORE_ENTRY, env={"BENTOML_HOME": str(repo / ".bentoml")})
    return repo


@pytest.fixture(scope="module")
def mixed_server(
    mixed_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BentoServer]:
    env = {
        "BENTOML_HOME": str(mixed_repo / ".bentoml"),
        "PREDICTION_LOG_DIR": str(tmp_path_factory.mktemp("mixed-log")),
    }
    with BentoServer(cwd=mixed_repo, env=env, ready_timeout_s=90) as running:
        yield running


def _inputs(repo: Path) -> list[RawInput]:
    return [RawInput.model_validate(item) for item in _metadata(repo)["inputs"]]


def _categorical(repo: Path, unseen: str) -> RawInput:
    return next(
        item for item in _inputs(repo) if item.kind == "categorical" and item.unseen == unseen
    )


def _with_nulls(rows: list[dict[str, Any]], inputs: list[RawInput]) -> list[dict[str, Any]]:
    """Each row with one nullable feature null and the next one left out, in turn."""
    nullable = [item.name for item in inputs if item.nullable]
    changed = []
    for index, row in enumerate(rows):
        row = dict(row)
        row[nullable[index % len(nullable)]] = None
        row.pop(nullable[(index + 1) % len(nullable)], None)
        changed.append(row)
    return changed


def test_a_mixed_table_model_answers_strings_booleans_and_nulls(
    mixed_server: BentoServer, mixed_repo: Path
) -> None:
    """The test split, plus nulls and absent nullable features, as the offline model says."""
    inputs = _inputs(mixed_repo)
    assert {item.kind for item in inputs} == {"numeric", "categorical", "boolean"}
    rows = _with_nulls(_test_rows(mixed_repo), inputs)
    labels = _metadata(mixed_repo)["labels"]
    response = _post(mixed_server, {"rows": rows[:256]})
    assert response.status_code == 200, response.text[:300]
    expected = _offline(mixed_repo, rows[:256])
    assert np.abs(_probabilities(response.json(), labels) - expected).max() <= 1e-6


def test_an_unseen_category_is_refused_where_the_contract_says_reject(
    mixed_server: BentoServer, mixed_repo: Path
) -> None:
    closed = _categorical(mixed_repo, "reject")
    row = _metadata(mixed_repo)["examples"][0] | {closed.name: "a value no one listed"}
    response = _post(mixed_server, {"rows": [row]})
    assert response.status_code == 400
    assert [error["loc"] for error in response.json()["detail"]] == [["rows", 0, closed.name]]


def test_an_unseen_category_is_answered_where_the_contract_says_other(
    mixed_server: BentoServer, mixed_repo: Path
) -> None:
    open_ = _categorical(mixed_repo, "other")
    row = _metadata(mixed_repo)["examples"][0] | {open_.name: "a value no one listed"}
    response = _post(mixed_server, {"rows": [row]})
    assert response.status_code == 200, response.text[:300]
    labels = _metadata(mixed_repo)["labels"]
    assert (
        np.abs(_probabilities(response.json(), labels) - _offline(mixed_repo, [row])).max() <= 1e-6
    )


def test_the_mixed_models_metadata_names_its_inputs_and_classes(
    mixed_server: BentoServer, mixed_repo: Path
) -> None:
    info = httpx.get(f"{mixed_server.url}/metadata", timeout=10).json()
    exported = _metadata(mixed_repo)
    assert info["inputs"] == exported["inputs"]
    assert info["labels"] == exported["labels"]
    assert len(info["labels"]) == 3
    assert info["positive_label"] is None


def test_the_prediction_log_keeps_raw_rows_by_column_name(
    mixed_server: BentoServer, mixed_repo: Path
) -> None:
    """Strings, booleans and nulls are logged as sent (an absent feature as null)."""
    inputs = _inputs(mixed_repo)
    row = _with_nulls(_metadata(mixed_repo)["examples"][:1], inputs)[0]
    logged_ids = []
    for _ in range(100):  # the log samples requests: 100 make a miss all but impossible
        response = _post(mixed_server, {"rows": [row]})
        if "x-request-id" in response.headers:
            logged_ids.append(response.headers["x-request-id"])
    assert logged_ids
    folder = Path(mixed_server.env["PREDICTION_LOG_DIR"])
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not records:
        time.sleep(0.3)
        lines = [line for path in log_files(folder) for line in path.read_text().splitlines()]
        records = [json.loads(line) for line in lines]
        records = [record for record in records if record.get("request_id") == logged_ids[0]]
    [record] = records
    assert record["features"] == {item.name: row.get(item.name) for item in inputs}
    assert list(record["probabilities"]) == _metadata(mixed_repo)["labels"]
