"""Which model a candidate is judged against, and where it came from.

- `git:<rev>`: the target branch of a pull request: its committed metrics file, and its model
  fetched with DVC (local cache first, then the remote).
- `champion`: the registered model behind the MLflow alias (the main branch's baseline).
- `artifact[:<dir>]`: the default branch's last gated model and metrics, unpacked from its CI
  artifact by `make fetch-baseline` (reporting/baseline_artifact.py) into `.baseline/`: how a fork
  with no DVC remote and no MLflow server still gates every pull request against a real model.
- `none`: the very first run; only absolute floors apply.
- `auto` (default): `git:origin/$GITHUB_BASE_REF` on a pull request in GitHub Actions, else
  `champion`; when that yields no model, the artifact if one was fetched; else only floors.

`source` names where the model came from (DVC cache, DVC remote, MLflow, which CI run): the gate
writes it into gate.json and the report and card print it.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from model.params import RegistryParams
from model.registry import load_alias

ARTIFACT_DIR = Path(".baseline")  # where `make fetch-baseline` unpacks the default branch's model
ARTIFACT_SOURCE = "source.json"  # the run it came from, written by the fetcher
DVC_CACHE = Path(".dvc/cache/files/md5")
NO_MODEL_EFFECT = ": latency ratio skipped"  # said of a git baseline whose model is out of reach


@dataclass(frozen=True)
class Baseline:
    kind: str  # "git", "champion", "artifact" or "none"
    source: str  # a person-readable origin, e.g. "git origin/main (3f2a1c0)"
    metrics: dict[str, float] | None = None
    model: bytes | None = field(default=None, repr=False)
    note: str = ""  # why something is missing

    def describe(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "source": self.source,
            "metrics": self.metrics,
            "has_metrics": self.metrics is not None,
            "has_model": self.model is not None,
            "note": self.note,
        }


NO_BASELINE = Baseline("none", "none", note="no baseline: only absolute floors apply")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()


def _model_origin(rev: str, model_path: Path) -> str:
    """Where dvc.api.read will find the model: the local cache when it holds the output that
    `dvc.lock` at `rev` names, else the DVC remote."""
    try:
        lock = yaml.safe_load(_git("show", f"{rev}:dvc.lock")) or {}
    except (subprocess.CalledProcessError, yaml.YAMLError):
        return "DVC cache or remote"
    for stage in (lock.get("stages") or {}).values():
        for out in stage.get("outs") or []:
            if out.get("path") == model_path.as_posix() and out.get("md5"):
                md5 = str(out["md5"])
                return "DVC cache" if (DVC_CACHE / md5[:2] / md5[2:]).is_file() else "DVC remote"
    return "DVC cache or remote"


def from_git(rev: str, metrics_path: Path, model_path: Path) -> Baseline:
    """Metrics committed at `rev`, and its model through DVC (None, with a note, if unreachable)."""
    try:
        commit = _git("rev-parse", "--verify", "--short", f"{rev}^{{commit}}")
    except subprocess.CalledProcessError:
        return Baseline("none", f"git {rev}", note=f"git revision {rev!r} not found")
    source = f"git {rev} ({commit})"
    try:
        metrics = json.loads(_git("show", f"{rev}:{metrics_path.as_posix()}"))
    except subprocess.CalledProcessError:
        return Baseline("none", source, note=f"{metrics_path} is not committed at {rev}")
    import dvc.api
    from dvc.exceptions import DvcException

    origin = _model_origin(rev, model_path)
    try:
        model = dvc.api.read(model_path.as_posix(), repo=".", rev=rev, mode="rb")
    except (DvcException, OSError) as error:
        note = f"baseline model not in the DVC cache or remote ({type(error).__name__})"
        return Baseline("git", source, metrics, None, note + NO_MODEL_EFFECT)
    return Baseline("git", f"{source}, model from the {origin}", metrics, model)


def from_artifact(directory: Path, metrics_path: Path, model_path: Path) -> Baseline:
    """The model and metrics unpacked from a default-branch run's artifact (kind `none`, with a
    note, when the folder or one of its files is missing)."""
    try:
        run = json.loads((directory / ARTIFACT_SOURCE).read_text())
        metrics = json.loads((directory / metrics_path).read_text())
        model = (directory / model_path).read_bytes()
    except (OSError, ValueError) as error:
        note = f"no default-branch artifact in {directory} ({type(error).__name__})"
        return Baseline("none", f"artifact {directory}", note=note)
    commit = str(run.get("head_sha"))[:7]
    source = f"default-branch run {run.get('run_id')} ({run.get('branch')} {commit})"
    return Baseline("artifact", source, metrics, model)


def _or_artifact(
    first: Baseline, directory: Path, metrics_path: Path, model_path: Path
) -> Baseline:
    """`first` when it has a model; else the fetched artifact, saying what it stands in for."""
    if first.model is not None:
        return first
    artifact = from_artifact(directory, metrics_path, model_path)
    if artifact.model is None:
        return first
    why = first.note.removesuffix(NO_MODEL_EFFECT) or "no model"  # the artifact has one
    return Baseline(
        artifact.kind,
        artifact.source,
        artifact.metrics,
        artifact.model,
        f"instead of {first.source}: {why}",
    )


def from_champion(registry: RegistryParams) -> Baseline:
    champion = load_alias(registry.model_name, registry.champion_alias)
    if champion is None:
        return Baseline(
            "none",
            f"models:/{registry.model_name}@{registry.champion_alias}",
            note="no champion registered yet: only absolute floors apply",
        )
    return Baseline(
        "champion",
        f"models:/{champion.name}@{champion.alias} (version {champion.version})",
        champion.metrics,
        champion.model,
    )


def resolve(
    spec: str,
    registry: RegistryParams,
    metrics_path: Path,
    model_path: Path,
    artifact_dir: Path = ARTIFACT_DIR,
) -> Baseline:
    """Turn `--baseline` (auto, none, champion, artifact[:<dir>], git:<rev>) into a Baseline."""
    if spec == "auto":
        base_ref = os.environ.get("GITHUB_BASE_REF")
        first = resolve(
            f"git:origin/{base_ref}" if base_ref else "champion", registry, metrics_path, model_path
        )
        return _or_artifact(first, artifact_dir, metrics_path, model_path)
    if spec == "artifact" or spec.startswith("artifact:"):
        directory = Path(spec.removeprefix("artifact").removeprefix(":") or artifact_dir)
        return from_artifact(directory, metrics_path, model_path)
    if spec == "none":
        return NO_BASELINE
    if spec == "champion":
        return from_champion(registry)
    if spec.startswith("git:") and len(spec) > len("git:"):
        return from_git(spec.removeprefix("git:"), metrics_path, model_path)
    raise ValueError(
        f"unknown baseline {spec!r}: use auto, none, champion, artifact[:<dir>] or git:<rev>"
    )
