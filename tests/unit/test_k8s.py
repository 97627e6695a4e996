"""The Kubernetes manifests carry exactly the plan and thresholds of params.yaml, and both
Argo Rollouts' own CRD schemas (vendored in tests/fixtures/argo-rollouts) and Kubernetes' own
schemas (kubernetes-validate, offline) accept them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from model.params import Params
from rollout.k8s import (
    HASH_ARG,
    SCRAPE_CONFIG,
    conditions,
    main,
    manifests,
    pause_s,
    window_s,
)
from tests.conftest import REPO_ROOT

PARAMS = Params.load(REPO_ROOT / "params.yaml")
ARGO_CRDS = REPO_ROOT / "tests/fixtures/argo-rollouts"
KUBERNETES_VERSION = "1.30"  # bundled by kubernetes-validate; APIs stable since 1.23


def _by_kind() -> dict[str, list[dict[str, Any]]]:
    kinds: dict[str, list[dict[str, Any]]] = {}
    for objects in manifests(PARAMS).values():
        for obj in objects:
            kinds.setdefault(obj["kind"], []).append(obj)
    return kinds


def _strict(schema: Any) -> Any:
    """The CRD schema with unknown fields refused, as `kubectl apply` (strict field validation)
    refuses them, instead of silently pruned."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema.setdefault("additionalProperties", False)
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


def _crd_schema(kind: str) -> dict[str, Any]:
    file = {"Rollout": "rollout-crd.yaml", "AnalysisTemplate": "analysis-template-crd.yaml"}[kind]
    crd = yaml.safe_load((ARGO_CRDS / file).read_text())
    assert crd["spec"]["names"]["kind"] == kind
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema: dict[str, Any] = _strict(version["schema"]["openAPIV3Schema"])
    return schema


def _argo_errors(obj: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(_crd_schema(obj["kind"]))
    return [f"{list(error.path)}: {error.message}" for error in validator.iter_errors(obj)]


@pytest.mark.parametrize("kind", ["Rollout", "AnalysisTemplate"])
def test_argo_objects_validate_against_argo_rollouts_crds(kind: str) -> None:
    for obj in _by_kind()[kind]:
        assert _argo_errors(obj) == []


def test_the_crd_check_catches_a_misspelt_field() -> None:
    [rollout] = _by_kind()["Rollout"]
    broken = copy.deepcopy(rollout)
    broken["spec"]["strategy"]["canary"]["trafficRouting"]["ngnix"] = {"stableIngress": "x"}
    assert any("ngnix" in error for error in _argo_errors(broken))


@pytest.mark.parametrize("kind", ["Namespace", "Service", "Ingress", "HorizontalPodAutoscaler"])
def test_core_objects_validate_against_kubernetes_schemas(kind: str) -> None:
    for obj in _by_kind()[kind]:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_rollout_pod_template_validates_as_a_kubernetes_pod_template() -> None:
    """The CRD leaves containers loosely typed; a Deployment with the same template is not."""
    [rollout] = _by_kind()["Rollout"]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "check"},
        "spec": {"selector": rollout["spec"]["selector"], "template": rollout["spec"]["template"]},
    }
    kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_every_object_lives_in_the_namespace() -> None:
    [namespace] = _by_kind()["Namespace"]
    assert namespace["metadata"]["name"] == PARAMS.rollout.kubernetes.namespace
    for objects in manifests(PARAMS).values():
        for obj in objects:
            if obj["kind"] != "Namespace":
                assert obj["metadata"]["namespace"] == PARAMS.rollout.kubernetes.namespace


def test_rollout_steps_are_the_local_canary_weights() -> None:
    [rollout] = _by_kind()["Rollout"]
    steps = rollout["spec"]["strategy"]["canary"]["steps"]
    weights = [step["setWeight"] for step in steps if "setWeight" in step]
    assert weights == list(PARAMS.rollout.steps)


def test_nginx_routes_the_weights_between_stable_and_canary_services() -> None:
    """Without trafficRouting, Argo would approximate the weights with pod counts."""
    [rollout] = _by_kind()["Rollout"]
    canary = rollout["spec"]["strategy"]["canary"]
    services = {service["metadata"]["name"] for service in _by_kind()["Service"]}
    [ingress] = _by_kind()["Ingress"]
    assert {canary["stableService"], canary["canaryService"]} == services
    assert canary["trafficRouting"]["nginx"]["stableIngress"] == ingress["metadata"]["name"]
    [rule] = ingress["spec"]["rules"]
    [path] = rule["http"]["paths"]
    assert path["backend"]["service"]["name"] == canary["stableService"]
    assert ingress["spec"]["ingressClassName"] == PARAMS.rollout.kubernetes.ingress_class


