"""The rendered AnalysisTemplates, run by a real Prometheus (the `prometheus` binary, started
here on loopback) over real BentoML servers, judge the canary and only the canary.

Four `bentoml serve` processes stand in for pods: a stable one, a healthy canary, an erroring
one and a slow one (tests/rollout/faulty_services.py). Prometheus scrapes them with the rendered
scrape job, its Kubernetes discovery swapped for static targets carrying the meta labels
discovery would set (namespace, pod labels with each one's pod-template-hash, annotations), so
the job's own relabelling makes the labels the queries select on. Each template's query, its
`{{args.canary-hash}}` filled in as Argo fills it, is evaluated with the template's own success
and failure conditions, as Argo Rollouts evaluates them.
"""

from __future__ import annotations

import ast
import contextlib
import math
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from model.export import example_rows
from model.features import FeatureSchema, read_split
from model.params import Params
from rollout import k8s
from rollout.bento_server import BentoServer
from rollout.ports import free_port

pytestmark = pytest.mark.slow

SCRAPE_S = 1  # the test's scrape interval: analysis windows become 4 s
TRAFFIC_S = 4 * SCRAPE_S + 3  # longer than one window, so the window sees only traffic
PODS = {  # pod-template-hash -> (service, client threads, extra environment)
    "stable1": ("serving.service:Classifier", 2, {}),
    "canary1": ("serving.service:Classifier", 2, {}),
    "erroring1": ("tests.rollout.faulty_services:Erroring", 2, {}),
    "slow1": ("tests.rollout.faulty_services:Slow", 4, {"FAULT_DELAY_S": "0.6"}),
}
SUCCESSFUL, FAILED, INCONCLUSIVE = "Successful", "Failed", "Inconclusive"


def _test_params(repo: Path) -> Params:
    """The project's params with a 1 s scrape interval, so a window lasts seconds."""
    params = Params.load(repo / "params.yaml")
    kubernetes = params.rollout.kubernetes.model_copy(update={"scrape_interval_s": SCRAPE_S})
    plan = params.rollout.model_copy(update={"kubernetes": kubernetes, "hold_s": 1.0})
    return params.model_copy(update={"rollout": plan})


def _condition_holds(condition: str, result: list[float]) -> bool:
    """Evaluate an Argo (expr-lang) condition of the shape the templates use, on `result`."""
    python = condition.replace("&&", " and ").replace("||", " or ")
    python = re.sub(r"!(?!=)", " not ", python).strip()
    tree = ast.parse(python, mode="eval")
    allowed: tuple[type[ast.AST], ...] = (ast.Expression, ast.BoolOp, ast.And, ast.Or)
    allowed += (ast.UnaryOp, ast.Not, ast.USub)
    allowed += (ast.Compare, ast.Gt, ast.GtE, ast.Lt, ast.LtE, ast.Eq, ast.NotEq, ast.Load)
    allowed += (ast.Call, ast.Subscript, ast.Name, ast.Constant)
    for node in ast.walk(tree):
        assert isinstance(node, allowed), f"unsupported in {condition!r}: {ast.dump(node)}"
        assert not isinstance(node, ast.Name) or node.id in {"result", "isNaN"}, condition
    names = {"__builtins__": {}, "result": result, "isNaN": math.isnan}
    return bool(eval(compile(tree, "<condition>", "eval"), names))  # only the nodes checked above


def phase(metric: dict[str, Any], result: list[float]) -> str:
    """Argo Rollouts' EvaluateResult (utils/evaluate) for a metric with both conditions."""
    if _condition_holds(metric["failureCondition"], result):
        return FAILED
    if _condition_holds(metric["successCondition"], result):
        return SUCCESSFUL
    return INCONCLUSIVE


@dataclass(frozen=True)
class Prometheus:
    url: str

    def query(self, promql: str, at: float) -> list[float]:
        """The result as Argo's Prometheus provider hands it to the conditions: a list of floats."""
        response = httpx.get(
            f"{self.url}/api/v1/query", params={"query": promql, "time": at}, timeout=10
        )
        body = response.json()
        assert response.status_code == 200, body
        assert body["status"] == "success", body
        assert body["data"]["resultType"] == "vector", body
        return [float(sample["value"][1]) for sample in body["data"]["result"]]

    def targets_up(self) -> int:
        body = httpx.get(f"{self.url}/api/v1/targets", timeout=5).json()
        return sum(target["health"] == "up" for target in body["data"]["activeTargets"])


