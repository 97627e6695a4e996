"""Render the rollout plan for Kubernetes from the same params.yaml values as the one-machine
rollout: a Namespace, stable and canary Services, an NGINX Ingress, an Argo Rollouts `Rollout`,
its `AnalysisTemplate`s, an HPA, and the Prometheus scrape job the analysis relies on.

    python -m rollout.k8s deploy/k8s        # or: make k8s-manifests

Canary steps become `setWeight` + `pause` steps that NGINX applies as traffic weights (not pod
counts). The analysis asks Prometheus about the canary's pods only (their pod-template-hash is an
argument), over windows of 4 scrapes: a failed measurement aborts, too little traffic to judge
is inconclusive, which pauses the rollout for a human.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from model.atomic import write_text_atomically
from model.params import Params

APP = "classifier"
CANARY = f"{APP}-canary"
PORT = 3000
HASH_ARG = "canary-hash"
# Not a Kubernetes object: in a subfolder, which `kubectl apply -f deploy/k8s/` does not read.
SCRAPE_CONFIG = "prometheus/scrape-config.yaml"
HEADER = "# Rendered by rollout/k8s.py from params.yaml: edit those, not this file.\n"


def window_s(params: Params) -> int:
    """Rate windows span 4 scrapes, so `rate()` always has several samples to work with."""
    return 4 * params.rollout.kubernetes.scrape_interval_s


def pause_s(params: Params) -> int:
    """Each weight holds at least one analysis window (and at least the local hold)."""
    return max(int(params.rollout.hold_s), window_s(params))


def canary_selector(params: Params) -> str:
    """The label matchers of the canary's /predict series, as the scrape job labels them."""
    k8s = params.rollout.kubernetes
    return (
        f'namespace="{k8s.namespace}",app="{APP}",'
        f'rollouts_pod_template_hash="{{{{args.{HASH_ARG}}}}}",endpoint="/predict"'
    )


def namespace(params: Params) -> dict[str, Any]:
    name = params.rollout.kubernetes.namespace
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def services(params: Params) -> list[dict[str, Any]]:
    """Stable and canary Services: Argo adds each one's pod-template-hash to its selector."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": name,
                "namespace": params.rollout.kubernetes.namespace,
                "labels": {"app": APP},
            },
            "spec": {
                "selector": {"app": APP},
                "ports": [{"name": "http", "port": 80, "targetPort": PORT, "protocol": "TCP"}],
            },
        }
        for name in (APP, CANARY)
    ]


def ingress(params: Params) -> dict[str, Any]:
    """The stable Ingress; Argo clones it into a canary Ingress carrying the step's weight."""
    k8s = params.rollout.kubernetes
    backend = {"service": {"name": APP, "port": {"name": "http"}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": APP, "namespace": k8s.namespace, "labels": {"app": APP}},
        "spec": {
            "ingressClassName": k8s.ingress_class,
            "rules": [
                {"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}
            ],
        },
    }


def _container(params: Params) -> dict[str, Any]:
    def probe(path: str, period_s: int) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": PORT}, "periodSeconds": period_s}

    startup_failures = int(params.serving.ready_timeout_s // 5) or 1
    return {
        "name": APP,
        "image": params.rollout.kubernetes.image,
        "ports": [{"name": "http", "containerPort": PORT}],
        "env": [{"name": "BENTOML_DO_NOT_TRACK", "value": "true"}],
        "readinessProbe": probe("/readyz", 5),
        "livenessProbe": probe("/healthz", 10),
        "startupProbe": probe("/readyz", 5) | {"failureThreshold": startup_failures},
        "resources": {
            "requests": {"cpu": "500m", "memory": "512Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def rollout(params: Params) -> dict[str, Any]:
    plan, k8s = params.rollout, params.rollout.kubernetes
    steps: list[dict[str, Any]] = []
    for weight in plan.steps:
        steps.append({"setWeight": weight})
        if weight < 100:
            steps.append({"pause": {"duration": f"{pause_s(params)}s"}})
    user = k8s.run_as_user
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": APP, "namespace": k8s.namespace, "labels": {"app": APP}},
        # No `replicas`: the HPA owns the scale, and an apply must not reset it.
        "spec": {
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": {"app": APP}},
            "template": {
                "metadata": {
                    "labels": {"app": APP},
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": user,
                        "runAsGroup": user,
                        "fsGroup": user,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [_container(params)],
                },
            },
            "strategy": {
                "canary": {
                    "canaryService": CANARY,
                    "stableService": APP,
                    "trafficRouting": {"nginx": {"stableIngress": APP}},
                    "steps": steps,
                    "analysis": {
                        "templates": [
                            {"templateName": f"{APP}-success-rate"},
                            {"templateName": f"{APP}-latency"},
                        ],
                        "startingStep": 1,
                        "args": [
                            {"name": HASH_ARG, "valueFrom": {"podTemplateHashValue": "Latest"}}
                        ],
                    },
                }
            },
        },
    }


def queries(params: Params) -> dict[str, str]:
    """Metric name -> PromQL over the canary's pods: NaN when they served too few requests."""
    window, minimum = f"{window_s(params)}s", params.rollout.analysis.min_requests
    selector = canary_selector(params)
    requests = f"bentoml_service_request_total{{{selector}}}"
    errors = f'bentoml_service_request_total{{{selector},http_response_code=~"5.."}}'
    buckets = f"bentoml_service_request_duration_seconds_bucket{{{selector}}}"
    # `or vector(0)`: no 5xx series yet is no errors; a missing total leaves the ratio empty.
    success_rate = (
        f"1 - (sum(rate({errors}[{window}])) or on() vector(0)) / sum(rate({requests}[{window}]))"
    )
    p99_ms = f"1000 * histogram_quantile(0.99, sum by (le) (rate({buckets}[{window}])))"
    enough = f"sum(increase({requests}[{window}])) >= {minimum}"
    # Below the minimum (or with no series at all) the answer is NaN, never an empty result.
    return {
        name: f"({query}) and on() ({enough}) or on() vector(NaN)"
        for name, query in {"success-rate": success_rate, "latency": p99_ms}.items()
    }


def conditions(params: Params) -> dict[str, tuple[str, str]]:
    """Metric name -> (successCondition, failureCondition); NaN meets neither: inconclusive."""
    analysis = params.rollout.analysis
    rate, p99 = analysis.min_success_rate, analysis.max_p99_ms
    known = "!isNaN(result[0])"
    return {
        "success-rate": (f"{known} && result[0] >= {rate}", f"{known} && result[0] < {rate}"),
        "latency": (f"{known} && result[0] <= {p99}", f"{known} && result[0] > {p99}"),
    }


def analysis_templates(params: Params) -> list[dict[str, Any]]:
    plan, k8s = params.rollout, params.rollout.kubernetes
    window = f"{window_s(params)}s"
    templates = []
    for name, query in queries(params).items():
        success, failure = conditions(params)[name]
        metric = {
            "name": name,
            "initialDelay": window,  # the first measurement sees a full window of canary traffic
            "interval": window,
            "failureLimit": plan.failure_limit,
            "successCondition": success,
            "failureCondition": failure,
            "provider": {"prometheus": {"address": k8s.prometheus_address, "query": query}},
        }
        templates.append(
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "AnalysisTemplate",
                "metadata": {"name": f"{APP}-{name}", "namespace": k8s.namespace},
                "spec": {"args": [{"name": HASH_ARG}], "metrics": [metric]},
            }
        )
    return templates


def autoscaler(params: Params) -> dict[str, Any]:
    k8s = params.rollout.kubernetes
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": APP, "namespace": k8s.namespace},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Rollout",
                "name": APP,
            },
            "minReplicas": k8s.replicas,
            "maxReplicas": k8s.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": k8s.cpu_target_percent,
                        },
                    },
                }
            ],
        },
    }


