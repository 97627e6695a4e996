"""`make tune`: a bounded hyperparameter search, each trial a DVC experiment and an MLflow run.

Trials are queued with `dvc exp run --queue train -S train.<key>=<value>` and run by DVC's queue
workers (`tune.jobs` at once), so every trial is a reproducible, comparable experiment
(`dvc exp show`, `dvc exp apply <name>`). They run the pipeline up to `train` only: selection
reads the validation metrics that `train` writes and never touches the test split, which stays
for `evaluate` and the gates. The result is a proposed params change, printed and saved to
reports/tune.json; `--apply` writes it into params.yaml, so it reaches main only through a pull
request whose gates and report judge it. The budget (trials, wall time, jobs) is `tune` in
params.yaml.

In MLflow, one parent run per search holds the budget and the proposal; every trial is a child
run with its params and validation metrics (the `train` stage's own run when the trial trained,
so its per-epoch curves are there too).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from model.atomic import write_json_atomically, write_text_atomically
from model.params import DEFAULT_PARAMS_PATH, Params, TuneParams
from model.search import Overrides, Proposal, Trial, candidates, select, set_flags
from model.tracking import configure, disable_telemetry
from model.tune_runs import log_trials

PARAMS_PATH = DEFAULT_PARAMS_PATH  # trials run on the project's params.yaml: no other file
POLL_S = 3.0  # each poll is a `dvc exp show`, about a second of CPU
MAX_FAILED_POLLS = 5
STOP_WAIT_S = 30.0
RESTART_AFTER_S = 20.0  # trials queued but none running this long: start a worker again


class TuneError(RuntimeError):
    """Something a person must fix before a search can run (the message says what)."""


def _dvc(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["dvc", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise TuneError(f"`dvc {' '.join(args)}` failed:\n{result.stderr or result.stdout}")
    return result


def validation_metrics_file(pipeline: Path = Path("dvc.yaml")) -> str:
    """The `train` stage's metrics file, as dvc.yaml names it: where trials are scored."""
    import yaml

    stage = yaml.safe_load(pipeline.read_text())["stages"]["train"]
    entries = stage.get("metrics") or []
    if not entries:
        raise TuneError(f"{pipeline}: the train stage declares no metrics file to select on")
    first = entries[0]
    return str(first if isinstance(first, str) else next(iter(first)))


def parse_experiments(
    shown: list[dict[str, Any]], names: Sequence[str], metrics_file: str
) -> dict[str, dict[str, Any]]:
    """State and validation metrics of the named experiments in `dvc exp show --json` output.

    A queued, running or failed trial carries the baseline's stale metrics: they are dropped."""
    wanted = set(names)
    found: dict[str, dict[str, Any]] = {}
    for baseline in shown:
        for experiment in baseline.get("experiments") or []:
            revision = experiment["revs"][0]
            name = experiment.get("name") or revision.get("name")
            if name not in wanted:
                continue
            executor = experiment.get("executor") or {}
            state = executor.get("state") or ("failed" if revision.get("error") else "success")
            data = revision.get("data") or {}
            metrics = ((data.get("metrics") or {}).get(metrics_file) or {}).get("data") or {}
            found[name] = {"state": state, "metrics": metrics if state == "success" else {}}
    return found


def poll(names: Sequence[str], metrics_file: str) -> dict[str, dict[str, Any]] | None:
    """The trials' states, or None when `dvc exp show` failed (it can, when a trial finishes
    while it reads it): the caller polls again."""
    result = _dvc("exp", "show", "--json", check=False)
    if result.returncode != 0:
        return None
    try:
        shown = json.loads(result.stdout)
    except json.JSONDecodeError:
        return None
    return parse_experiments(shown, names, metrics_file)


def queue(names: Sequence[str], points: Sequence[Overrides]) -> None:
    for number, (name, overrides) in enumerate(zip(names, points, strict=True), start=1):
        _dvc("exp", "run", "--queue", "train", "--name", name, *set_flags(overrides))
        shown = ", ".join(f"{key}={json.dumps(value)}" for key, value in sorted(overrides.items()))
        print(f"tune: queued {number}/{len(names)} {name}: {shown}", flush=True)


def _describe(trial: Trial, objective: str) -> str:
    score = trial.score(objective)
    took = f" after {trial.seconds:.0f} s" if trial.seconds is not None else ""
    return f"{trial.name} {trial.state}{took}" + (
        f": {objective} {score:.4f}" if score is not None else ""
    )


