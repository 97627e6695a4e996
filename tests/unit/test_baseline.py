"""The gate's baseline: which model a candidate is judged against, and the source it names."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import model.baseline
from model.baseline import ARTIFACT_SOURCE, from_artifact, from_git, resolve
from model.params import Params, RegistryParams
from tests.conftest import REPO_ROOT

METRICS = Path("reports/metrics.json")
MODEL = Path("models/model.onnx")
RUN_ID = 77


def _artifact(directory: Path, run_id: int = RUN_ID) -> Path:
    (directory / "models").mkdir(parents=True)
    (directory / "reports").mkdir()
    (directory / MODEL).write_bytes(b"artifact model")
    (directory / METRICS).write_text(json.dumps({"roc_auc": 0.9}))
    source = {"run_id": run_id, "head_sha": "d" * 40, "branch": "main"}
    (directory / ARTIFACT_SOURCE).write_text(json.dumps(source))
    return directory


@pytest.fixture
def registry() -> RegistryParams:
    return Params.load(REPO_ROOT / "params.yaml").registry


@pytest.fixture
def no_champion(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model.baseline, "load_alias", lambda name, alias: None)


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository whose `main` commits metrics and a dvc.lock naming the model's md5."""
    _git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "reports").mkdir()
    (tmp_path / METRICS).write_text(json.dumps({"roc_auc": 0.8}))
    lock = {"stages": {"export": {"outs": [{"path": MODEL.as_posix(), "md5": "ab" + "0" * 30}]}}}
    (tmp_path / "dvc.lock").write_text(json.dumps(lock))
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "base")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_artifact_baseline_names_the_default_branch_run(tmp_path: Path) -> None:
    baseline = from_artifact(_artifact(tmp_path / "a"), METRICS, MODEL)
    assert baseline.kind == "artifact"
    assert baseline.source == f"default-branch run {RUN_ID} (main ddddddd)"
    assert (baseline.metrics, baseline.model) == ({"roc_auc": 0.9}, b"artifact model")


def test_no_artifact_folder_is_no_baseline_with_a_note(tmp_path: Path) -> None:
    baseline = from_artifact(tmp_path / "absent", METRICS, MODEL)
    assert (baseline.kind, baseline.model) == ("none", None)
    assert "no default-branch artifact" in baseline.note


def test_a_pull_request_without_a_reachable_base_model_takes_the_artifact(
    repo: Path, registry: RegistryParams, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_BASE_REF", "no-such-branch")
    baseline = resolve("auto", registry, METRICS, MODEL, _artifact(repo / ".baseline"))
    assert baseline.kind == "artifact"
    assert baseline.note.startswith("instead of git origin/no-such-branch: ")


def test_a_push_without_a_champion_takes_the_artifact(
    tmp_path: Path, registry: RegistryParams, monkeypatch: pytest.MonkeyPatch, no_champion: None
) -> None:
    monkeypatch.delenv("GITHUB_BASE_REF", raising=False)
    baseline = resolve("auto", registry, METRICS, MODEL, _artifact(tmp_path / "a"))
    assert (baseline.kind, baseline.source) == (
        "artifact",
        f"default-branch run {RUN_ID} (main ddddddd)",
    )
    assert "no champion registered yet" in baseline.note


def test_with_neither_a_model_nor_an_artifact_only_floors_apply(
    tmp_path: Path, registry: RegistryParams, monkeypatch: pytest.MonkeyPatch, no_champion: None
) -> None:
    monkeypatch.delenv("GITHUB_BASE_REF", raising=False)
    baseline = resolve("auto", registry, METRICS, MODEL, tmp_path / "absent")
    assert (baseline.kind, baseline.model) == ("none", None)
    assert "no champion registered yet" in baseline.note


def test_artifact_with_a_folder_reads_that_folder(tmp_path: Path, registry: RegistryParams) -> None:
    folder = _artifact(tmp_path / "elsewhere", run_id=5)
    baseline = resolve(f"artifact:{folder}", registry, METRICS, MODEL)
    assert baseline.source.startswith("default-branch run 5 ")


def test_an_unknown_baseline_spec_is_refused(registry: RegistryParams) -> None:
    with pytest.raises(ValueError, match="artifact"):
        resolve("latest", registry, METRICS, MODEL)


def test_a_git_baseline_whose_model_is_in_the_local_cache_says_so(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = repo / ".dvc/cache/files/md5/ab" / ("0" * 30)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"model")
    monkeypatch.setattr("dvc.api.read", lambda *args, **kwargs: b"model")
    baseline = from_git("main", METRICS, MODEL)
    assert baseline.source.endswith(", model from the DVC cache")


def test_a_git_baseline_whose_model_came_from_the_remote_says_so(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("dvc.api.read", lambda *args, **kwargs: b"model")
    baseline = from_git("main", METRICS, MODEL)
    assert baseline.source.endswith(", model from the DVC remote")
    assert baseline.metrics == {"roc_auc": 0.8}


def test_an_unreachable_base_model_is_replaced_by_the_artifact_saying_why(
    repo: Path, registry: RegistryParams, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dvc.exceptions import DvcException

    def unreachable(*args: object, **kwargs: object) -> bytes:
        raise DvcException("no remote")

    monkeypatch.setattr("dvc.api.read", unreachable)
    monkeypatch.setenv("GITHUB_BASE_REF", "main")
    _git(repo, "update-ref", "refs/remotes/origin/main", "main")
    baseline = resolve("auto", registry, METRICS, MODEL, _artifact(repo / ".baseline"))
    assert baseline.kind == "artifact"
    assert baseline.note.startswith("instead of git origin/main (")
    assert baseline.note.endswith("not in the DVC cache or remote (DvcException)")
