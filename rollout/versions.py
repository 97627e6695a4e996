"""Which versions a rollout moves: BentoML store tags, MLflow registry aliases, and whether the
pipeline's reports let a release go out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from model.artifacts import GateReport, LoadTestSummary, read_optional
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


def gate_report_for(path: Path, info: dict[str, Any]) -> GateReport | None:
    """The gate's report at `path` when it judged this very model (same ONNX digest), else None."""
    report = read_optional(path, GateReport)
    return (
        report
        if report is not None and report.candidate.onnx_sha256 == info.get("sha256")
        else None
    )


def load_test_for(path: Path, info: dict[str, Any]) -> LoadTestSummary | None:
    """The load test's summary at `path` when it measured this very model, else None."""
    summary = read_optional(path, LoadTestSummary)
    return summary if summary is not None and summary.onnx_sha256 == info.get("sha256") else None


def release_problems(
    gate: GateReport | None,
    load_test: LoadTestSummary | None,
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
    if gate is not None and gate.breaks_clients:
        fix = "clients must change with it: `python -m rollout blue-green --allow-breaking`"
        if strategy == "canary" or (strategy == "blue-green" and not allow_breaking):
            problems.append(f"the gate marked its input schema as breaking clients; {fix}")
    if load_test is not None and not load_test.passed:
        problems.append(
            f"its load test failed: {', '.join(load_test.missed) or 'see the report'} missed"
        )
    return problems