def _scrape_job(params: Params, ports: dict[str, int]) -> dict[str, Any]:
    """The rendered job, with the meta labels Kubernetes discovery would give each pod."""
    [job] = k8s.scrape_config(params)["scrape_configs"]
    template = k8s.rollout(params)["spec"]["template"]["metadata"]
    annotation = "__meta_kubernetes_pod_annotation_"
    labels = {
        f"{annotation}{re.sub(r'[^a-zA-Z0-9_]', '_', key)}": value
        for key, value in template["annotations"].items()
    }
    labels |= {f"__meta_kubernetes_pod_label_{key}": v for key, v in template["labels"].items()}
    labels["__meta_kubernetes_namespace"] = params.rollout.kubernetes.namespace
    del job["kubernetes_sd_configs"]
    job["static_configs"] = [
        {
            "targets": [f"127.0.0.1:{port}"],
            "labels": labels
            | {
                f"{annotation}prometheus_io_port": str(port),  # the pod's port, not the default
                "__meta_kubernetes_pod_label_rollouts_pod_template_hash": pod_hash,
                "__meta_kubernetes_pod_name": f"{k8s.APP}-{pod_hash}",
            },
        }
        for pod_hash, port in ports.items()
    ]
    return dict(job)


@contextlib.contextmanager
def prometheus(job: dict[str, Any], scratch: Path) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(binary).exists():
        pytest.fail("prometheus missing: `make system-deps` (apt-get install prometheus)")
    config = scratch / "prometheus.yml"
    config.write_text(yaml.safe_dump({"global": {"scrape_interval": f"{SCRAPE_S}s"},
                                      "scrape_configs": [job]}))  # fmt: skip
    port = free_port()
    log = (scratch / "prometheus.log").open("wb")
    command = [binary, f"--config.file={config}", f"--storage.tsdb.path={scratch / 'tsdb'}"]
    command += [f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        server = Prometheus(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert process.poll() is None, (scratch / "prometheus.log").read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.url}/-/ready", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            pytest.fail(f"prometheus not ready:\n{(scratch / 'prometheus.log').read_text()}")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _send(url: str, rows: list[dict[str, Any]], until: float, statuses: list[int]) -> None:
    with httpx.Client(timeout=10) as client:
        index = 0
        while time.monotonic() < until:
            response = client.post(f"{url}/predict", json={"rows": [rows[index % len(rows)]]})
            statuses.append(response.status_code)
            index += 1
            time.sleep(0.02)  # a steady, modest rate: the machine is shared


def _own_home(store: Path, pod: Path) -> Path:
    """A BentoML home sharing the project's store but with its own metrics directory: BentoML
    keeps its multiprocess metrics under the home, so servers sharing one would report (and
    wipe) each other's counters, which pods, each with its own filesystem, never do."""
    home = pod / "bentoml"
    home.mkdir(parents=True)
    for entry in store.iterdir():
        if entry.name not in {"prometheus_multiproc_dir", "tmp"}:
            (home / entry.name).symlink_to(entry.resolve())
    return home


@dataclass(frozen=True)
class Observed:
    templates: dict[str, dict[str, Any]]  # metric name -> the metric of its template
    results: dict[tuple[str, str, str], list[float]]  # (moment, pod hash, metric) -> result
    statuses: dict[str, list[int]]  # pod hash -> client-side status codes

    def verdict(self, moment: str, pod_hash: str, metric: str) -> str:
        return phase(self.templates[metric], self.results[moment, pod_hash, metric])

    def explain(self, pod_hash: str) -> str:
        codes = sorted(set(self.statuses[pod_hash]))
        counts = {code: self.statuses[pod_hash].count(code) for code in codes}
        values = {key: value for key, value in self.results.items() if key[1] == pod_hash}
        return f"client statuses {counts}; results {values}"


@pytest.fixture(scope="module")
def observed(pipeline_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Observed:
    scratch = tmp_path_factory.mktemp("k8s-prometheus")
    params = _test_params(pipeline_repo)
    templates = {
        template["spec"]["metrics"][0]["name"]: template["spec"]["metrics"][0]
        for template in k8s.analysis_templates(params)
    }
    schema = FeatureSchema.load(pipeline_repo / "data/prepared/features.json")
    frame, _ = read_split(pipeline_repo / "data/prepared/test.csv", schema)
    rows = example_rows(frame, schema, count=20)
    results: dict[tuple[str, str, str], list[float]] = {}
    statuses: dict[str, list[int]] = {pod_hash: [] for pod_hash in PODS}
    with contextlib.ExitStack() as stack:
        servers: dict[str, BentoServer] = {}
        for pod_hash, (service, _, extra) in PODS.items():
            env = {"BENTOML_HOME": str(_own_home(pipeline_repo / ".bentoml", scratch / pod_hash))}
            env |= {"PREDICTION_LOG_DIR": str(scratch / pod_hash / "log"), **extra}
            server = BentoServer(service, cwd=pipeline_repo, env=env,
                                 log=scratch / f"{pod_hash}.log", ready_timeout_s=90)  # fmt: skip
            stack.callback(server.stop)
            servers[pod_hash] = server.start()  # all four start at once
        for server in servers.values():
            server.wait_ready()
        ports = {pod_hash: server.port for pod_hash, server in servers.items()}
        source = stack.enter_context(prometheus(_scrape_job(params, ports), scratch))
        deadline = time.monotonic() + 30
        while source.targets_up() < len(PODS):
            assert time.monotonic() < deadline, "prometheus never scraped every server"
            time.sleep(0.5)
        time.sleep(2 * SCRAPE_S)
        quiet = time.time()  # every pod up and scraped, none has served a prediction
        until = time.monotonic() + TRAFFIC_S
        threads = [
            threading.Thread(target=_send, args=(servers[h].url, rows, until, statuses[h]))
            for h, (_, clients, _) in PODS.items()
            for _ in range(clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        busy = time.time()  # the window before this instant held traffic only
        time.sleep(2.5 * SCRAPE_S)  # until the last scrapes are in
        for moment, at in {"quiet": quiet, "busy": busy}.items():
            for pod_hash in PODS:
                for name, query in k8s.queries(params).items():
                    promql = query.replace(f"{{{{args.{k8s.HASH_ARG}}}}}", pod_hash)
                    results[moment, pod_hash, name] = source.query(promql, at)
    return Observed(templates, results, statuses)


def test_every_query_answers_exactly_one_value(observed: Observed) -> None:
    """An empty result would be a measurement error in Argo, not a verdict."""
    assert all(len(result) == 1 for result in observed.results.values()), observed.results


def test_a_healthy_canary_passes_both_metrics(observed: Observed) -> None:
    for metric in ("success-rate", "latency"):
        assert observed.verdict("busy", "canary1", metric) == SUCCESSFUL, observed.explain(
            "canary1"
        )


def test_an_erroring_canary_fails_the_success_rate(observed: Observed) -> None:
    assert 500 in observed.statuses["erroring1"]
    verdict = observed.verdict("busy", "erroring1", "success-rate")
    assert verdict == FAILED, observed.explain("erroring1")


def test_a_slow_canary_fails_the_latency_but_not_the_success_rate(observed: Observed) -> None:
    assert observed.verdict("busy", "slow1", "latency") == FAILED, observed.explain("slow1")
    verdict = observed.verdict("busy", "slow1", "success-rate")
    assert verdict == SUCCESSFUL, observed.explain("slow1")


def test_the_stable_pods_stay_healthy_beside_faulty_canaries(observed: Observed) -> None:
    """Each query sees its own pods only: the faulty canaries do not leak into stable's."""
    for metric in ("success-rate", "latency"):
        assert observed.verdict("busy", "stable1", metric) == SUCCESSFUL, observed.explain(
            "stable1"
        )


def test_a_canary_without_traffic_is_inconclusive(observed: Observed) -> None:
    """No verdict either way: Argo pauses the rollout for a human instead of aborting it."""
    for metric in ("success-rate", "latency"):
        assert math.isnan(observed.results["quiet", "canary1", metric][0])
        assert observed.verdict("quiet", "canary1", metric) == INCONCLUSIVE
