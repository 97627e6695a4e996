"""`rollback` and `stop`: undo the last rollout at any time, or stop what it left running."""

from __future__ import annotations

import time

from model.registry import alias_version
from rollout.blue_green import finish_blue_green
from rollout.nginx import Nginx, Routing
from rollout.servers import (
    DRAIN_S,
    Setup,
    live_serving,
    log,
    proxy_of,
    record,
    record_serving,
    sample_body,
    smoke_test,
    start_ready,
    stop_recorded,
)
from rollout.state import (
    Decision,
    RolloutState,
    Server,
    load_state,
    save_state,
    serving_path,
    state_path,
)
from rollout.versions import (
    PREVIOUS_CHAMPION_ALIAS,
    delete_alias,
    model_info,
    move_alias,
    registry_version_of,
    store_tag_for,
)

# (strategy, phase) of a run still in progress -> (the side kept, the side dropped) on rollback
IN_PROGRESS = {
    ("canary", "progressing"): ("stable", "canary"),
    ("shadow", "starting"): ("stable", "shadow"),
    ("shadow", "mirroring"): ("stable", "shadow"),
}


def _undo_run_in_progress(setup: Setup, state: RolloutState) -> bool:
    """Undo a run that has not finished (nothing promoted yet); False when none is running."""
    if (state.strategy, state.phase) == ("blue-green", "switched"):
        finish_blue_green(setup, confirm=False)
        return True
    sides = IN_PROGRESS.get((state.strategy, state.phase))
    if sides is None:
        return False
    keep, drop = sides
    nginx = _proxy_of_run(setup, state)
    kept = state.servers().get(keep)
    if kept is not None and nginx is not None and nginx.running():
        nginx.apply(Routing({kept.port: 1}))
    stop_recorded(state.servers().get(drop))
    state.phase = "rolled_back"
    state.decision = Decision(action="rollback", reason="rolled back by hand")
    save_state(setup.work_dir, state)
    log(f"interrupted {state.strategy} rolled back: {drop} stopped, traffic on {keep}")
    return True


def _proxy_of_run(setup: Setup, state: RolloutState) -> Nginx | None:
    """The nginx a run routes through: its own, or the live serving's that a shadow attached to."""
    if state.attached:
        live = live_serving(setup.work_dir)
        return None if live is None else proxy_of(live.nginx, setup.params.rollout.nginx_port)
    return None if state.nginx is None else proxy_of(state.nginx, setup.params.rollout.nginx_port)


def rollback_to_previous(setup: Setup) -> Server | None:
    """Undo the last rollout: a run in progress is undone (nothing was promoted); otherwise the
    previous champion gets the `champion` alias back and, when a rollout serves, all traffic.
    Returns the server that serves the previous champion, if one was started."""
    path = state_path(setup.work_dir)
    state = load_state(setup.work_dir) if path.exists() else None
    if state is not None and _undo_run_in_progress(setup, state):
        return None
    registry = setup.params.registry
    previous = alias_version(registry.model_name, PREVIOUS_CHAMPION_ALIAS)
    if previous is None:
        raise SystemExit("rollout: no previous champion recorded; nothing to roll back to")
    serving = _serve_version(setup, previous)
    rolled_back = alias_version(registry.model_name, registry.champion_alias)
    move_alias(registry.model_name, registry.champion_alias, previous)
    delete_alias(registry.model_name, PREVIOUS_CHAMPION_ALIAS)  # a second rollback: no flip-back
    log(f"champion alias restored to version {previous} (was {rolled_back})")
    if state is not None:
        state.phase, state.champion, state.previous_champion = "rolled_back", previous, None
        reason = f"version {rolled_back} rolled back by hand"
        state.decision = Decision(action="rollback", reason=reason)
        save_state(setup.work_dir, state)
    return serving


def _serve_version(setup: Setup, version: str) -> Server | None:
    """When a rollout serves: registry `version` started, smoke-tested and given all traffic,
    the version that served stopped. None when nothing serves."""
    live = live_serving(setup.work_dir)
    if live is None:
        return None
    name = setup.params.registry.model_name
    before = live.previous
    tag = before.model_tag if before is not None else store_tag_for(name, version)
    if tag is None:
        raise SystemExit(f"rollout: version {version} is not in the BentoML store")
    if registry_version_of(tag) != version:
        tag = store_tag_for(name, version) or tag
    server = start_ready(setup, tag, "rollback", before.port if before is not None else None)
    problem = smoke_test(server.url, sample_body(model_info(tag), setup.rows))
    if problem is not None:
        server.stop()
        raise SystemExit(f"rollout: previous champion {tag} failed its {problem}")
    nginx = proxy_of(live.nginx, setup.params.rollout.nginx_port)
    nginx.apply(Routing({server.port: 1}))
    time.sleep(DRAIN_S)
    stop_recorded(live.server)
    serving = record(server, tag)
    record_serving(setup.work_dir, nginx, serving, None)
    log(f"traffic on the previous champion {tag}; {live.server.model_tag} stopped")
    return serving


def stop_all(setup: Setup) -> None:
    """Stop every server and nginx a rollout left running (`--keep-serving`, blue-green)."""
    state = load_state(setup.work_dir)
    live = live_serving(setup.work_dir)
    if live is not None:
        proxy_of(live.nginx, setup.params.rollout.nginx_port).stop()
        # the server that serves, and blue kept ready beside green (a later run may have
        # replaced the blue-green state)
        stop_recorded(live.server)
        stop_recorded(live.previous)
    if state.nginx is not None:
        proxy_of(state.nginx, setup.params.rollout.nginx_port).stop()
    for server in state.servers().values():
        stop_recorded(server)
    serving_path(setup.work_dir).unlink(missing_ok=True)
    log("stopped every server and nginx of the last rollout")
