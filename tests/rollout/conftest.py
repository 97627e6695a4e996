"""A project copy with two registered versions (v1 champion, v2 challenger) and a fast plan."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from model.params import Params
from rollout.ports import free_port
from tests.conftest import REPO_ROOT
from tests.pipeline_fixtures import VENV_BIN, dvc, project_env, run

MODEL = Params.load(REPO_ROOT / "params.yaml").registry.model_name  # the registry's name for it
MAX_P99_MS = 800
SLOW_DELAY_S = 1.5  # the slow canary's added latency: about twice MAX_P99_MS


def _merge(into: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def edit_params(repo: Path, changes: dict[str, dict[str, Any]]) -> None:
    """Change only the values named, however deep (`{"rollout": {"analysis": {...}}}`)."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    _merge(params, changes)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="session")
def rollout_template(pipeline_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once and never changed: tests take a private copy (`rollout_repo`)."""
    repo = Path(shutil.copytree(pipeline_repo, tmp_path_factory.mktemp("rollout") / "project"))
    # A second, slightly different model: v2, the challenger; v1 becomes the champion.
    edit_params(repo, {"train": {"seed": 7}})
    dvc(repo, "repro")
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    client.set_registered_model_alias(MODEL, "champion", "1")
    assert int(client.get_model_version_by_alias(MODEL, "challenger").version) == 2
    edit_params(
        repo,
        {
            "rollout": {
                "steps": [25, 100],
                "hold_s": 3,
                "traffic": {"users": 4, "requests_per_user_s": 20, "min_offered_share": 0.5},
                # A healthy canary on a loaded test machine stays far below; the slow one
                # (SLOW_DELAY_S) far above.
                "analysis": {"max_p99_ms": MAX_P99_MS},
            },
            # BentoML starts in seconds, but in tens of them beside another test worker's
            # training; the never-ready test sets its own, shorter wait.
            "serving": {"ready_timeout_s": 60},
        },
    )
    run(repo, str(VENV_BIN / "python"), "-m", "tests.rollout.make_flipped")
    return repo


@pytest.fixture
def rollout_repo(rollout_template: Path, tmp_path: Path) -> Path:
    """A private copy (registry, store, params) with a front port of its own: whatever a test
    moves (the champion alias, say), no other test sees it, in any order."""
    repo = Path(shutil.copytree(rollout_template, tmp_path / "project", symlinks=True))
    edit_params(repo, {"rollout": {"nginx_port": free_port()}})
    return repo


def store_tags(repo: Path) -> dict[str, str]:
    """registry version -> BentoML store tag, in the copy's store."""
    tags = {}
    for folder in (repo / ".bentoml/models" / MODEL).iterdir():
        if folder.is_dir() and (folder / "model.yaml").exists():
            labels = yaml.safe_load((folder / "model.yaml").read_text()).get("labels", {})
            tags[str(labels.get("registry_version"))] = f"{MODEL}:{folder.name}"
    return tags


def rollout(
    repo: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    python = str(VENV_BIN / "python")
    return run(repo, python, "-m", "rollout", *args, check=False, env=env)


def state(work_dir: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((work_dir / "state.json").read_text())
    return result


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    """Until `condition()` holds (state another process changes), polling; fails naming `what`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout_s:g} s")


def wait_for_phase(work_dir: Path, phase: str, timeout_s: float = 60) -> None:
    """Until the rollout state in `work_dir` reaches `phase` (a rollout running elsewhere)."""

    def reached() -> bool:
        return (work_dir / "state.json").exists() and state(work_dir).get("phase") == phase

    wait_for(reached, f"the rollout reaching {phase!r}", timeout_s)


def start_rollout(repo: Path, *args: str) -> subprocess.Popen[str]:
    command = [str(VENV_BIN / "python"), "-m", "rollout", *args]
    env = project_env()
    return subprocess.Popen(command, cwd=repo, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