def scrape_config(params: Params) -> dict[str, Any]:
    """A Prometheus scrape job for the annotated pods, labelled as the analysis queries expect
    (pod labels, `namespace`, `pod`): add it to Prometheus' `scrape_configs`."""
    k8s = params.rollout.kubernetes
    annotation = "__meta_kubernetes_pod_annotation_prometheus_io_"
    job = {
        "job_name": f"{k8s.namespace}-{APP}",
        "scrape_interval": f"{k8s.scrape_interval_s}s",
        "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [k8s.namespace]}}],
        "relabel_configs": [
            {"source_labels": [f"{annotation}scrape"], "action": "keep", "regex": "true"},
            {"source_labels": ["__meta_kubernetes_pod_label_app"], "action": "keep", "regex": APP},
            {
                "source_labels": [f"{annotation}path"],
                "regex": "(.+)",
                "target_label": "__metrics_path__",
            },
            {
                "source_labels": ["__address__", f"{annotation}port"],
                "regex": r"([^:]+)(?::\d+)?;(\d+)",
                "replacement": "$1:$2",
                "target_label": "__address__",
            },
            {"action": "labelmap", "regex": "__meta_kubernetes_pod_label_(.+)"},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        ],
    }
    return {"scrape_configs": [job]}


def manifests(params: Params) -> dict[str, list[dict[str, Any]]]:
    """File name -> the Kubernetes objects it holds (all that `kubectl apply` needs)."""
    return {
        "namespace.yaml": [namespace(params)],
        "service.yaml": services(params),
        "ingress.yaml": [ingress(params)],
        "rollout.yaml": [rollout(params)],
        "analysis-templates.yaml": analysis_templates(params),
        "hpa.yaml": [autoscaler(params)],
    }


class _Dumper(yaml.SafeDumper):
    """Writes a repeated object out again instead of as an alias (`&id001`), which some
    Kubernetes tooling rejects and every reader has to chase."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(objects: list[dict[str, Any]]) -> str:
    return HEADER + yaml.dump_all(objects, Dumper=_Dumper, sort_keys=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path, help="folder for the rendered YAML files")
    parser.add_argument("--image", help="container image (default: rollout.kubernetes.image)")
    args = parser.parse_args(argv)
    params = Params.load()
    if args.image:
        kubernetes = params.rollout.kubernetes.model_copy(update={"image": args.image})
        rollout_params = params.rollout.model_copy(update={"kubernetes": kubernetes})
        params = params.model_copy(update={"rollout": rollout_params})
    for name, objects in manifests(params).items():
        write_text_atomically(args.out / name, dump(objects))
        print(f"k8s: wrote {args.out / name} ({', '.join(o['kind'] for o in objects)})")
    write_text_atomically(args.out / SCRAPE_CONFIG, dump([scrape_config(params)]))
    print(f"k8s: wrote {args.out / SCRAPE_CONFIG} (a Prometheus scrape job)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
