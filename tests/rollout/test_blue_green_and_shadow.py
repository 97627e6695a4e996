"""Blue-green switch and switch-back, and shadow traffic that clients never see."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from serving.bento_server import BentoServer, free_port
from serving.traffic import HELD_OUT_ROWS, held_out_rows, model_inputs, request_body
from tests.rollout.conftest import rollout, state, store_tags

pytestmark = pytest.mark.slow


def _body(repo: Path, rows: int = 3) -> str:
    """Held-out rows as the exported model's clients send them."""
    info = json.loads((repo / "models/model.json").read_text())
    return request_body(held_out_rows(repo / HELD_OUT_ROWS, model_inputs(info))[:rows])


def _served_version(url: str, body: str) -> str:
    response = httpx.post(
        f"{url}/predict", content=body, headers={"content-type": "application/json"}, timeout=10
    )
    response.raise_for_status()
    version: str = response.json()[0]["model_version"]
    return version


def test_blue_green_switches_at_once_and_switches_back(rollout_repo: Path, tmp_path: Path) -> None:
    tags = store_tags(rollout_repo)
    work = ["--work-dir", str(tmp_path)]
    try:
        switched = rollout(
            rollout_repo, "blue-green", "--stable-tag", tags["1"], "--canary-tag", tags["2"], *work
        )
        assert switched.returncode == 0, switched.stdout[-2000:]
        final = state(tmp_path)
        assert final["phase"] == "switched"
        assert final["client_failures"] == 0
        nginx = final["nginx"]["url"]
        body = _body(rollout_repo)
        assert _served_version(nginx, body).startswith("v2-")
        assert httpx.get(f"{final['blue']['url']}/readyz", timeout=5).status_code == 200

        back = rollout(rollout_repo, "switch-back", *work)
        assert back.returncode == 0, back.stdout[-2000:]
        assert _served_version(nginx, body).startswith("v1-")
        assert state(tmp_path)["phase"] == "switched_back"
    finally:
        rollout(rollout_repo, "stop", *work)


def test_shadow_leaves_client_answers_identical_to_stable(
    rollout_repo: Path, tmp_path: Path
) -> None:
    tags = store_tags(rollout_repo)
    result = rollout(
        rollout_repo, "shadow", "--stable-tag", tags["1"], "--canary-tag", tags["flipped"],
        "--work-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:]
    report = state(tmp_path)
    assert report["client_failures"] == 0
    assert report["shadow"]["stats"]["requests"] > 0  # the mirror reached the candidate
    assert report["label_disagreement"] > 0.5  # the flipped model, seen only in the report
    served = [json.loads(line) for line in (tmp_path / "nginx/access.log").read_text().splitlines()]
    stable_port = report["stable"]["port"]
    assert all(entry["upstream"] == f"127.0.0.1:{stable_port}" for entry in served)


def test_answers_through_nginx_under_shadow_equal_stable_answers(
    rollout_repo: Path, tmp_path: Path
) -> None:
    """Byte for byte: the mirror never leaks into what a client receives."""
    from serving.nginx import Nginx, Routing

    tags = store_tags(rollout_repo)
    env = {"BENTOML_HOME": str(rollout_repo / ".bentoml")}
    body = _body(rollout_repo, 5)
    with (
        BentoServer(cwd=rollout_repo, env=env | {"SERVING_MODEL_TAG": tags["1"]}) as stable,
        BentoServer(cwd=rollout_repo, env=env | {"SERVING_MODEL_TAG": tags["flipped"]}) as shadow,
    ):
        nginx = Nginx(tmp_path / "nginx", free_port())
        nginx.apply(Routing({stable.port: 1}, shadow_port=shadow.port))
        try:
            headers = {"content-type": "application/json"}
            direct = httpx.post(f"{stable.url}/predict", content=body, headers=headers, timeout=10)
            via = httpx.post(f"{nginx.url}/predict", content=body, headers=headers, timeout=10)
            assert via.status_code == 200
            assert via.json() == direct.json()
        finally:
            nginx.stop()
