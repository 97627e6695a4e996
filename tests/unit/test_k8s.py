"""The Kubernetes manifests carry exactly the plan and thresholds of params.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from model.params import Params
from rollout.k8s import main, manifests
from tests.conftest import REPO_ROOT

PARAMS = Params.load(REPO_ROOT / "params.yaml")


def _by_kind() -> dict[str, list[dict]]:  # type: ignore[type-arg]
    kinds: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for objects in manifests(PARAMS).values():
        for obj in objects:
            kinds.setdefault(obj["kind"], []).append(obj)
    return kinds


def test_every_object_has_the_core_fields() -> None:
    for objects in manifests(PARAMS).values():
        for obj in objects:
            assert {"apiVersion", "kind", "metadata", "spec"} <= set(obj)
            assert obj["metadata"]["name"]
            assert obj["metadata"]["namespace"] == PARAMS.rollout.kubernetes.namespace


def test_rollout_steps_follow_the_plan() -> None:
    [rollout] = _by_kind()["Rollout"]
    steps = rollout["spec"]["strategy"]["canary"]["steps"]
    weights = [step["setWeight"] for step in steps if "setWeight" in step]
    assert weights == list(PARAMS.rollout.steps)
    pauses = [step["pause"]["duration"] for step in steps if "pause" in step]
    assert pauses == [f"{int(PARAMS.rollout.hold_s)}s"] * (len(weights) - 1)


def test_rollout_selects_its_own_pods_and_probes_readiness() -> None:
    [rollout] = _by_kind()["Rollout"]
    spec = rollout["spec"]
    assert spec["selector"]["matchLabels"] == spec["template"]["metadata"]["labels"]
    [container] = spec["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["image"] == PARAMS.rollout.kubernetes.image


def test_analysis_templates_use_the_same_thresholds() -> None:
    templates = {t["metadata"]["name"]: t for t in _by_kind()["AnalysisTemplate"]}
    [rollout] = _by_kind()["Rollout"]
    referenced = rollout["spec"]["strategy"]["canary"]["analysis"]["templates"]
    assert {ref["templateName"] for ref in referenced} == set(templates)
    success = templates["classifier-success-rate"]["spec"]["metrics"][0]
    latency = templates["classifier-latency"]["spec"]["metrics"][0]
    assert success["successCondition"] == f"result[0] >= {PARAMS.rollout.analysis.min_success_rate}"
    assert latency["successCondition"] == f"result[0] <= {PARAMS.rollout.analysis.max_p99_ms}"
    assert success["failureLimit"] == PARAMS.rollout.failure_limit
    assert 'http_response_code!~"5.."' in success["provider"]["prometheus"]["query"]
    assert "histogram_quantile(0.99" in latency["provider"]["prometheus"]["query"]


def test_hpa_scales_the_rollout() -> None:
    [hpa] = _by_kind()["HorizontalPodAutoscaler"]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "name": "classifier",
    }
    assert hpa["spec"]["maxReplicas"] >= hpa["spec"]["minReplicas"]


def test_rendered_files_parse_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)
    assert main([str(tmp_path)]) == 0
    kinds = [
        obj["kind"]
        for path in sorted(tmp_path.glob("*.yaml"))
        for obj in yaml.safe_load_all(path.read_text())
    ]
    assert sorted(kinds) == sorted(
        ["AnalysisTemplate", "AnalysisTemplate", "HorizontalPodAutoscaler", "Rollout", "Service"]
    )


def test_committed_manifests_are_up_to_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy/k8s is rendered from params.yaml: re-render after changing the plan."""
    monkeypatch.chdir(REPO_ROOT)
    main([str(tmp_path)])
    for rendered in tmp_path.glob("*.yaml"):
        committed = REPO_ROOT / "deploy/k8s" / rendered.name
        assert committed.read_text() == rendered.read_text(), (
            f"run `make k8s-manifests` ({rendered.name})"
        )
