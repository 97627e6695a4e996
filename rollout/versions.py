"""Which versions a rollout moves: BentoML store tags, MLflow registry aliases, and whether the
pipeline's reports let a release go out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from model.model_store import METADATA_FILE
from model.params import Params
from model.registry import alias_version
from rollout.servers import log

PREVIOUS_CHAMPION_ALIAS = "previous-champion"


def store_tag_for(name: str, registry_version: str) -> str | None:
    """The BentoML store tag of the model registered as `registry_version`, if imported."""
    import bentoml

    for stored in bentoml.models.list(name):
        if stored.info.labels.get("registry_version") == str(registry_version):
            return str(stored.tag)
    return None


def registry_version_of(tag: str) -> str | None:
    import bentoml

    version = bentoml.models.get(tag).info.labels.get("registry_version")
    return None if version in (None, "none") else str(version)


def move_alias(name: str, alias: str, version: str) -> None:
    from model.tracking import configure

    configure().MlflowClient().set_registered_model_alias(name, alias, version)


def delete_alias(name: str, alias: str) -> None:
    from model.tracking import configure

    client = configure().MlflowClient()
    try:
        client.delete_registered_model_alias(name, alias)
    except Exception:  # MlflowException: alias not set
        return


def crown(params: Params, model_tag: str) -> tuple[str | None, str | None]:
    """Move `champion` to the registry version of `model_tag`, the old one to
    `previous-champion` (what `rollback` restores). Returns (new, previous) versions."""
    name, alias = params.registry.model_name, params.registry.champion_alias
    version = registry_version_of(model_tag)
    previous = alias_version(name, alias)
    if version is not None:
        if previous is not None and previous != version:
            move_alias(name, PREVIOUS_CHAMPION_ALIAS, previous)
        move_alias(name, alias, version)
    return version, previous


def model_info_path(tag: str) -> Path:
    """The model.json stored with `tag`: its inputs and labels, as `export` wrote them."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        return Path(bentoml.models.get(tag).path) / METADATA_FILE
    except NotFound:
        raise SystemExit(
            f"rollout: no model {tag} in the BentoML store: run `make package`"
        ) from None


def model_info(tag: str) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(model_info_path(tag).read_text())
    return info


def default_tags(params: Params) -> tuple[str | None, str]:
    """Stable = the champion's model, canary = the challenger's, both from the BentoML store."""
    name = params.registry.model_name
    champion = alias_version(name, params.registry.champion_alias)
    challenger = alias_version(name, params.registry.challenger_alias)
    if challenger is None:
        raise SystemExit("rollout: no challenger registered: run `make pipeline` (the gate) first")
    canary = store_tag_for(name, challenger)
    if canary is None:
        raise SystemExit(
            f"rollout: challenger v{challenger} is not in the BentoML store: run `make package`"
        )
    stable = store_tag_for(name, champion) if champion is not None else None
    if champion is not None and stable is None:
        raise SystemExit(f"rollout: champion v{champion} is not in the BentoML store")
    if stable == canary:
        log(f"challenger v{challenger} is already the champion: nothing to roll out")
        raise SystemExit(0)
    return stable, canary


# --- what the pipeline found out about the release ------------------------------------------------


def report_for(path: Path, info: dict[str, Any], sha_of: str) -> dict[str, Any] | None:
    """The JSON report at `path` when it is about this model (same ONNX digest), else None."""
    if not path.exists():
        return None
    report: dict[str, Any] = json.loads(path.read_text())
    digest: Any = report
    for key in sha_of.split("."):
        digest = digest.get(key) if isinstance(digest, dict) else None
    return report if digest is not None and digest == info.get("sha256") else None


def release_problems(
    info: dict[str, Any],
    gate: dict[str, Any] | None,
    load_test: dict[str, Any] | None,
    *,
    strategy: str,
    allow_breaking: bool,
) -> list[str]:
    """Why this release may not go out with `strategy`: empty when it may.

    `gate` and `load_test` are the gate's and the load test's reports on this very model (None
    when there are none). A release whose input schema breaks clients (the gate says so) is never
    canaried: a share of the clients would get 4xx for as long as the canary runs. It goes out
    only as a blue-green switch the operator asked for knowingly (`allow_breaking`).
    """
    problems = []
    if gate is not None and gate.get("breaking"):
        fix = "clients must change with it: `python -m rollout blue-green --allow-breaking`"
        if strategy == "canary" or (strategy == "blue-green" and not allow_breaking):
            problems.append(f"the gate marked its input schema as breaking clients; {fix}")
    if load_test is not None and not load_test.get("passed", True):
        missed = [
            name for name, check in load_test.get("checks", {}).items() if not check["passed"]
        ]
        problems.append(f"its load test failed: {', '.join(missed) or 'see the report'} missed")
    return problems
