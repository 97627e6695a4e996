"""Canary, blue-green and shadow rollouts on one machine: nginx in front of BentoML servers.

    python -m rollout canary        # steps from params.yaml, analysis, promote/roll back
    python -m rollout resume        # take over an interrupted canary and carry it on
    python -m rollout blue-green    # switch all at once; `confirm` or `switch-back` later
    python -m rollout shadow        # mirror live traffic to the candidate, compare, stop
    python -m rollout rollback      # back to the previous champion, at any time
    python -m rollout status        # the persisted state
    python -m rollout stop          # stop what --keep-serving or blue-green left running

Options name the versions (BentoML store tags; default: champion as stable, challenger as the
new version), and `--no-traffic` leaves the driving to real clients.

The plan (steps, hold, analysis thresholds, failure limit) is params.yaml `rollout`, the same
values `make k8s-manifests` renders for Argo Rollouts. Every decision, with the step and the
values behind it, is written to the state file (atomically, after every step) and a summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from model.atomic import write_json_atomically
from model.params import Params
from rollout.analysis import (
    Disagreement,
    client_failures,
    disagreement_checks,
    judge,
    label_disagreement,
    mirror_bodies,
    read_entries,
    variant_stats,
)
from rollout.bento_server import DEFAULT_SERVICE, BentoServer, NotReadyError, stop_group
from rollout.nginx import Nginx, Routing
from rollout.traffic import (
    HELD_OUT_ROWS,
    Traffic,
    held_out_rows,
    model_inputs,
    request_bodies,
    request_body,
)
from serving.model_store import METADATA_FILE, use_project_store
from serving.schema import TRAFFIC_SOURCE_HEADER

DEFAULT_WORK_DIR = Path("reports/rollout")
PREVIOUS_CHAMPION_ALIAS = "previous-champion"
SMOKE_ROWS = 2  # held-out rows in the smoke test's one request
SAMPLE_REQUEST_ROWS = 8  # rows per request when two versions are compared on held-out rows


def log(message: str) -> None:
    print(f"rollout: {message}", flush=True)


# --- the models: BentoML store tags and MLflow registry versions ------------------------------


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


def alias_version(name: str, alias: str) -> str | None:
    from model.tracking import configure

    client = configure().MlflowClient()
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        return None
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except Exception:  # MlflowException: alias not set
        return None


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


# --- state ---------------------------------------------------------------------------------------


@dataclass
class Rollout:
    """Everything needed to resume, roll back or report, saved after every change."""

    path: Path
    data: dict[str, Any]

    def save(self) -> None:
        self.data["updated"] = time.time()
        write_json_atomically(self.path, self.data)

    @classmethod
    def load(cls, path: Path) -> Rollout:
        if not path.exists():
            raise SystemExit(f"rollout: no rollout state at {path}")
        return cls(path, json.loads(path.read_text()))


def sample_rows(info: dict[str, Any], rows_file: Path = HELD_OUT_ROWS) -> list[dict[str, Any]]:
    """Held-out rows as the model `info` describes takes them (a client's JSON rows)."""
    return held_out_rows(rows_file, model_inputs(info))


def sample_body(info: dict[str, Any], rows_file: Path = HELD_OUT_ROWS) -> str:
    """A /predict body of a few held-out rows for the model `info` describes: the smoke test."""
    return request_body(sample_rows(info, rows_file)[:SMOKE_ROWS])


def smoke_test(url: str, body: str, labels: Sequence[str] = ()) -> str | None:
    """None when the server answers a real request sensibly (one prediction per row, each a
    label of the model's own when `labels` are given), else what went wrong."""
    try:
        headers = {"content-type": "application/json", TRAFFIC_SOURCE_HEADER: "smoke-test"}
        response = httpx.post(f"{url}/predict", content=body, headers=headers, timeout=10)
    except httpx.HTTPError as error:
        return f"smoke test: {type(error).__name__}: {error}"
    if response.status_code != 200:
        return f"smoke test: HTTP {response.status_code}: {response.text[:200]}"
    try:
        answers = response.json()
        predicted = [answer["label"] for answer in answers]
    except (ValueError, TypeError, KeyError):
        return f"smoke test: unexpected answer {response.text[:200]}"
    if len(predicted) != len(json.loads(body)["rows"]):
        return f"smoke test: unexpected answer {response.text[:200]}"
    if labels and (unknown := sorted({str(label) for label in predicted} - set(labels))):
        return f"smoke test: labels {unknown} are not the model's {list(labels)}"
    return None


def start_server(tag: str, service: str, params: Params, work_dir: Path, role: str) -> BentoServer:
    server = BentoServer(
        service,
        env={"SERVING_MODEL_TAG": tag},
        log=work_dir / f"{role}.log",
        ready_timeout_s=params.serving.ready_timeout_s,
    )
    server.start()
    log(f"{role}: starting {tag} on {server.url} (pid {server.pid})")
    return server


def variant(server: BentoServer, tag: str) -> dict[str, Any]:
    return {
        "model_tag": tag,
        "port": server.port,
        "pid": server.pid,
        "workers": server.family,
        "url": server.url,
    }


# --- canary --------------------------------------------------------------------------------------


def run_canary(
    params: Params,
    stable_tag: str | None,
    canary_tag: str,
    *,
    canary_service: str,
    work_dir: Path,
    drive_traffic: bool,
    keep_serving: bool,
    resume: Rollout | None = None,
) -> dict[str, Any]:
    """Steps, analysis, then promotion or rollback. Returns the final state.

    With `resume` (the state of a rollout whose controller was killed while its servers kept
    running), the servers are taken over and the interrupted step starts again.
    """
    plan = params.rollout
    state = resume or Rollout(
        work_dir / "state.json",
        {
            "strategy": "canary",
            "phase": "starting",
            "plan": plan.model_dump(),
            "steps": [],
            "failed_analyses": 0,
            "decision": None,
        },
    )
    work_dir.mkdir(parents=True, exist_ok=True)
    nginx = Nginx(work_dir / "nginx", plan.nginx_port)
    canary_info = model_info(canary_tag)
    body = sample_body(canary_info)
    servers: dict[str, BentoServer] = {}
    first_step = 0
    if resume is not None:
        for role in ("stable", "canary"):
            saved = resume.data[role]
            servers[role] = BentoServer.attach(saved["port"], saved["pid"], saved["workers"])
        first_step = int(resume.data.get("step", 0))
        log(f"resuming at step {first_step + 1}: stable and canary taken over")

    def decide(action: str, reason: str, **values: Any) -> None:
        state.data["decision"] = {"action": action, "reason": reason, **values}
        state.data["phase"] = "promoted" if action == "promote" else "rolled_back"
        state.save()
        log(f"DECISION: {action.upper()}: {reason}")

    def roll_back(reason: str, **values: Any) -> None:
        if "stable" in servers:
            nginx.apply(Routing({servers["stable"].port: 1}))
        if "canary" in servers:
            servers.pop("canary").stop()
        decide("rollback", reason, **values)

    try:
        if resume is not None:
            pass
        elif stable_tag is not None:
            servers["stable"] = start_server(
                stable_tag, DEFAULT_SERVICE, params, work_dir, "stable"
            )
            servers["stable"].wait_ready()
            state.data["stable"] = variant(servers["stable"], stable_tag)
            nginx.apply(Routing({servers["stable"].port: 1}))
        if resume is None:
            servers["canary"] = start_server(canary_tag, canary_service, params, work_dir, "canary")
            state.data["canary"] = variant(servers["canary"], canary_tag)
            state.data["nginx"] = {"prefix": str(nginx.prefix), "url": nginx.url}
            state.save()
            try:
                servers["canary"].wait_ready()
                state.data["canary"] = variant(servers["canary"], canary_tag)
            except NotReadyError as error:
                roll_back(
                    f"canary not ready within {params.serving.ready_timeout_s:g} s; no traffic "
                    "reached it",
                    step=None,
                    log_tail=str(error)[-800:],
                )
                return state.data
        problem = smoke_test(servers["canary"].url, body, canary_info["labels"])
        if problem is not None:
            roll_back(f"canary failed its {problem}", step=None)
            return state.data
        if stable_tag is None and resume is None:
            nginx.apply(Routing({servers["canary"].port: 1}))
            _promote(state, params, servers, nginx, first=True)
            return state.data

        hold = plan.hold_s
        total = hold * len(plan.steps) + 10
        # Clients were written for the stable version: they send what it takes.
        clients_model = model_info_path(str(state.data["stable"]["model_tag"]))
        traffic = (
            Traffic(nginx.url, plan.traffic, total, work_dir, clients_model)
            if drive_traffic
            else None
        )
        started = time.time()
        if traffic is not None:
            traffic.__enter__()
        try:
            for index, weight in list(enumerate(plan.steps))[first_step:]:
                stable_port, canary_port = servers["stable"].port, servers["canary"].port
                nginx.apply(Routing({stable_port: 100 - weight, canary_port: weight}))
                state.data.update(phase="progressing", step=index, weight=weight)
                state.save()
                log(f"step {index + 1}/{len(plan.steps)}: canary weight {weight}%, hold {hold:g} s")
                since = time.time()
                died = _hold(servers["canary"], hold)
                until = time.time()
                if died:
                    roll_back(
                        f"canary process died at step {index + 1} (weight {weight}%)",
                        step=index + 1,
                        weight=weight,
                    )
                    break
                entries = read_entries(nginx.access_log, since, until)
                canary = variant_stats(entries, canary_port)
                stable = variant_stats(entries, stable_port)
                agreement = label_disagreement(
                    mirror_bodies(entries, plan.analysis.mirror_requests),
                    servers["stable"].url,
                    servers["canary"].url,
                )
                verdict = judge(canary, agreement, plan.analysis, stable)
                record = {
                    "step": index + 1,
                    "weight": weight,
                    "window": [since, until],
                    "stable": stable.describe(),
                    **verdict.checks,
                    "passed": verdict.passed,
                    "reasons": verdict.reasons,
                }
                state.data["steps"].append(record)
                shown = "n/a" if agreement is None else agreement.describe()
                log(
                    f"  stable: {stable.requests} req, {stable.success_rate:.1%} ok, "
                    f"{stable.client_error_rate:.1%} 4xx, p99 {stable.p99_ms:.1f} ms | canary: "
                    f"{canary.requests} req, {canary.success_rate:.1%} ok, "
                    f"{canary.client_error_rate:.1%} 4xx, p99 {canary.p99_ms:.1f} ms, "
                    f"label disagreement {shown} -> {'pass' if verdict.passed else 'FAIL'}"
                )
                if not verdict.passed:
                    state.data["failed_analyses"] += 1
                    if state.data["failed_analyses"] > plan.failure_limit:
                        roll_back(
                            f"step {index + 1} (weight {weight}%): " + "; ".join(verdict.reasons),
                            step=index + 1,
                            weight=weight,
                            values=record,
                        )
                        break
                state.save()
            else:
                _promote(state, params, servers, nginx, first=False)
        finally:
            if traffic is not None:
                traffic.__exit__(None, None, None)
            entries = read_entries(nginx.access_log, started, time.time())
            state.data["client_requests"] = len(entries)
            state.data["client_failures"] = client_failures(entries)
            state.save()
        return state.data
    except BaseException as error:
        if state.data["decision"] is None:
            roll_back(f"rollout interrupted: {type(error).__name__}: {error}")
        raise
    finally:
        if not keep_serving:
            nginx.stop()  # clients first: nothing routes to a server about to stop
            for server in servers.values():
                server.stop()
            serving_path(work_dir).unlink(missing_ok=True)
            state.data["serving"] = "stopped (run with --keep-serving to leave it up)"
            state.save()
        elif state.data["phase"] in ("promoted", "rolled_back"):
            promoted = state.data["phase"] == "promoted"
            server = state.data["canary" if promoted else "stable"]
            old_stable = state.data.get("stable") if promoted and stable_tag is not None else None
            previous = _stopped(old_stable) if old_stable else None
            record_serving(work_dir, nginx, server, previous)
            state.data["serving"] = f"up at {nginx.url}"
            state.save()


def _hold(canary: BentoServer, seconds: float) -> bool:
    """Wait out a step; True as soon as the canary process is found dead."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not canary.alive():
            return True
        time.sleep(0.25)
    return not canary.alive()


def _promote(
    state: Rollout,
    params: Params,
    servers: dict[str, BentoServer],
    nginx: Nginx,
    *,
    first: bool,
) -> None:
    """All traffic to the new version, the old stable drained and stopped, `champion` moved."""
    canary = servers["canary"]
    nginx.apply(Routing({canary.port: 1}))
    if "stable" in servers:
        time.sleep(0.5)  # let in-flight requests on the old stable finish
        servers.pop("stable").stop()
    servers["stable"] = servers.pop("canary")
    name = params.registry.model_name
    version = registry_version_of(state.data["canary"]["model_tag"])
    previous = alias_version(name, params.registry.champion_alias)
    if version is not None:
        if previous is not None and previous != version:
            move_alias(name, PREVIOUS_CHAMPION_ALIAS, previous)
        move_alias(name, params.registry.champion_alias, version)
    state.data["previous_champion"] = previous
    state.data["champion"] = version
    reason = (
        "first deployment: no stable version to compare against, smoke test passed"
        if first
        else f"every step passed analysis ({len(params.rollout.steps)} steps)"
    )
    state.data["decision"] = {"action": "promote", "reason": reason}
    state.data["phase"] = "promoted"
    state.save()
    log(f"DECISION: PROMOTE: {reason}; champion -> version {version} (was {previous})")


# --- what serves now ------------------------------------------------------------------------------


def serving_path(work_dir: Path) -> Path:
    """What nginx serves now, across runs: its server, and the previous champion's for rollback."""
    return work_dir / "serving.json"


def record_serving(
    work_dir: Path, nginx: Nginx, server: dict[str, Any], previous: dict[str, Any] | None
) -> None:
    data = {
        "nginx": {"prefix": str(nginx.prefix), "url": nginx.url, "port": nginx.listen_port},
        "server": server,
        "previous": previous,
    }
    write_json_atomically(serving_path(work_dir), data)


def _stopped(server: dict[str, Any]) -> dict[str, Any]:
    """A stopped server's record: its model and port, never a pid another process may reuse."""
    return {key: value for key, value in server.items() if key not in ("pid", "workers")}


def live_serving(work_dir: Path) -> dict[str, Any] | None:
    """The serving record when its nginx and server still run, else None."""
    path = serving_path(work_dir)
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    nginx = Nginx(Path(data["nginx"]["prefix"]), int(data["nginx"]["port"]))
    server = BentoServer.attach(data["server"]["port"], data["server"]["pid"])
    return data if nginx.running() and server.alive() else None


def start_ready(
    tag: str, params: Params, work_dir: Path, role: str, port: int | None = None
) -> BentoServer:
    """A ready server for `tag`, on `port` if that is still free (nginx already routes to it)."""
    server = BentoServer(
        DEFAULT_SERVICE,
        port=port,
        env={"SERVING_MODEL_TAG": tag},
        log=work_dir / f"{role}.log",
        ready_timeout_s=params.serving.ready_timeout_s,
    )
    server.start()
    try:
        server.wait_ready()
    except NotReadyError:
        server.stop()
        if port is None:
            raise
        return start_ready(tag, params, work_dir, role)  # the old port is taken: a new one
    log(f"{role}: {tag} ready on {server.url} (pid {server.pid})")
    return server


# --- blue-green and shadow ------------------------------------------------------------------------


def _agreement_on_sample(
    old_info: dict[str, Any], new_info: dict[str, Any], old_url: str, new_url: str
) -> Disagreement | None:
    """Label disagreement between two servers on held-out rows (a smoke test for a new model).
    Each server gets the rows laid out for its own model's inputs; None when the held-out rows
    lack an input of the old model (a breaking change of inputs: nothing to compare on)."""
    try:
        old_rows = sample_rows(old_info)
    except ValueError as error:
        log(f"agreement not measured: {error}")
        return None
    new_rows = sample_rows(new_info)
    return label_disagreement(
        request_bodies(old_rows, SAMPLE_REQUEST_ROWS),
        old_url,
        new_url,
        canary_bodies=request_bodies(new_rows, SAMPLE_REQUEST_ROWS),
    )


def run_blue_green(
    params: Params, blue_tag: str, green_tag: str, *, work_dir: Path, drive_traffic: bool
) -> dict[str, Any]:
    """Start green beside blue, smoke-test it, switch all traffic at once; blue stays ready."""
    work_dir.mkdir(parents=True, exist_ok=True)
    nginx = Nginx(work_dir / "nginx", params.rollout.nginx_port)
    state = Rollout(work_dir / "state.json", {"strategy": "blue-green", "phase": "starting"})
    state.save()  # `status` shows this run from its start
    blue = start_server(blue_tag, DEFAULT_SERVICE, params, work_dir, "blue")
    green = start_server(green_tag, DEFAULT_SERVICE, params, work_dir, "green")
    state.data["nginx"] = {"prefix": str(nginx.prefix), "url": nginx.url}
    try:
        blue.wait_ready()
        nginx.apply(Routing({blue.port: 1}))
        state.data["blue"] = variant(blue, blue_tag)
        record_serving(work_dir, nginx, state.data["blue"], None)
        green.wait_ready()
        state.data["green"] = variant(green, green_tag)
        state.save()
        blue_info, green_info = model_info(blue_tag), model_info(green_tag)
        problem = smoke_test(green.url, sample_body(green_info), green_info["labels"])
        disagreement = _agreement_on_sample(blue_info, green_info, blue.url, green.url)
        limit = params.rollout.analysis.max_label_disagreement
        if problem is None and disagreement is not None and disagreement.exceeds(limit):
            problem = disagreement.failure(limit, "blue", "held-out")
        state.data["smoke_test"] = {"problem": problem, **disagreement_checks(disagreement)}
    except (NotReadyError, httpx.HTTPError) as error:
        problem = f"{type(error).__name__}: {str(error)[:300]}"
    if problem is not None:
        green.stop()
        state.data.update(phase="aborted", decision={"action": "abort", "reason": problem})
        state.save()
        log(f"DECISION: ABORT: green failed: {problem}; blue keeps all traffic")
        return state.data
    seconds = params.rollout.hold_s
    clients_model = model_info_path(blue_tag)
    state.data["phase"] = "switching"
    state.save()
    with _maybe_traffic(nginx, params, 2 * seconds, work_dir, drive_traffic, clients_model):
        time.sleep(seconds)
        switched_at = time.time()
        nginx.apply(Routing({green.port: 1}))
        record_serving(work_dir, nginx, state.data["green"], state.data["blue"])
        log(f"switched: all traffic on green ({green_tag}); blue ({blue_tag}) kept ready")
        time.sleep(seconds)
    entries = read_entries(nginx.access_log, switched_at - seconds, time.time())
    state.data.update(
        phase="switched",
        client_requests=len(entries),
        client_failures=client_failures(entries),
        decision={"action": "switch", "reason": "green ready, smoke test and agreement passed"},
    )
    state.save()
    log("run `python -m rollout confirm` to keep green, or `switch-back` to return to blue")
    return state.data


def finish_blue_green(params: Params, work_dir: Path, *, confirm: bool) -> dict[str, Any]:
    """`confirm`: stop blue, green becomes champion. `switch-back`: traffic to blue, stop green."""
    state = Rollout.load(work_dir / "state.json")
    if state.data.get("strategy") != "blue-green" or state.data.get("phase") != "switched":
        raise SystemExit(f"rollout: no switched blue-green rollout in {state.path}")
    nginx = Nginx(Path(state.data["nginx"]["prefix"]), params.rollout.nginx_port)
    keep, drop = ("green", "blue") if confirm else ("blue", "green")
    nginx.apply(Routing({int(state.data[keep]["port"]): 1}))
    time.sleep(0.5)  # in-flight requests finish before the other side goes
    stop_group(int(state.data[drop]["pid"]), known=state.data[drop].get("workers", []))
    if confirm:
        version = registry_version_of(state.data["green"]["model_tag"])
        name = params.registry.model_name
        previous = alias_version(name, params.registry.champion_alias)
        if version is not None:
            if previous is not None and previous != version:
                move_alias(name, PREVIOUS_CHAMPION_ALIAS, previous)
            move_alias(name, params.registry.champion_alias, version)
        state.data.update(champion=version, previous_champion=previous)
    record_serving(
        work_dir, nginx, state.data[keep], _stopped(state.data[drop]) if confirm else None
    )
    state.data["phase"] = "confirmed" if confirm else "switched_back"
    state.save()
    log(f"{state.data['phase']}: {keep} serves all traffic, {drop} stopped")
    return state.data


def run_shadow(
    params: Params,
    stable_tag: str,
    shadow_tag: str,
    *,
    work_dir: Path,
    drive_traffic: bool,
    shadow_service: str = DEFAULT_SERVICE,
) -> dict[str, Any]:
    """Mirror live traffic to the candidate; clients only ever get stable's answers.

    With a rollout serving already (serving.json), the mirror attaches to the server that serves
    and leaves it serving; otherwise a stable server and nginx are started for the run.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    live = live_serving(work_dir)
    state = Rollout(work_dir / "state.json", {"strategy": "shadow", "phase": "starting"})
    state.save()
    if live is not None:
        nginx = Nginx(Path(live["nginx"]["prefix"]), int(live["nginx"]["port"]))
        saved = live["server"]
        stable = BentoServer.attach(saved["port"], saved["pid"], saved.get("workers", []))
        if saved["model_tag"] != stable_tag:
            log(f"shadow: {saved['model_tag']} serves; it is the one compared, not {stable_tag}")
        stable_tag = saved["model_tag"]
        log(f"shadow: attaching to the live server {stable_tag} behind {nginx.url}")
    else:
        nginx = Nginx(work_dir / "nginx", params.rollout.nginx_port)
        stable = start_server(stable_tag, DEFAULT_SERVICE, params, work_dir, "stable")
    shadow = start_server(shadow_tag, shadow_service, params, work_dir, "shadow")
    state.data.update(
        attached=live is not None,
        nginx={"prefix": str(nginx.prefix), "url": nginx.url},
        stable=variant(stable, stable_tag),
        shadow=variant(shadow, shadow_tag),
    )
    state.save()
    try:
        if live is None:
            stable.wait_ready()
        shadow.wait_ready()
        state.data["shadow"] = variant(shadow, shadow_tag)
        nginx.apply(Routing({stable.port: 1}, shadow_port=shadow.port))
        seconds = params.rollout.hold_s * 2
        state.data["phase"] = "mirroring"
        state.save()
        log(f"shadow: mirroring all traffic to {shadow_tag} for {seconds:g} s")
        started = time.time()
        clients_model = model_info_path(stable_tag)
        with _maybe_traffic(nginx, params, seconds, work_dir, drive_traffic, clients_model):
            time.sleep(seconds)
        until = time.time()
        nginx.apply(Routing({stable.port: 1}))  # the mirror goes first, serving stays
        served = read_entries(nginx.access_log, started, until)
        mirrored = read_entries(nginx.shadow_log, started, until, uri="/__to_shadow")
        stable_stats = variant_stats(served, stable.port)
        shadow_stats = variant_stats(mirrored, shadow.port)
        disagreement = label_disagreement(
            mirror_bodies(served, params.rollout.analysis.mirror_requests), stable.url, shadow.url
        )
        state.data.update(
            {
                "phase": "done",
                "stable": state.data["stable"] | {"stats": stable_stats.describe()},
                "shadow": state.data["shadow"] | {"stats": shadow_stats.describe()},
                **disagreement_checks(disagreement),
                "client_requests": len(served),
                "client_failures": client_failures(served),
            }
        )
        shown = "n/a" if disagreement is None else disagreement.describe()
        log(
            f"shadow: stable p99 {stable_stats.p99_ms:.1f} ms ({stable_stats.requests} req) | "
            f"shadow p99 {shadow_stats.p99_ms:.1f} ms ({shadow_stats.requests} req, "
            f"{shadow_stats.success_rate:.1%} ok) | label disagreement {shown}"
        )
        return state.data
    finally:
        if state.data["phase"] != "done":
            state.data["phase"] = "aborted"
        if live is not None:
            if nginx.running():
                nginx.apply(Routing({stable.port: 1}))
            shadow.stop()
        else:
            nginx.stop()  # clients first: nothing routes to a server about to stop
            shadow.stop()
            stable.stop()
        state.save()


class _NoTraffic:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def _maybe_traffic(
    nginx: Nginx, params: Params, seconds: float, work_dir: Path, drive: bool, clients_model: Path
) -> Traffic | _NoTraffic:
    if not drive:
        return _NoTraffic()
    return Traffic(nginx.url, params.rollout.traffic, seconds, work_dir, clients_model)


def stop_all(params: Params, work_dir: Path) -> None:
    """Stop every server and nginx a rollout left running (`--keep-serving`, blue-green)."""
    state = Rollout.load(work_dir / "state.json")
    live = live_serving(work_dir)
    if live is not None:
        Nginx(Path(live["nginx"]["prefix"]), int(live["nginx"]["port"])).stop()
        # the server that serves, and blue kept ready beside green (a later run may have
        # replaced the blue-green state)
        for server in (live["server"], live.get("previous") or {}):
            if server.get("pid"):
                stop_group(int(server["pid"]), known=server.get("workers", []))
    if "nginx" in state.data:
        Nginx(Path(state.data["nginx"]["prefix"]), params.rollout.nginx_port).stop()
    for role in ("stable", "canary", "blue", "green", "shadow"):
        if role in state.data and state.data[role].get("pid"):
            server = state.data[role]
            stop_group(int(server["pid"]), known=server.get("workers", []))
    serving_path(work_dir).unlink(missing_ok=True)
    log("stopped every server and nginx of the last rollout")


def _undo_run_in_progress(params: Params, state: Rollout, work_dir: Path) -> bool:
    """Undo a run that has not finished (nothing promoted yet); False when none is running."""
    phase, strategy = state.data.get("phase"), state.data.get("strategy")
    nginx_info = state.data.get("nginx")
    nginx = Nginx(Path(nginx_info["prefix"]), params.rollout.nginx_port) if nginx_info else None
    if strategy == "blue-green" and phase == "switched":
        finish_blue_green(params, work_dir, confirm=False)
        return True
    if strategy == "canary" and phase == "progressing":
        keep, drop = "stable", "canary"
    elif strategy == "shadow" and phase in ("starting", "mirroring"):
        keep, drop = "stable", "shadow"
        if state.data.get("attached"):
            nginx = None  # the live serving's nginx, routed below without the mirror
            live = live_serving(work_dir)
            if live is not None:
                prefix, port = Path(live["nginx"]["prefix"]), int(live["nginx"]["port"])
                nginx = Nginx(prefix, port)
    else:
        return False
    kept = state.data.get(keep)
    if kept and nginx is not None and nginx.running():
        nginx.apply(Routing({int(kept["port"]): 1}))
    dropped = state.data.get(drop, {})
    if dropped.get("pid"):
        stop_group(int(dropped["pid"]), known=dropped.get("workers", []))
    state.data["phase"] = "rolled_back"
    state.data["decision"] = {"action": "rollback", "reason": "rolled back by hand"}
    state.save()
    log(f"interrupted {strategy} rolled back: {drop} stopped, traffic on {keep}")
    return True


def rollback_to_previous(params: Params, work_dir: Path) -> dict[str, Any]:
    """Undo the last rollout: a run in progress is undone (nothing was promoted); otherwise the
    previous champion gets the `champion` alias back and, when a rollout serves, all traffic."""
    state_path = work_dir / "state.json"
    state = Rollout.load(state_path) if state_path.exists() else None
    if state is not None and _undo_run_in_progress(params, state, work_dir):
        return state.data
    name = params.registry.model_name
    previous = alias_version(name, PREVIOUS_CHAMPION_ALIAS)
    if previous is None:
        raise SystemExit("rollout: no previous champion recorded; nothing to roll back to")
    live = live_serving(work_dir)
    result: dict[str, Any] = {"champion": previous}
    if live is not None:
        before = live.get("previous") or {}
        tag = before.get("model_tag") or store_tag_for(name, previous)
        if tag is None:
            raise SystemExit(f"rollout: version {previous} is not in the BentoML store")
        if registry_version_of(tag) != previous:
            tag = store_tag_for(name, previous) or tag
        server = start_ready(tag, params, work_dir, "rollback", before.get("port"))
        problem = smoke_test(server.url, sample_body(model_info(tag)))
        if problem is not None:
            server.stop()
            raise SystemExit(f"rollout: previous champion {tag} failed its {problem}")
        nginx = Nginx(Path(live["nginx"]["prefix"]), int(live["nginx"]["port"]))
        nginx.apply(Routing({server.port: 1}))
        time.sleep(0.5)  # in-flight requests on the rolled-back version finish
        current = live["server"]
        stop_group(int(current["pid"]), known=current.get("workers", []))
        record_serving(work_dir, nginx, variant(server, tag), None)
        result["serving"] = variant(server, tag)
        log(f"traffic on the previous champion {tag}; {current['model_tag']} stopped")
    rolled_back = alias_version(name, params.registry.champion_alias)
    move_alias(name, params.registry.champion_alias, previous)
    delete_alias(name, PREVIOUS_CHAMPION_ALIAS)  # a second rollback must not bring it back
    log(f"champion alias restored to version {previous} (was {rolled_back})")
    if state is not None:
        state.data.update(
            phase="rolled_back",
            champion=previous,
            previous_champion=None,
            decision={"action": "rollback", "reason": f"version {rolled_back} rolled back by hand"},
        )
        state.save()
    return result


# --- what the pipeline found out about the release ------------------------------------------------


def _report_for(path: Path, info: dict[str, Any], sha_of: str) -> dict[str, Any] | None:
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


def refuse(work_dir: Path, strategy: str, tag: str, problems: list[str]) -> dict[str, Any]:
    """Record and say why nothing was started."""
    work_dir.mkdir(parents=True, exist_ok=True)
    reason = f"{tag} refused: " + "; ".join(problems)
    state = Rollout(
        work_dir / "state.json",
        {
            "strategy": strategy,
            "phase": "refused",
            "decision": {"action": "refuse", "reason": reason},
        },
    )
    state.save()
    log(f"DECISION: REFUSE: {reason}")
    return state.data


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


def resume_canary(params: Params, work_dir: Path, *, drive_traffic: bool) -> int:
    """Carry on a canary whose controller died, or roll it back if a server died with it."""
    saved = Rollout.load(work_dir / "state.json")
    if saved.data.get("strategy") != "canary" or saved.data.get("phase") != "progressing":
        raise SystemExit(f"rollout: nothing to resume ({saved.data.get('phase')})")
    dead = [
        role
        for role in ("stable", "canary")
        if not BentoServer.attach(saved.data[role]["port"], saved.data[role]["pid"]).alive()
    ]
    if dead:
        log(f"cannot resume: {', '.join(dead)} no longer running; rolling back instead")
        rollback_to_previous(params, work_dir)
        return 1
    result = run_canary(
        params,
        saved.data["stable"]["model_tag"],
        saved.data["canary"]["model_tag"],
        canary_service=DEFAULT_SERVICE,
        work_dir=work_dir,
        drive_traffic=drive_traffic,
        keep_serving=False,
        resume=saved,
    )
    write_json_atomically(work_dir / "summary.json", result)
    return 0 if result["phase"] == "promoted" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "command",
        choices=[
            "canary",
            "resume",
            "blue-green",
            "confirm",
            "switch-back",
            "shadow",
            "rollback",
            "status",
            "stop",
        ],
    )
    parser.add_argument("--stable-tag", help="BentoML model tag to keep (default: the champion)")
    parser.add_argument(
        "--canary-tag", help="BentoML model tag to roll out (default: the challenger)"
    )
    parser.add_argument(
        "--canary-service", default=DEFAULT_SERVICE, help="BentoML service of the canary"
    )
    parser.add_argument("--no-traffic", action="store_true", help="do not start the Locust traffic")
    parser.add_argument("--keep-serving", action="store_true", help="leave nginx and servers up")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument(
        "--allow-breaking",
        action="store_true",
        help="blue-green: switch to a release whose input schema breaks clients (never a canary)",
    )
    parser.add_argument("--gate-report", type=Path, default=Path("reports/gate.json"))
    parser.add_argument("--load-test-report", type=Path, default=Path("reports/load_test.json"))
    args = parser.parse_args(argv)
    use_project_store()
    params = Params.load()
    state_path = args.work_dir / "state.json"
    if args.command == "status":
        status = json.loads(Rollout.load(state_path).path.read_text())
        live = live_serving(args.work_dir)
        status["serving_now"] = live["server"] | {"url": live["nginx"]["url"]} if live else None
        print(json.dumps(status, indent=2))
        return 0
    if args.command == "rollback":
        rollback_to_previous(params, args.work_dir)
        return 0
    if args.command == "stop":
        stop_all(params, args.work_dir)
        return 0
    if args.command == "resume":
        return resume_canary(params, args.work_dir, drive_traffic=not args.no_traffic)
    if args.command in ("confirm", "switch-back"):
        finish_blue_green(params, args.work_dir, confirm=args.command == "confirm")
        return 0
    if args.canary_tag:
        stable, canary = args.stable_tag, args.canary_tag
    else:
        stable, canary = default_tags(params)
        stable = args.stable_tag or stable
    traffic = not args.no_traffic
    if args.command in ("blue-green", "shadow") and stable is None:
        raise SystemExit(f"rollout: {args.command} needs a current version (--stable-tag)")
    if args.command in ("canary", "blue-green"):
        info = model_info(canary)
        problems = release_problems(
            info,
            _report_for(args.gate_report, info, "candidate.onnx_sha256"),
            _report_for(args.load_test_report, info, "onnx_sha256"),
            strategy=args.command,
            allow_breaking=args.allow_breaking,
        )
        if problems:
            write_json_atomically(
                args.work_dir / "summary.json",
                refuse(args.work_dir, args.command, canary, problems),
            )
            return 1
    if args.command == "blue-green":
        assert stable is not None
        result = run_blue_green(
            params, stable, canary, work_dir=args.work_dir, drive_traffic=traffic
        )
        ok = result["phase"] == "switched"
    elif args.command == "shadow":
        assert stable is not None
        result = run_shadow(
            params,
            stable,
            canary,
            work_dir=args.work_dir,
            drive_traffic=traffic,
            shadow_service=args.canary_service,
        )
        ok = True
    else:
        result = run_canary(
            params,
            stable,
            canary,
            canary_service=args.canary_service,
            work_dir=args.work_dir,
            drive_traffic=traffic,
            keep_serving=args.keep_serving,
        )
        ok = result["phase"] == "promoted"
    write_json_atomically(args.work_dir / "summary.json", result)
    log(f"summary -> {args.work_dir / 'summary.json'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