def test_windows_span_four_scrapes_and_pauses_hold_a_window() -> None:
    assert window_s(PARAMS) >= 4 * PARAMS.rollout.kubernetes.scrape_interval_s
    [rollout] = _by_kind()["Rollout"]
    pauses = [s["pause"]["duration"] for s in rollout["spec"]["strategy"]["canary"]["steps"][1::2]]
    assert pauses == [f"{pause_s(PARAMS)}s"] * (len(PARAMS.rollout.steps) - 1)
    assert pause_s(PARAMS) >= window_s(PARAMS)
    for template in _by_kind()["AnalysisTemplate"]:
        [metric] = template["spec"]["metrics"]
        query = metric["provider"]["prometheus"]["query"]
        assert f"[{window_s(PARAMS)}s]" in query
        assert metric["initialDelay"] == metric["interval"] == f"{window_s(PARAMS)}s"


def test_analysis_is_scoped_to_the_canary_pods_by_their_template_hash() -> None:
    [rollout] = _by_kind()["Rollout"]
    analysis = rollout["spec"]["strategy"]["canary"]["analysis"]
    assert analysis["args"] == [{"name": HASH_ARG, "valueFrom": {"podTemplateHashValue": "Latest"}}]
    templates = {t["metadata"]["name"]: t for t in _by_kind()["AnalysisTemplate"]}
    assert {ref["templateName"] for ref in analysis["templates"]} == set(templates)
    for template in templates.values():
        assert template["spec"]["args"] == [{"name": HASH_ARG}]
        query = template["spec"]["metrics"][0]["provider"]["prometheus"]["query"]
        selectors = query.count("bentoml_service_request")
        assert query.count(f'rollouts_pod_template_hash="{{{{args.{HASH_ARG}}}}}"') == selectors


def test_analysis_uses_the_params_thresholds_and_failure_limit() -> None:
    analysis = PARAMS.rollout.analysis
    for template in _by_kind()["AnalysisTemplate"]:
        [metric] = template["spec"]["metrics"]
        success, failure = conditions(PARAMS)[metric["name"]]
        assert (metric["successCondition"], metric["failureCondition"]) == (success, failure)
        assert metric["failureLimit"] == PARAMS.rollout.failure_limit
        query = metric["provider"]["prometheus"]["query"]
        assert f">= {analysis.min_requests})" in query  # too few requests: NaN, not a verdict
        assert query.endswith("or on() vector(NaN)")  # never an empty result
    assert str(analysis.min_success_rate) in conditions(PARAMS)["success-rate"][0]
    assert str(analysis.max_p99_ms) in conditions(PARAMS)["latency"][0]


def test_the_hpa_owns_the_scale() -> None:
    [rollout] = _by_kind()["Rollout"]
    [hpa] = _by_kind()["HorizontalPodAutoscaler"]
    assert "replicas" not in rollout["spec"]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "name": rollout["metadata"]["name"],
    }
    assert hpa["spec"]["minReplicas"] == PARAMS.rollout.kubernetes.replicas
    assert hpa["spec"]["maxReplicas"] >= hpa["spec"]["minReplicas"]


def test_pods_run_as_a_non_root_user() -> None:
    [rollout] = _by_kind()["Rollout"]
    pod = rollout["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == PARAMS.rollout.kubernetes.run_as_user != 0
    for container in pod["containers"]:
        assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_pods_are_annotated_for_the_rendered_scrape_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    main([str(tmp_path)])
    [rollout] = _by_kind()["Rollout"]
    annotations = rollout["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    [job] = yaml.safe_load((tmp_path / SCRAPE_CONFIG).read_text())["scrape_configs"]
    assert job["scrape_interval"] == f"{PARAMS.rollout.kubernetes.scrape_interval_s}s"
    assert {"action": "labelmap", "regex": "__meta_kubernetes_pod_label_(.+)"} in job[
        "relabel_configs"
    ]


def test_rendered_files_parse_back_without_aliases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    assert main([str(tmp_path)]) == 0
    kinds = []
    for path in sorted(tmp_path.glob("*.yaml")):
        text = path.read_text()
        assert "&id" not in text, path.name
        assert "*id" not in text, path.name
        kinds += [obj["kind"] for obj in yaml.safe_load_all(text)]
    expected = ["Namespace", "Service", "Service", "Ingress", "Rollout", "HorizontalPodAutoscaler"]
    assert sorted(kinds) == sorted([*expected, "AnalysisTemplate", "AnalysisTemplate"])


def test_committed_manifests_are_up_to_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy/k8s is rendered from params.yaml: re-render after changing the plan."""
    monkeypatch.chdir(REPO_ROOT)
    main([str(tmp_path)])
    rendered = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.yaml"))
    deploy = REPO_ROOT / "deploy/k8s"
    committed = sorted(p.relative_to(deploy) for p in deploy.rglob("*.yaml"))
    assert committed == rendered, "run `make k8s-manifests`"
    for name in rendered:
        assert (REPO_ROOT / "deploy/k8s" / name).read_text() == (tmp_path / name).read_text(), (
            f"run `make k8s-manifests` ({name})"
        )
