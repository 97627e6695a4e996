"""Canary rollouts for real: nginx, two BentoML servers, Locust traffic, MLflow aliases.

Each bad canary is rolled back at the first step, for its own reason, and no client ever sees
an error (nginx retries a failed attempt on the stable server).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from rollout.analysis import read_entries
from tests.rollout.conftest import (
    MODEL,
    SLOW_DELAY_S,
    edit_params,
    rollout,
    start_rollout,
    state,
    store_tags,
    wait_for,
    wait_for_phase,
)

pytestmark = pytest.mark.slow
REPORT_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures/report/passing/reports"


def _aliases(repo: Path) -> dict[str, str]:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    return {
        alias: str(version) for alias, version in client.get_registered_model(MODEL).aliases.items()
    }


def _canary(
    repo: Path,
    work_dir: Path,
    service: str | None = None,
    tag: str = "2",
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    tags = store_tags(repo)
    args = [
        "canary",
        "--stable-tag",
        tags["1"],
        "--canary-tag",
        tags[tag],
        "--work-dir",
        str(work_dir),
    ]
    if service:
        args += ["--canary-service", service]
    result = rollout(repo, *args, env=env)
    final = state(work_dir)
    final["output"] = result.stdout + result.stderr
    final["exit"] = result.returncode
    return final


def test_a_bad_canary_returning_errors_is_rolled_back_at_the_first_step(
    rollout_repo: Path, tmp_path: Path
) -> None:
    final = _canary(rollout_repo, tmp_path, "tests.rollout.faulty_services:Erroring")
    assert final["exit"] == 1
    assert final["phase"] == "rolled_back"
    assert final["decision"]["step"] == 1
    assert "success rate" in final["decision"]["reason"]
    assert final["client_failures"] == 0
    assert _aliases(rollout_repo)["champion"] == "1"


def test_a_canary_that_refuses_clients_is_rolled_back_for_client_errors(
    rollout_repo: Path, tmp_path: Path
) -> None:
    """4xx are not server failures, but a canary refusing more than stable breaks clients."""
    final = _canary(rollout_repo, tmp_path, "tests.rollout.faulty_services:Refusing")
    assert final["exit"] == 1
    assert final["phase"] == "rolled_back"
    assert final["decision"]["step"] == 1
    assert "client errors" in final["decision"]["reason"]
    assert _aliases(rollout_repo)["champion"] == "1"


def test_a_release_the_gate_marks_breaking_is_never_canaried(
    rollout_repo: Path, tmp_path: Path
) -> None:
    import json

    import yaml

    tags = store_tags(rollout_repo)
    folder = rollout_repo / ".bentoml/models" / MODEL / tags["2"].split(":")[1]
    sha = json.loads((folder / "model.json").read_text())["sha256"]
    gate = tmp_path / "gate.json"
    report = json.loads((REPORT_FIXTURE / "gate.json").read_text())  # a whole gate report
    report["breaking"] = True
    report["candidate"]["onnx_sha256"] = sha
    gate.write_text(json.dumps(report))
    assert yaml.safe_load((folder / "model.yaml").read_text())  # the stored model, found
    work = ["--work-dir", str(tmp_path / "work"), "--gate-report", str(gate)]
    versions = ["--stable-tag", tags["1"], "--canary-tag", tags["2"], "--no-traffic"]
    canary = rollout(rollout_repo, "canary", *versions, *work)
    assert canary.returncode == 1
    assert "--allow-breaking" in canary.stdout
    assert state(tmp_path / "work")["phase"] == "refused"
    assert not (tmp_path / "work/nginx").exists()  # nothing was started
    blue_green = rollout(rollout_repo, "blue-green", *versions, *work)
    assert blue_green.returncode == 1


def test_a_slow_canary_is_rolled_back_for_latency(rollout_repo: Path, tmp_path: Path) -> None:
    # Each slow answer takes SLOW_DELAY_S: a hold of a few of those lets the canary's share of
    # traffic complete enough requests to be judged on a loaded machine, not found inconclusive.
    edit_params(rollout_repo, {"rollout": {"hold_s": round(4 * SLOW_DELAY_S)}})
    delay = {"FAULT_DELAY_S": str(SLOW_DELAY_S)}
    final = _canary(rollout_repo, tmp_path, "tests.rollout.faulty_services:Slow", env=delay)
    assert final["phase"] == "rolled_back"
    assert final["decision"]["step"] == 1
    assert "p99" in final["decision"]["reason"]


def test_a_canary_whose_predictions_diverge_is_rolled_back(
    rollout_repo: Path, tmp_path: Path
) -> None:
    """A model answering the opposite label disagrees with stable on mirrored requests."""
    final = _canary(rollout_repo, tmp_path, tag="flipped")
    assert final["phase"] == "rolled_back"
    assert "labels differ" in final["decision"]["reason"]


def test_a_canary_that_never_gets_ready_gets_no_traffic(rollout_repo: Path, tmp_path: Path) -> None:
    edit_params(rollout_repo, {"serving": {"ready_timeout_s": 15}})  # it never will: wait less
    final = _canary(rollout_repo, tmp_path, "tests.rollout.faulty_services:NeverReady")
    assert final["phase"] == "rolled_back"
    assert "not ready" in final["decision"]["reason"]
    canary_port = final["canary"]["port"]
    entries = read_entries(tmp_path / "nginx/access.log", 0, time.time() + 1)
    assert all(a.port != canary_port for e in entries for a in e.attempts)


def test_killing_the_canary_mid_rollout_fails_no_client_request(
    rollout_repo: Path, tmp_path: Path
) -> None:
    tags = store_tags(rollout_repo)
    process = start_rollout(
        rollout_repo, "canary", "--stable-tag", tags["1"], "--canary-tag", tags["2"],
        "--work-dir", str(tmp_path),
    )  # fmt: skip
    wait_for_phase(tmp_path, "progressing")
    canary = state(tmp_path)["canary"]
    canary_port: int = canary["port"]

    def canary_answering() -> bool:  # mid-step, with client traffic flowing to the canary
        entries = read_entries(tmp_path / "nginx/access.log", 0, time.time() + 1)
        return sum(a.port == canary_port for e in entries for a in e.attempts) >= 10

    wait_for(canary_answering, "client requests reaching the canary")
    for pid in [canary["pid"], *canary["workers"]]:  # the whole server, workers included
        os.kill(pid, signal.SIGKILL)
    output, _ = process.communicate(timeout=120)
    final = state(tmp_path)
    assert final["phase"] == "rolled_back", output
    assert "died" in final["decision"]["reason"]
    assert final["client_failures"] == 0
    assert final["client_requests"] > 50


def test_a_good_canary_goes_through_every_step_and_is_promoted(
    rollout_repo: Path, tmp_path: Path
) -> None:
    final = _canary(rollout_repo, tmp_path)
    assert final["exit"] == 0, final["output"][-2000:]
    assert final["phase"] == "promoted"
    assert [step["weight"] for step in final["steps"]] == [25, 100]
    assert all(step["passed"] for step in final["steps"])
    assert final["client_failures"] == 0
    assert _aliases(rollout_repo)["champion"] == "2"
    assert _aliases(rollout_repo)["previous-champion"] == "1"


def test_the_first_deployment_is_smoke_tested_and_promoted(repo_copy: Path) -> None:
    """No champion yet: nothing to compare against, so the challenger is checked and promoted."""
    from rollout.ports import free_port
    from tests.rollout.conftest import edit_params

    edit_params(repo_copy, {"rollout": {"nginx_port": free_port()}})
    result = rollout(repo_copy, "canary", "--no-traffic")
    final = state(repo_copy / "reports/rollout")
    assert result.returncode == 0, result.stdout[-2000:]
    assert final["phase"] == "promoted"
    assert "first deployment" in final["decision"]["reason"]
    assert _aliases(repo_copy)["champion"] == "1"
    assert final["serving"].startswith("stopped")


def test_a_rollout_whose_controller_dies_can_be_resumed(rollout_repo: Path, tmp_path: Path) -> None:
    """The state file lets a new controller take over the running servers and finish."""
    tags = store_tags(rollout_repo)
    process = start_rollout(
        rollout_repo, "canary", "--stable-tag", tags["1"], "--canary-tag", tags["1"],
        "--work-dir", str(tmp_path),
    )  # fmt: skip
    wait_for_phase(tmp_path, "progressing")
    process.kill()  # the controller only: nginx and both servers keep running
    process.wait()
    result = rollout(rollout_repo, "resume", "--work-dir", str(tmp_path))
    final = state(tmp_path)
    assert result.returncode == 0, result.stdout[-2000:]
    assert final["phase"] == "promoted"
    assert [step["weight"] for step in final["steps"]] == [25, 100]
