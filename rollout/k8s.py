"""Render the rollout plan for Kubernetes: a Service, an Argo Rollouts `Rollout`, its
`AnalysisTemplate`s and an HPA, from the same params.yaml values as the one-machine rollout.

    python -m rollout.k8s deploy/k8s        # or: make k8s-manifests

Canary steps become `setWeight` + `pause` steps; the analysis thresholds become Prometheus
queries over BentoML's own request metrics (success rate and p99 of /predict), checked in the
background from the first step, with the same failure limit.
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
PORT = 3000
REQUESTS = 'bentoml_service_request_total{service_name="classifier",endpoint="/predict"}'
DURATION_BUCKETS = (
    'bentoml_service_request_duration_seconds_bucket{service_name="classifier",endpoint="/predict"}'
)


def service(params: Params) -> dict[str, Any]:
    namespace = params.rollout.kubernetes.namespace
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": APP, "namespace": namespace, "labels": {"app": APP}},
        "spec": {
            "selector": {"app": APP},
            "ports": [{"name": "http", "port": 80, "targetPort": PORT, "protocol": "TCP"}],
        },
    }


def rollout(params: Params) -> dict[str, Any]:
    plan, k8s = params.rollout, params.rollout.kubernetes
    steps: list[dict[str, Any]] = []
    for weight in plan.steps:
        steps.append({"setWeight": weight})
        if weight < 100:
            steps.append({"pause": {"duration": f"{int(plan.hold_s)}s"}})
    probe = {"httpGet": {"path": "/readyz", "port": PORT}, "periodSeconds": 5}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": APP, "namespace": k8s.namespace, "labels": {"app": APP}},
        "spec": {
            "replicas": k8s.replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": {"app": APP}},
            "template": {
                "metadata": {"labels": {"app": APP}},
                "spec": {
                    "containers": [
                        {
                            "name": APP,
                            "image": k8s.image,
                            "ports": [{"name": "http", "containerPort": PORT}],
                            "env": [{"name": "BENTOML_DO_NOT_TRACK", "value": "true"}],
                            "readinessProbe": probe,
                            "livenessProbe": {
                                "httpGet": {"path": "/healthz", "port": PORT},
                                "periodSeconds": 10,
                            },
                            "startupProbe": {
                                **probe,
                                "failureThreshold": int(params.serving.ready_timeout_s // 5) or 1,
                            },
                            "resources": {
                                "requests": {"cpu": "500m", "memory": "512Mi"},
                                "limits": {"cpu": "1", "memory": "1Gi"},
                            },
                        }
                    ]
                },
            },
            "strategy": {
                "canary": {
                    "steps": steps,
                    "analysis": {
                        "templates": [
                            {"templateName": f"{APP}-success-rate"},
                            {"templateName": f"{APP}-latency"},
                        ],
                        "startingStep": 1,
                    },
                }
            },
        },
    }


def analysis_templates(params: Params) -> list[dict[str, Any]]:
    plan, k8s = params.rollout, params.rollout.kubernetes
    window = f"{max(int(plan.hold_s), 30)}s"
    common = {
        "interval": f"{max(int(plan.hold_s), 10)}s",
        "failureLimit": plan.failure_limit,
    }
    succeeded = REQUESTS.replace("}", ',http_response_code!~"5.."}')
    success_rate = f"sum(rate({succeeded}[{window}])) / sum(rate({REQUESTS}[{window}]))"
    p99_ms = f"1000 * histogram_quantile(0.99, sum(rate({DURATION_BUCKETS}[{window}])) by (le))"
    metrics = [
        (
            "success-rate",
            f"result[0] >= {plan.analysis.min_success_rate}",
            success_rate,
        ),
        ("latency", f"result[0] <= {plan.analysis.max_p99_ms}", p99_ms),
    ]
    return [
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": {"name": f"{APP}-{name}", "namespace": k8s.namespace},
            "spec": {
                "metrics": [
                    {
                        "name": name,
                        **common,
                        "successCondition": condition,
                        "provider": {
                            "prometheus": {"address": k8s.prometheus_address, "query": query}
                        },
                    }
                ]
            },
        }
        for name, condition, query in metrics
    ]


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


def manifests(params: Params) -> dict[str, list[dict[str, Any]]]:
    """File name -> the objects it holds."""
    return {
        "service.yaml": [service(params)],
        "rollout.yaml": [rollout(params)],
        "analysis-templates.yaml": analysis_templates(params),
        "hpa.yaml": [autoscaler(params)],
    }


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
    header = "# Rendered by rollout/k8s.py from params.yaml: edit those, not this file.\n"
    for name, objects in manifests(params).items():
        text = header + yaml.safe_dump_all(objects, sort_keys=False)
        write_text_atomically(args.out / name, text)
        print(f"k8s: wrote {args.out / name} ({', '.join(o['kind'] for o in objects)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
