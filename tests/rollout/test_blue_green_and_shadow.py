"""Blue-green switch and switch-back, and shadow traffic that clients never see."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from rollout.bento_server import BentoServer
from rollout.ports import free_port
from rollout.traffic import HELD_OUT_ROWS, held_out_rows, model_inputs, request_body
from tests.rollout.conftest import MODEL, rollout, state, store_tags

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
    from rollout.nginx import Nginx, Routing

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


def _front_version(url: str) -> str:
    """The version that answers on the front port (GET /metadata through nginx)."""
    version: str = httpx.get(f"{url}/metadata", timeout=10).json()["model_version"]
    return version


def _aliases(repo: Path) -> dict[str, str]:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    model = client.get_registered_model(MODEL)
    return {alias: str(version) for alias, version in model.aliases.items()}


def test_a_hung_shadow_beside_live_serving_costs_clients_nothing(
    rollout_repo: Path, tmp_path: Path
) -> None:
    """The mirror attaches to the server that serves; keep-alive clients neither fail nor wait
    on the hung shadow, and ending shadow mode leaves that server serving."""
    from tests.rollout.test_proxy import _Clients

    tags = store_tags(rollout_repo)
    work = ["--work-dir", str(tmp_path)]
    versions = ["--stable-tag", tags["1"], "--canary-tag", tags["2"]]
    try:
        switched = rollout(rollout_repo, "blue-green", *versions, "--no-traffic", *work)
        assert switched.returncode == 0, switched.stdout[-2000:]
        front = state(tmp_path)["nginx"]["url"]
        assert _front_version(front).startswith("v2-")
        with _Clients(front, _body(rollout_repo).encode()) as clients:
            shadow = rollout(
                rollout_repo, "shadow", "--stable-tag", tags["2"], "--canary-tag", tags["1"],
                "--canary-service", "tests.rollout.faulty_services:Slow", "--no-traffic", *work,
                env={"FAULT_DELAY_S": "30"},  # a hung shadow
            )  # fmt: skip
            assert shadow.returncode == 0, shadow.stdout[-2000:]
            assert state(tmp_path)["attached"] is True
            assert state(tmp_path)["shadow"]["stats"]["requests"] > 0  # the mirror reached it
        assert _front_version(front).startswith("v2-")  # serving untouched
        assert clients.errors == []
        assert clients.slowest_s < 3.0, f"a client waited {clients.slowest_s:.1f} s"
    finally:
        rollout(rollout_repo, "stop", *work)


def test_rollback_after_a_confirmed_blue_green_serves_the_previous_champion(
    rollout_repo: Path, tmp_path: Path
) -> None:
    import mlflow

    tags = store_tags(rollout_repo)
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{rollout_repo / 'mlflow.db'}")
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"  # own copy
    work = ["--work-dir", str(tmp_path)]
    versions = ["--stable-tag", tags["1"], "--canary-tag", tags["2"]]
    from tests.rollout.test_proxy import _Clients

    try:
        switched = rollout(rollout_repo, "blue-green", *versions, "--no-traffic", *work)
        assert switched.returncode == 0, switched.stdout[-2000:]
        front = state(tmp_path)["nginx"]["url"]
        with _Clients(front, _body(rollout_repo).encode()) as clients:
            assert rollout(rollout_repo, "confirm", *work).returncode == 0
            assert _aliases(rollout_repo)["champion"] == "2"
            assert _front_version(front).startswith("v2-")
            back = rollout(rollout_repo, "rollback", *work)
            assert back.returncode == 0, back.stdout[-2000:]
        assert _front_version(front).startswith("v1-")
        aliases = _aliases(rollout_repo)
        assert aliases["champion"] == "1"
        assert "previous-champion" not in aliases
        status = json.loads(rollout(rollout_repo, "status", *work).stdout)
        assert status["phase"] == "rolled_back"
        assert status["serving_now"]["model_tag"] == tags["1"]
        assert clients.errors == []
    finally:
        rollout(rollout_repo, "stop", *work)
