"""Which model a candidate is judged against, and where it came from.

- `git:<rev>`: the target branch of a pull request: its committed metrics file, and its model
  fetched with DVC (local cache first, then the remote).
- `champion`: the registered model behind the MLflow alias (the main branch's baseline).
- `none`: the very first run; only absolute floors apply.
- `auto` (default): `git:origin/$GITHUB_BASE_REF` on a pull request in GitHub Actions, else
  `champion` when that alias exists, else `none`.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from model.params import RegistryParams
from model.registry import load_alias


@dataclass(frozen=True)
class Baseline:
    kind: str  # "git", "champion" or "none"
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

    try:
        model = dvc.api.read(model_path.as_posix(), repo=".", rev=rev, mode="rb")
    except (DvcException, OSError) as error:
        note = f"baseline model not in the DVC cache or remote ({type(error).__name__}): "
        return Baseline("git", source, metrics, None, note + "latency ratio skipped")
    return Baseline("git", source, metrics, model)


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


def resolve(spec: str, registry: RegistryParams, metrics_path: Path, model_path: Path) -> Baseline:
    """Turn `--baseline` (auto, none, champion, git:<rev>) into a Baseline."""
    if spec == "auto":
        base_ref = os.environ.get("GITHUB_BASE_REF")
        spec = f"git:origin/{base_ref}" if base_ref else "champion"
    if spec == "none":
        return NO_BASELINE
    if spec == "champion":
        return from_champion(registry)
    if spec.startswith("git:") and len(spec) > len("git:"):
        return from_git(spec.removeprefix("git:"), metrics_path, model_path)
    raise ValueError(f"unknown baseline {spec!r}: use auto, none, champion or git:<rev>")
