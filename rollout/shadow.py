"""Shadow: nginx mirrors every request to the candidate and drops its answers, so clients only
ever get stable's; the access logs and a label comparison say how the candidate would have done."""

from __future__ import annotations

import time
from dataclasses import dataclass

from rollout.analysis import (
    client_failures,
    disagreement_checks,
    label_disagreement,
    mirror_bodies,
    read_entries,
    variant_stats,
)
from rollout.bento_server import DEFAULT_SERVICE, BentoServer
from rollout.nginx import Nginx, Routing
from rollout.servers import (
    Setup,
    attach,
    live_serving,
    log,
    proxy_of,
    proxy_record,
    record,
    start_server,
    traffic,
)
from rollout.state import RolloutState, save_state
from rollout.versions import model_info_path


@dataclass
class _Mirror:
    nginx: Nginx
    stable: BentoServer
    shadow: BentoServer
    attached: bool  # the stable server is the live serving's, left serving afterwards


def run_shadow(
    setup: Setup, stable_tag: str, shadow_tag: str, shadow_service: str = DEFAULT_SERVICE
) -> RolloutState:
    """Mirror live traffic to the candidate; clients only ever get stable's answers.

    With a rollout serving already (serving.json), the mirror attaches to the server that serves
    and leaves it serving; otherwise a stable server and nginx are started for the run.
    """
    setup.work_dir.mkdir(parents=True, exist_ok=True)
    state = RolloutState(strategy="shadow", phase="starting")
    save_state(setup.work_dir, state)
    mirror, stable_tag = _open(setup, stable_tag, shadow_tag, shadow_service)
    state.stable = record(mirror.stable, stable_tag)
    state.attached, state.nginx = mirror.attached, proxy_record(mirror.nginx)
    state.shadow = record(mirror.shadow, shadow_tag)
    save_state(setup.work_dir, state)
    try:
        if not mirror.attached:
            mirror.stable.wait_ready()
        mirror.shadow.wait_ready()
        state.shadow = record(mirror.shadow, shadow_tag)
        _compare(setup, state, mirror)
        return state
    finally:
        if state.phase != "done":
            state.phase = "aborted"
        _stop(mirror)
        save_state(setup.work_dir, state)


def _open(setup: Setup, stable_tag: str, shadow_tag: str, service: str) -> tuple[_Mirror, str]:
    """The live serving's nginx and server when a rollout serves, else new ones for this run,
    and the shadow started; with the tag of the model compared (the one that serves)."""
    live = live_serving(setup.work_dir)
    if live is None:
        nginx, stable = setup.proxy(), start_server(setup, stable_tag, "stable")
    else:
        nginx = proxy_of(live.nginx, setup.params.rollout.nginx_port)
        if live.server.model_tag != stable_tag:
            log(f"shadow: {live.server.model_tag} serves; it is compared, not {stable_tag}")
        stable_tag = live.server.model_tag
        log(f"shadow: attaching to the live server {stable_tag} behind {nginx.url}")
        stable = attach(live.server)
    shadow = start_server(setup, shadow_tag, "shadow", service)
    return _Mirror(nginx, stable, shadow, attached=live is not None), stable_tag


def _compare(setup: Setup, state: RolloutState, mirror: _Mirror) -> None:
    """Mirror for two holds under client traffic, then compare the logs and the labels."""
    nginx, stable, shadow = mirror.nginx, mirror.stable, mirror.shadow
    nginx.apply(Routing({stable.port: 1}, shadow_port=shadow.port))
    seconds = setup.params.rollout.hold_s * 2
    state.phase = "mirroring"
    save_state(setup.work_dir, state)
    log(f"shadow: mirroring all traffic to {state.require('shadow').model_tag} for {seconds:g} s")
    started = time.time()
    with traffic(setup, nginx, seconds, model_info_path(state.require("stable").model_tag)):
        time.sleep(seconds)  # the run's length: traffic flows meanwhile
    until = time.time()
    nginx.apply(Routing({stable.port: 1}))  # the mirror goes first, serving stays
    served = read_entries(nginx.access_log, started, until)
    mirrored = read_entries(nginx.shadow_log, started, until, uri="/__to_shadow")
    stable_stats = variant_stats(served, stable.port)
    shadow_stats = variant_stats(mirrored, shadow.port)
    bodies = mirror_bodies(served, setup.params.rollout.analysis.mirror_requests)
    disagreement = label_disagreement(bodies, stable.url, shadow.url)
    state.require("stable").stats = stable_stats.describe()
    state.require("shadow").stats = shadow_stats.describe()
    for key, value in disagreement_checks(disagreement).items():
        setattr(state, key, value)
    state.client_requests, state.client_failures = len(served), client_failures(served)
    state.phase = "done"
    shown = "n/a" if disagreement is None else disagreement.describe()
    log(
        f"shadow: stable p99 {stable_stats.p99_ms:.1f} ms ({stable_stats.requests} req) | "
        f"shadow p99 {shadow_stats.p99_ms:.1f} ms ({shadow_stats.requests} req, "
        f"{shadow_stats.success_rate:.1%} ok) | label disagreement {shown}"
    )


def _stop(mirror: _Mirror) -> None:
    """The shadow always goes; the stable side only when this run started it."""
    if mirror.attached:
        if mirror.nginx.running():
            mirror.nginx.apply(Routing({mirror.stable.port: 1}))
        mirror.shadow.stop()
    else:
        mirror.nginx.stop()  # clients first: nothing routes to a server about to stop
        mirror.shadow.stop()
        mirror.stable.stop()
