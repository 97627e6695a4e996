"""Blue-green: green starts beside blue, is smoke-tested and compared on held-out rows, then
takes all traffic at once; blue stays ready until `confirm` (stop blue, move `champion`) or
`switch-back` (traffic to blue, stop green)."""

from __future__ import annotations

import time

import httpx

from rollout.analysis import client_failures, disagreement_checks, read_entries
from rollout.bento_server import BentoServer, NotReadyError
from rollout.nginx import Nginx, Routing
from rollout.servers import (
    DRAIN_S,
    Setup,
    agreement_on_sample,
    log,
    proxy_of,
    proxy_record,
    record,
    record_serving,
    sample_body,
    smoke_test,
    start_server,
    stop_recorded,
    traffic,
)
from rollout.state import Decision, RolloutState, SmokeTest, load_state, save_state
from rollout.versions import crown, model_info, model_info_path


def run_blue_green(setup: Setup, blue_tag: str, green_tag: str) -> RolloutState:
    """Start green beside blue, smoke-test it, switch all traffic at once; blue stays ready."""
    work_dir = setup.work_dir
    work_dir.mkdir(parents=True, exist_ok=True)
    nginx = setup.proxy()
    state = RolloutState(strategy="blue-green", phase="starting", nginx=proxy_record(nginx))
    save_state(work_dir, state)  # `status` shows this run from its start
    blue = start_server(setup, blue_tag, "blue")
    green = start_server(setup, green_tag, "green")
    try:
        problem = _check_green(setup, state, nginx, (blue, blue_tag), (green, green_tag))
    except (NotReadyError, httpx.HTTPError) as error:
        problem = f"{type(error).__name__}: {str(error)[:300]}"
    if problem is not None:
        green.stop()
        state.phase = "aborted"
        state.decision = Decision(action="abort", reason=problem)
        save_state(work_dir, state)
        log(f"DECISION: ABORT: green failed: {problem}; blue keeps all traffic")
        return state
    _switch(setup, state, nginx, green)
    log(f"switched: all traffic on green ({green_tag}); blue ({blue_tag}) kept ready")
    log("run `python -m rollout confirm` to keep green, or `switch-back` to return to blue")
    return state


def _check_green(
    setup: Setup,
    state: RolloutState,
    nginx: Nginx,
    blue: tuple[BentoServer, str],
    green: tuple[BentoServer, str],
) -> str | None:
    """Blue ready and serving, green ready; what is wrong with green (None: nothing)."""
    (blue_server, blue_tag), (green_server, green_tag) = blue, green
    blue_server.wait_ready()
    nginx.apply(Routing({blue_server.port: 1}))
    state.blue = record(blue_server, blue_tag)
    record_serving(setup.work_dir, nginx, state.blue, None)
    green_server.wait_ready()
    state.green = record(green_server, green_tag)
    save_state(setup.work_dir, state)
    blue_info, green_info = model_info(blue_tag), model_info(green_tag)
    body = sample_body(green_info, setup.rows)
    problem = smoke_test(green_server.url, body, green_info["labels"])
    disagreement = agreement_on_sample(
        blue_info, green_info, blue_server.url, green_server.url, setup.rows
    )
    limit = setup.params.rollout.analysis.max_label_disagreement
    if problem is None and disagreement is not None and disagreement.exceeds(limit):
        problem = disagreement.failure(limit, "blue", "held-out")
    state.smoke_test = SmokeTest(problem=problem, **disagreement_checks(disagreement))
    return problem


def _switch(setup: Setup, state: RolloutState, nginx: Nginx, green: BentoServer) -> None:
    """Clients on blue for one hold, all at once on green, then one hold more, measured."""
    seconds = setup.params.rollout.hold_s
    blue = state.require("blue")
    state.phase = "switching"
    save_state(setup.work_dir, state)
    with traffic(setup, nginx, 2 * seconds, model_info_path(blue.model_tag)):
        time.sleep(seconds)  # clients settle on blue: the switch happens under load
        switched_at = time.time()
        nginx.apply(Routing({green.port: 1}))
        record_serving(setup.work_dir, nginx, state.require("green"), blue)
        time.sleep(seconds)
    entries = read_entries(nginx.access_log, switched_at - seconds, time.time())
    state.phase = "switched"
    state.client_requests = len(entries)
    state.client_failures = client_failures(entries)
    reason = "green ready, smoke test and agreement passed"
    state.decision = Decision(action="switch", reason=reason)
    save_state(setup.work_dir, state)


def finish_blue_green(setup: Setup, *, confirm: bool) -> RolloutState:
    """`confirm`: stop blue, green becomes champion. `switch-back`: traffic to blue, stop green."""
    state = load_state(setup.work_dir)
    if state.strategy != "blue-green" or state.phase != "switched" or state.nginx is None:
        raise SystemExit(f"rollout: no switched blue-green rollout in {setup.work_dir}")
    nginx = proxy_of(state.nginx, setup.params.rollout.nginx_port)
    keep, drop = ("green", "blue") if confirm else ("blue", "green")
    nginx.apply(Routing({state.require(keep).port: 1}))
    time.sleep(DRAIN_S)
    stop_recorded(state.require(drop))
    if confirm:
        state.champion, state.previous_champion = crown(setup.params, state.require(keep).model_tag)
    previous = state.require(drop).stopped() if confirm else None
    record_serving(setup.work_dir, nginx, state.require(keep), previous)
    state.phase = "confirmed" if confirm else "switched_back"
    save_state(setup.work_dir, state)
    log(f"{state.phase}: {keep} serves all traffic, {drop} stopped")
    return state
