"""Canary: the new version takes a growing share of traffic, each step analysed; it is promoted
after the last step or rolled back at the first step that fails more than `failure_limit` times.

The plan (steps, hold, analysis thresholds) is params.yaml `rollout`; every decision, with the
step and the values behind it, is written to the state file after every change.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rollout.analysis import (
    client_failures,
    judge,
    label_disagreement,
    mirror_bodies,
    read_entries,
    variant_stats,
)
from rollout.bento_server import DEFAULT_SERVICE, BentoServer, NotReadyError
from rollout.nginx import Nginx, Routing
from rollout.rollback import rollback_to_previous
from rollout.servers import (
    DRAIN_S,
    Setup,
    attach,
    hold,
    log,
    proxy_record,
    record,
    record_serving,
    sample_body,
    smoke_test,
    start_server,
    traffic,
)
from rollout.state import Decision, RolloutState, Step, load_state, save_state
from rollout.versions import crown, model_info, model_info_path


@dataclass
class Run:
    """One canary: its state, the proxy in front and the servers it controls, by role."""

    setup: Setup
    state: RolloutState
    nginx: Nginx
    servers: dict[str, BentoServer] = field(default_factory=dict)

    def save(self) -> None:
        save_state(self.setup.work_dir, self.state)

    def decide(self, decision: Decision) -> None:
        self.state.decision = decision
        self.state.phase = "promoted" if decision.action == "promote" else "rolled_back"
        self.save()
        log(f"DECISION: {decision.action.upper()}: {decision.reason}")

    def roll_back(self, decision: Decision) -> None:
        """All traffic back to stable (if any), the canary stopped, the decision recorded."""
        if "stable" in self.servers:
            self.nginx.apply(Routing({self.servers["stable"].port: 1}))
        if "canary" in self.servers:
            self.servers.pop("canary").stop()
        self.decide(decision)


def run_canary(
    setup: Setup,
    stable_tag: str | None,
    canary_tag: str,
    *,
    canary_service: str = DEFAULT_SERVICE,
    keep_serving: bool = False,
    resume: RolloutState | None = None,
) -> RolloutState:
    """Steps, analysis, then promotion or rollback. Returns the final state.

    With `resume` (the state of a rollout whose controller was killed while its servers kept
    running), the servers are taken over and the interrupted step starts again.
    """
    setup.work_dir.mkdir(parents=True, exist_ok=True)
    plan = setup.params.rollout
    state = resume or RolloutState(strategy="canary", phase="starting", plan=plan)
    run = Run(setup, state, setup.proxy())
    try:
        if resume is not None:
            run.servers = {role: attach(resume.require(role)) for role in ("stable", "canary")}
            log(f"resuming at step {(resume.step or 0) + 1}: stable and canary taken over")
        elif not _start(run, stable_tag, canary_tag, canary_service):
            return run.state
        _release(run, canary_tag)
        return run.state
    except BaseException as error:
        if run.state.decision is None:
            reason = f"rollout interrupted: {type(error).__name__}: {error}"
            run.roll_back(Decision(action="rollback", reason=reason))
        raise
    finally:
        _finish(run, keep_serving, had_stable=stable_tag is not None)


def _start(run: Run, stable_tag: str | None, canary_tag: str, service: str) -> bool:
    """Stable (when there is one) ready and serving, the canary started and ready beside it;
    False when the canary never got ready (rolled back: no traffic reached it)."""
    if stable_tag is not None:
        stable = start_server(run.setup, stable_tag, "stable")
        run.servers["stable"] = stable
        stable.wait_ready()
        run.state.stable = record(stable, stable_tag)
        run.nginx.apply(Routing({stable.port: 1}))
    canary = start_server(run.setup, canary_tag, "canary", service)
    run.servers["canary"] = canary
    run.state.canary = record(canary, canary_tag)
    run.state.nginx = proxy_record(run.nginx)
    run.save()
    try:
        canary.wait_ready()
    except NotReadyError as error:
        waited = f"{run.setup.params.serving.ready_timeout_s:g} s"
        reason = f"canary not ready within {waited}; no traffic reached it"
        run.roll_back(Decision(action="rollback", reason=reason, log_tail=str(error)[-800:]))
        return False
    run.state.canary = record(canary, canary_tag)
    return True


def _release(run: Run, canary_tag: str) -> None:
    """Smoke test, then the steps (or, for a first deployment, straight to promotion)."""
    info = model_info(canary_tag)
    body = sample_body(info, run.setup.rows)
    problem = smoke_test(run.servers["canary"].url, body, info["labels"])
    if problem is not None:
        run.roll_back(Decision(action="rollback", reason=f"canary failed its {problem}"))
    elif "stable" not in run.servers:
        run.nginx.apply(Routing({run.servers["canary"].port: 1}))
        _promote(run, first=True)
    else:
        _progress(run)


def _progress(run: Run) -> None:
    """Every step from the current one, under client traffic; promotion when all pass."""
    plan = run.setup.params.rollout
    seconds = plan.hold_s * len(plan.steps) + 10
    # Clients were written for the stable version: they send what it takes.
    clients_model = model_info_path(run.state.require("stable").model_tag)
    first_step = run.state.step or 0
    started = time.time()
    try:
        with traffic(run.setup, run.nginx, seconds, clients_model):
            for index, weight in enumerate(plan.steps):
                if index >= first_step and not _step(run, index, weight):
                    return
            _promote(run, first=False)
    finally:
        entries = read_entries(run.nginx.access_log, started, time.time())
        run.state.client_requests = len(entries)
        run.state.client_failures = client_failures(entries)
        run.save()


def _step(run: Run, index: int, weight: int) -> bool:
    """Hold one step and analyse it; False when the canary was rolled back."""
    plan = run.setup.params.rollout
    stable, canary = run.servers["stable"], run.servers["canary"]
    run.nginx.apply(Routing({stable.port: 100 - weight, canary.port: weight}))
    run.state.phase, run.state.step, run.state.weight = "progressing", index, weight
    run.save()
    log(f"step {index + 1}/{len(plan.steps)}: canary weight {weight}%, hold {plan.hold_s:g} s")
    since = time.time()
    died = hold(canary, plan.hold_s)
    if died:
        reason = f"canary process died at step {index + 1} (weight {weight}%)"
        run.roll_back(Decision(action="rollback", reason=reason, step=index + 1, weight=weight))
        return False
    step = _analyse(run, index, weight, (since, time.time()))
    run.state.steps.append(step)
    if not step.passed:
        run.state.failed_analyses += 1
        if run.state.failed_analyses > plan.failure_limit:
            reason = f"step {index + 1} (weight {weight}%): " + "; ".join(step.reasons)
            run.roll_back(
                Decision(
                    action="rollback", reason=reason, step=step.step, weight=weight, values=step
                )
            )
            return False
    run.save()
    return True


def _analyse(run: Run, index: int, weight: int, window: tuple[float, float]) -> Step:
    """Judge the canary on the access log of one step's window (params.yaml rollout.analysis)."""
    analysis = run.setup.params.rollout.analysis
    stable, canary = run.servers["stable"], run.servers["canary"]
    entries = read_entries(run.nginx.access_log, *window)
    canary_stats = variant_stats(entries, canary.port)
    stable_stats = variant_stats(entries, stable.port)
    mirrored = mirror_bodies(entries, analysis.mirror_requests)
    agreement = label_disagreement(mirrored, stable.url, canary.url)
    verdict = judge(canary_stats, agreement, analysis, stable_stats)
    shown = "n/a" if agreement is None else agreement.describe()
    log(
        f"  stable: {stable_stats.requests} req, {stable_stats.success_rate:.1%} ok, "
        f"{stable_stats.client_error_rate:.1%} 4xx, p99 {stable_stats.p99_ms:.1f} ms | canary: "
        f"{canary_stats.requests} req, {canary_stats.success_rate:.1%} ok, "
        f"{canary_stats.client_error_rate:.1%} 4xx, p99 {canary_stats.p99_ms:.1f} ms, "
        f"label disagreement {shown} -> {'pass' if verdict.passed else 'FAIL'}"
    )
    return Step(
        step=index + 1,
        weight=weight,
        window=window,
        stable=stable_stats.describe(),
        passed=verdict.passed,
        reasons=verdict.reasons,
        **verdict.checks,
    )