def usable_cores() -> int:
    """Cores this process may run on (CI runners and containers often allow fewer than exist)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_trials(
    names: Sequence[str], points: Sequence[Overrides], tune: TuneParams, metrics_file: str
) -> list[Trial]:
    """Queue, start and wait for the trials. Whatever is unfinished when the wall time is up, or
    when this stops early (an error, Ctrl-C), is stopped before returning: no trial outlives it."""
    jobs = max(1, min(tune.jobs, usable_cores()))
    started = time.monotonic()
    trials = {
        name: Trial(name, dict(point), "queued") for name, point in zip(names, points, strict=True)
    }
    try:
        queue(names, points)
        _dvc("queue", "start", "--jobs", str(jobs))
        print(
            f"tune: {len(names)} trials, {jobs} at a time, at most {tune.max_wall_s:g} s",
            flush=True,
        )
        _wait(trials, jobs, tune, metrics_file, started)
    finally:
        _stop_unfinished(trials, metrics_file, started, tune.objective)
    return [trials[name] for name in names]


def _queued(trials: Mapping[str, Trial]) -> list[str]:
    return [name for name, trial in trials.items() if trial.state == "queued"]


def _wait(
    trials: dict[str, Trial], jobs: int, tune: TuneParams, metrics_file: str, started: float
) -> None:
    """Poll until every trial has finished or the wall time is up; restart a queue whose workers
    left early (nothing running while trials wait)."""
    names = list(trials)
    failed_polls = 0
    idle_since = time.monotonic()
    while True:
        states = poll(names, metrics_file)
        failed_polls = 0 if states is not None else failed_polls + 1
        if failed_polls >= MAX_FAILED_POLLS:
            raise TuneError(f"`dvc exp show` failed {failed_polls} times in a row")
        _record(trials, states or {}, started, tune.objective)
        pending = _queued(trials)
        if not pending:
            return
        if time.monotonic() - started > tune.max_wall_s:
            print(
                f"tune: out of time ({tune.max_wall_s:g} s): stopping {len(pending)} "
                f"trial(s); the {len(names) - len(pending)} finished ones count",
                flush=True,
            )
            return
        if any((states or {}).get(name, {}).get("state") == "running" for name in pending):
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > RESTART_AFTER_S:  # a worker left early
            _dvc("queue", "start", "--jobs", str(jobs), check=False)
            idle_since = time.monotonic()
        time.sleep(POLL_S)


def _stop_unfinished(
    trials: dict[str, Trial], metrics_file: str, started: float, objective: str
) -> None:
    """Stop every trial still queued or running; mark those that did not finish as stopped."""
    pending = _queued(trials)
    if not pending:
        return
    final = stop(pending, metrics_file)
    # A trial that made it before the stop counts; a killed one shows as failed in DVC.
    finished = {name: info for name, info in final.items() if info["state"] == "success"}
    _record(trials, finished, started, objective)
    for name in pending:
        if trials[name].state == "queued":
            trials[name] = replace(trials[name], state="stopped")


def _record(
    trials: dict[str, Trial],
    states: Mapping[str, Mapping[str, Any]],
    started: float,
    objective: str,
) -> None:
    """Note the trials that finished since the last poll, and say so."""
    for name, info in states.items():
        state = info["state"]
        if state not in ("success", "failed") or trials[name].state != "queued":
            continue
        metrics = {key: float(value) for key, value in info["metrics"].items()}
        seconds = time.monotonic() - started
        trials[name] = replace(trials[name], state=state, metrics=metrics, seconds=seconds)
        done = sum(1 for trial in trials.values() if trial.state in ("success", "failed"))
        print(f"tune: trial {done}/{len(trials)} {_describe(trials[name], objective)}", flush=True)
        if state == "failed":
            print(f"tune:   see why: dvc queue logs {name}", flush=True)


def stop(names: Sequence[str], metrics_file: str) -> dict[str, dict[str, Any]]:
    """Remove the queued trials and interrupt the running ones, then wait until none is left.

    `dvc queue kill` without `--force` interrupts the trial's whole process tree (with it, the
    training process would be left behind). Returns the last states seen."""
    killed: set[str] = set()
    deadline = time.monotonic() + STOP_WAIT_S
    states: dict[str, dict[str, Any]] = {}
    while True:
        states = poll(names, metrics_file) or states
        queued = [name for name in names if states.get(name, {}).get("state") == "queued"]
        running = [name for name in names if states.get(name, {}).get("state") == "running"]
        if not queued and not running:
            return states
        if time.monotonic() > deadline:
            left = " ".join(queued + running)
            print(
                f"tune: could not stop {left} in {STOP_WAIT_S:g} s; check `dvc queue status` "
                f"and run `dvc queue kill --force {left}`",
                file=sys.stderr,
            )
            return states
        if queued:
            _dvc("queue", "remove", *queued, check=False)
        for name in running:
            if name not in killed:
                _dvc("queue", "kill", name, check=False)
                killed.add(name)
        time.sleep(POLL_S)


def summary(trials: Sequence[Trial], proposal: Proposal, tune: TuneParams) -> dict[str, Any]:
    return {
        "objective": tune.objective,
        "direction": "minimize" if tune.minimize else "maximize",
        "trials": [asdict(trial) for trial in trials],
        "best": proposal.best.name if proposal.best else None,
        "changes": {
            f"train.{key}": {"current": before, "proposed": after}
            for key, (before, after) in proposal.changes.items()
        },
        "reason": proposal.reason,
    }


def apply_changes(path: Path, changes: Mapping[str, tuple[Any, Any]]) -> None:
    """Write the proposed `train` values into params.yaml, keeping its comments and layout."""
    import yaml
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedSeq

    round_trip = YAML()
    round_trip.width = 100
    document = round_trip.load(path.read_text())
    for key, (_, value) in changes.items():
        if isinstance(value, list):  # keep lists in flow style: [64, 32]
            value = CommentedSeq(value)
            value.fa.set_flow_style()
        document["train"][key] = value
    buffer = io.StringIO()
    round_trip.dump(document, buffer)
    Params.model_validate(yaml.safe_load(buffer.getvalue()))  # never write an invalid file
    write_text_atomically(path, buffer.getvalue())


def _check_repository() -> None:
    inside = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"], capture_output=True, text=True, check=False
    )
    if inside.returncode != 0:
        raise TuneError("tune needs a git repository: DVC experiments are git refs")
    if not Path("dvc.yaml").is_file():
        raise TuneError("run tune from the project root (no dvc.yaml here)")
    email = subprocess.run(["git", "config", "user.email"], capture_output=True, text=True)
    if not email.stdout.strip():  # CI runners: experiments are commits and need an author
        for role in ("AUTHOR", "COMMITTER"):
            os.environ.setdefault(f"GIT_{role}_NAME", "mlops-starter tune")
            os.environ.setdefault(f"GIT_{role}_EMAIL", "tune@localhost")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model.tune (make tune)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--apply", action="store_true", help="write the proposal to params.yaml")
    parser.add_argument("--out", type=Path, default=Path("reports/tune.json"))
    args = parser.parse_args(argv)

    disable_telemetry()
    params = Params.load(PARAMS_PATH)
    tune = params.tune
    try:
        _check_repository()
        metrics_file = validation_metrics_file()
    except TuneError as error:
        print(f"tune: {error}", file=sys.stderr)
        return 2
    # Trials run in DVC's temporary copies: give them this project's store, not a fresh one.
    os.environ["MLFLOW_TRACKING_URI"] = os.environ.get(
        "MLFLOW_TRACKING_URI", f"sqlite:///{Path('mlflow.db').resolve()}"
    )
    search_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]
    points = candidates(params.train, tune)
    names = [f"tune-{search_id}-{number}" for number in range(1, len(points) + 1)]

    mlflow = configure()
    with mlflow.start_run(run_name=f"tune {search_id}") as parent:
        mlflow.set_tags({"tune_id": search_id, "tune_objective": tune.objective})
        mlflow.log_params(
            {"max_trials": tune.max_trials, "max_wall_s": tune.max_wall_s, "jobs": tune.jobs}
            | {f"space.{key}": json.dumps(values) for key, values in tune.space.items()}
        )
        try:
            trials = run_trials(names, points, tune, metrics_file)
        except TuneError as error:
            print(f"tune: {error}", file=sys.stderr)
            mlflow.set_tag("tune_error", str(error)[:500])
            mlflow.end_run("FAILED")
            return 1
        proposal = select(trials, tune)
        log_trials(parent.info.run_id, trials, params.train, tune)
        result = summary(trials, proposal, tune)
        result["mlflow_parent_run"] = parent.info.run_id
        mlflow.set_tag("tune_proposal", proposal.reason[:500])
        best_score = proposal.best.score(tune.objective) if proposal.best else None
        if best_score is not None:
            mlflow.log_metric(f"best_{tune.objective}", best_score)
    write_json_atomically(args.out, result)
    _propose(proposal, args.out, apply=args.apply)
    return 1 if proposal.best is None else 0


def _propose(proposal: Proposal, summary_path: Path, apply: bool) -> None:
    """Say what the search proposes, and write it to params.yaml when asked to."""
    print("tune: " + proposal.reason)
    for key, (before, after) in proposal.changes.items():
        print(f"  train.{key}: {json.dumps(before)} -> {json.dumps(after)}")
    print(f"tune: compare the trials with `dvc exp show`; the summary is in {summary_path}")
    if apply and proposal.changes:
        apply_changes(PARAMS_PATH, proposal.changes)
        print(f"tune: wrote the proposal to {PARAMS_PATH}; run `make repro` and open a PR")
    elif proposal.changes:
        print("tune: nothing written; `make tune APPLY=1` writes it to params.yaml")


if __name__ == "__main__":
    sys.exit(main())
