"""Fixtures that run the real pipeline in a throwaway copy of the project (a pytest plugin).

The copy holds the tracked files only, in a fresh git repository, as a clone would. The first
`dvc repro` is shared by the whole session; tests that change things take a private copy. DVC runs
as the Makefile runs it, through deploy/dvc.sh: `repro` with no target reproduces both pipeline
files, and stages of deploy/dvc.yaml are named `deploy/dvc.yaml:<stage>`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

if TYPE_CHECKING:
    from rollout.bento_server import BentoServer

from tests.conftest import REPO_ROOT

VENV_BIN = Path(sys.executable).parent


def project_env() -> dict[str, str]:
    """A user's plain shell: venv first on PATH, telemetry off, and no store locations set, so
    every command must find the project's own MLflow and BentoML stores by itself."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLFLOW_", "GATE_", "GITHUB_", "BENTOML_HOME"))
    }
    env |= {
        "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    return env


def run(
    cwd: Path, *command: str, check: bool = True, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command,
        cwd=cwd,
        env=project_env() | dict(env or {}),
        capture_output=True,
        text=True,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{command} failed:\n{result.stdout}\n{result.stderr}")
    return result


def dvc(
    cwd: Path, *args: str, check: bool = True, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`dvc` through deploy/dvc.sh, which puts the machine-local lock in place for the run."""
    return run(cwd, "sh", "deploy/dvc.sh", *args, check=check, env=env)


def stages_run(output: str) -> list[str]:
    """Names of the stages `dvc repro` actually ran, in order."""
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


def copy_project(destination: Path) -> Path:
    """The files git tracks or would track (not ignored ones), committed to a new git repo."""
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, tracked):
        source = REPO_ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    run(destination, "git", "init", "--quiet")
    run(destination, "git", "add", "--all")
    run(destination, "git", "commit", "--quiet", "--message", "copy")
    return destination


def loosen_load_test_budget(repo: Path) -> None:
    """Ten times the latency budget and half the throughput floor of `serving.slo`, committed.

    The copy's load test shares two cores with another test worker's training: its tail says
    more about that than about the service. The SLO's decisions are pinned at their boundaries
    (tests/unit/test_boundaries_slo.py); here the stage only has to run and write its summary.
    """
    params_file = repo / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    slo = params["serving"]["slo"]
    slo |= {"p95_ms": slo["p95_ms"] * 10, "p99_ms": slo["p99_ms"] * 10}
    slo["min_rps"] = slo["min_rps"] / 2
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    run(
        repo,
        "git",
        "commit",
        "--quiet",
        "--all",
        "--message",
        "a load-test budget for a busy machine",
    )


@pytest.fixture(scope="session")
def pipeline_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project copied and reproduced once, from nothing (no cache, no MLflow store)."""
    repo = copy_project(tmp_path_factory.mktemp("project"))
    loosen_load_test_budget(repo)
    result = dvc(repo, "repro")
    (repo / ".git" / "first_repro.log").write_text(result.stdout + result.stderr)
    status = run(repo, "git", "status", "--porcelain", "--untracked-files=all").stdout
    (repo / ".git" / "first_status.txt").write_text(status)
    # Commit what the run produced, so `git:HEAD` is a complete baseline for the gate tests.
    run(repo, "git", "add", "--all")
    run(repo, "git", "commit", "--quiet", "--allow-empty", "--message", "reproduced")
    return repo


@pytest.fixture(scope="session")
def forced_repo(pipeline_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the reproduced project with every stage forced to run again (a cold run)."""
    repo = Path(shutil.copytree(pipeline_repo, tmp_path_factory.mktemp("forced") / "project"))
    dvc(repo, "repro", "--force")
    return repo


@pytest.fixture
def repo_copy(pipeline_repo: Path, tmp_path: Path) -> Path:
    """A private copy of the reproduced project, for tests that change it."""
    return Path(shutil.copytree(pipeline_repo, tmp_path / "project", symlinks=True))


@contextmanager
def serving(repo: Path, scratch: Path) -> Iterator[BentoServer]:
    """A real `bentoml serve` of the project's packaged model, logging into `scratch`."""
    from rollout.bento_server import BentoServer

    env = {"BENTOML_HOME": str(repo / ".bentoml"), "PREDICTION_LOG_DIR": str(scratch)}
    log = scratch.parent / f"{scratch.name}-serve.log"
    with BentoServer(cwd=repo, env=env, log=log, ready_timeout_s=90) as running:
        yield running