def _promote(run: Run, *, first: bool) -> None:
    """All traffic to the new version, the old stable drained and stopped, `champion` moved."""
    canary = run.servers["canary"]
    run.nginx.apply(Routing({canary.port: 1}))
    if "stable" in run.servers:
        time.sleep(DRAIN_S)
        run.servers.pop("stable").stop()
    run.servers["stable"] = run.servers.pop("canary")
    version, previous = crown(run.setup.params, run.state.require("canary").model_tag)
    run.state.champion, run.state.previous_champion = version, previous
    reason = (
        "first deployment: no stable version to compare against, smoke test passed"
        if first
        else f"every step passed analysis ({len(run.setup.params.rollout.steps)} steps)"
    )
    run.state.decision = Decision(action="promote", reason=reason)
    run.state.phase = "promoted"
    run.save()
    log(f"DECISION: PROMOTE: {reason}; champion -> version {version} (was {previous})")


def _finish(run: Run, keep_serving: bool, *, had_stable: bool) -> None:
    """Stop everything, or leave the version that won serving and record it for later runs."""
    state, work_dir = run.state, run.setup.work_dir
    if not keep_serving:
        run.nginx.stop()  # clients first: nothing routes to a server about to stop
        for server in run.servers.values():
            server.stop()
        (work_dir / "serving.json").unlink(missing_ok=True)
        state.serving = "stopped (run with --keep-serving to leave it up)"
    elif state.phase in ("promoted", "rolled_back"):
        promoted = state.phase == "promoted"
        serving = state.require("canary" if promoted else "stable")
        previous = state.stable.stopped() if promoted and had_stable and state.stable else None
        record_serving(work_dir, run.nginx, serving, previous)
        state.serving = f"up at {run.nginx.url}"
    run.save()


def resume_canary(setup: Setup) -> RolloutState:
    """Carry on a canary whose controller died, or roll it back if a server died with it."""
    saved = load_state(setup.work_dir)
    if saved.strategy != "canary" or saved.phase != "progressing":
        raise SystemExit(f"rollout: nothing to resume ({saved.phase})")
    roles = ("stable", "canary")
    if dead := [role for role in roles if not attach(saved.require(role)).alive()]:
        log(f"cannot resume: {', '.join(dead)} no longer running; rolling back instead")
        rollback_to_previous(setup)
        return load_state(setup.work_dir)
    return run_canary(
        setup,
        saved.require("stable").model_tag,
        saved.require("canary").model_tag,
        resume=saved,
    )
