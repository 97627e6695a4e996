"""Issue 14's attacks replayed on the real BentoML service: each gets a 4xx or a fast 503, never a
5xx, a 504 or a null probability, and the prediction log keeps writing after any of them.

Feature names and labels come from the model's metadata, never from the shipped table."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from rollout.bento_server import BentoServer
from serving.prediction_log import log_files
from tests.pipeline_fixtures import serving

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(pipeline_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BentoServer]:
    with serving(pipeline_repo, tmp_path_factory.mktemp("hardening")) as running:
        yield running


@pytest.fixture(scope="module")
def metadata(pipeline_repo: Path) -> dict[str, Any]:
    info: dict[str, Any] = json.loads((pipeline_repo / "models/model.json").read_text())
    return info


def _post(server: BentoServer, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", timeout=15, **kwargs)


def _records(server: BentoServer, request_id: str, timeout_s: float = 10) -> list[dict[str, Any]]:
    """The log's records for one request, once the writer has written them."""
    folder = Path(server.env["PREDICTION_LOG_DIR"])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        lines = [line for path in log_files(folder) for line in path.read_text().splitlines()]
        found = [json.loads(line) for line in lines if request_id in line]
        if found:
            return found
        time.sleep(0.2)
    return []


def _logged_request(server: BentoServer, row: dict[str, Any], **headers: str) -> str:
    """Predict until one request is sampled into the log; its request id."""
    for _ in range(200):
        response = _post(server, "/predict", json={"rows": [row]}, headers=headers)
        assert response.status_code == 200
        if "x-request-id" in response.headers:
            return str(response.headers["x-request-id"])
    raise AssertionError("no request was logged in 200")


def test_feedback_of_any_content_type_is_never_a_5xx(server: BentoServer) -> None:
    for content_type in ("multipart/form-data", "application/x-www-form-urlencoded", "text/plain"):
        response = _post(server, "/feedback", content=b"x", headers={"content-type": content_type})
        assert response.status_code == 400, (content_type, response.text)


def test_feedback_for_a_row_past_max_rows_is_a_400_and_the_log_keeps_writing(
    server: BentoServer, metadata: dict[str, Any]
) -> None:
    label = metadata["labels"][0]
    for row in (18446744073709551616, -1, 1e400, 256):
        body = {"request_id": "big", "label": label, "row": row}
        response = _post(server, "/feedback", content=json.dumps(body).encode())
        assert response.status_code == 400
        assert [issue["loc"] for issue in response.json()["detail"]] == [["row"]]
    request_id = _logged_request(server, metadata["examples"][0])
    assert _records(server, request_id)


def test_a_400_on_feedback_logs_no_error_traceback(
    server: BentoServer, metadata: dict[str, Any]
) -> None:
    before = server.log.read_text(errors="replace").count("[ERROR]")
    body = {"request_id": "r", "label": "not a label", "row": 0}
    assert _post(server, "/feedback", json=body).status_code == 400
    time.sleep(0.5)
    assert server.log.read_text(errors="replace").count("[ERROR]") == before


def test_a_prediction_that_is_not_finite_is_refused_with_a_422_and_counted(
    server: BentoServer, metadata: dict[str, Any]
) -> None:
    """Every number fits float32, yet the graph overflows: no 200 with null probabilities."""
    row = dict(metadata["examples"][0])
    for item in metadata["inputs"]:
        if item["kind"] == "numeric":
            row[item["name"]] = 3.4e38
    response = _post(server, "/predict", json={"rows": [metadata["examples"][0], row]})
    assert response.status_code == 422, response.text[:300]
    assert [issue["loc"] for issue in response.json()["detail"]] == [["rows", 1]]
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert 'refused_requests_total{reason="non_finite"}' in metrics


def test_an_error_body_stays_small_whatever_the_request(
    server: BentoServer, metadata: dict[str, Any]
) -> None:
    bodies: list[dict[str, Any]] = [{"rows": [{}] * 256}, {"rows": [{"k" * 100_000: 1.0}]}]
    for body in bodies:
        response = _post(server, "/predict", json=body)
        assert response.status_code == 400
        assert len(response.content) < 8_000
        assert response.json()["error_count"] >= len(response.json()["detail"])


def test_a_body_over_the_limit_reaches_urllib_as_a_413(server: BentoServer) -> None:
    request = urllib.request.Request(
        f"{server.url}/predict",
        data=b" " * 2_000_000,
        headers={"content-type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=15)
    assert refused.value.code == 413


def test_the_openapi_document_describes_every_route_and_the_error_sent(
    server: BentoServer,
) -> None:
    document = httpx.get(f"{server.url}/docs.json", timeout=10).json()
    assert {"/predict", "/feedback", "/metadata", "/model-card"} <= set(document["paths"])
    error = document["components"]["schemas"]["ErrorBody"]
    assert set(error["properties"]) == {"error", "detail", "error_count"}
    for path in ("/predict", "/feedback"):
        bad = document["paths"][path]["post"]["responses"]["400"]
        assert bad["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")


def test_each_record_carries_the_traffic_source_unknown_ones_as_production(
    server: BentoServer, metadata: dict[str, Any]
) -> None:
    row = metadata["examples"][0]
    for sent, logged in (
        ("load-test", "load-test"),
        ("anything", "production"),
        ("", "production"),
    ):
        headers = {"x-traffic-source": sent} if sent else {}
        [record] = _records(server, _logged_request(server, row, **headers))
        assert record["source"] == logged


async def _burst(url: str, body: bytes, size: int) -> list[tuple[int, str | None]]:
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one() -> tuple[int, str | None]:
            async with session.post(url, data=body) as response:
                await response.read()
                return response.status, response.headers.get("retry-after")

        return await asyncio.gather(*(one() for _ in range(size)))


def test_a_burst_gets_answers_or_fast_503s_never_a_timeout(
    server: BentoServer, metadata: dict[str, Any]
) -> None:
    rows = [metadata["examples"][i % len(metadata["examples"])] for i in range(256)]
    body = json.dumps({"rows": rows}).encode()
    started = time.monotonic()
    answers = asyncio.run(_burst(f"{server.url}/predict", body, 300))
    took = time.monotonic() - started
    statuses = {status for status, _ in answers}
    assert statuses <= {200, 503}, statuses
    assert 200 in statuses
    assert all(retry == "1" for status, retry in answers if status == 503)
    assert took < 30  # the 10 s timeout never fires: no request waits in a queue
    assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200


def test_metrics_show_the_prediction_logs_health(server: BentoServer) -> None:
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert "prediction_log_writer_restarts_total 0.0" in metrics
