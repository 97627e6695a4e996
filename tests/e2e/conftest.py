"""A throwaway copy of the project (tracked files only, fresh git repo) to run the pipeline in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

VENV_BIN = Path(sys.executable).parent


def project_env() -> dict[str, str]:
    """The environment `make` gives the stages: venv first on PATH, telemetry off, local stores."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
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


def run(cwd: Path, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, cwd=cwd, env=project_env(), capture_output=True, text=True, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{command} failed:\n{result.stdout}\n{result.stderr}")
    return result


def dvc(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(cwd, str(VENV_BIN / "dvc"), *args, check=check)


def stages_run(output: str) -> list[str]:
    """Names of the stages `dvc repro` actually ran, in order."""
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


def copy_project(destination: Path) -> Path:
    """Tracked files only, as a fresh clone would have them, committed to a new git repo."""
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
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


@pytest.fixture(scope="session")
def pipeline_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project copied and reproduced once, from nothing (no cache, no MLflow store)."""
    repo = copy_project(tmp_path_factory.mktemp("project"))
    result = dvc(repo, "repro")
    (repo / ".first_repro.log").write_text(result.stdout + result.stderr)
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
