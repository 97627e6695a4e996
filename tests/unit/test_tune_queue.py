"""The tuner's side of DVC's queue: reading `dvc exp show --json`, waiting, and stopping trials.

A fake `dvc` plays the queue (trials go queued -> running -> success, or hang), so the wall-time
and error paths are tested without waiting for real trials; tests/integration/test_tune.py runs
the real queue.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest

from model import tune
from model.params import TuneParams
from model.search import Trial
from tests.conftest import tune_params

METRICS = "reports/validation_metrics.json"


def _experiment(name: str, state: str | None, val_loss: float = 0.5, error: bool = False) -> Any:
    revision = {
        "rev": f"rev-{name}",
        "name": name,
        "error": {"msg": "Experiment run failed"} if error else None,
        "data": {"metrics": {METRICS: {"data": {"val_loss": val_loss, "val_accuracy": 0.9}}}},
    }
    return {"name": name, "executor": {"state": state} if state else None, "revs": [revision]}


def _shown(*experiments: Any) -> list[Any]:
    return [{"rev": "workspace", "experiments": None}, {"rev": "abc", "experiments": experiments}]


def test_only_successful_trials_keep_their_metrics() -> None:
    shown = _shown(
        _experiment("queued", "queued"),
        _experiment("running", "running"),
        _experiment("failed", "failed", error=True),
        _experiment("done", "success", val_loss=0.1),
        _experiment("done-earlier", None, val_loss=0.2),  # no executor left: finished
        _experiment("failed-earlier", None, error=True),
        _experiment("someone-else", "success"),
    )
    names = ["queued", "running", "failed", "done", "done-earlier", "failed-earlier"]
    found = tune.parse_experiments(shown, names, METRICS)
    assert {name: info["state"] for name, info in found.items()} == {
        "queued": "queued",
        "running": "running",
        "failed": "failed",
        "done": "success",
        "done-earlier": "success",
        "failed-earlier": "failed",
    }
    assert found["done"]["metrics"]["val_loss"] == 0.1
    assert found["running"]["metrics"] == {}
    assert found["failed"]["metrics"] == {}


class FakeQueue:
    """`dvc` as the tuner calls it. Each `exp show` is one tick: `step(name, state, tick)` says
    what a trial becomes."""

    def __init__(self, step: Callable[[str, str, int], str]) -> None:
        self.step = step
        self.states: dict[str, str] = {}
        self.calls: list[tuple[str, ...]] = []
        self.ticks = 0

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        self.calls.append(args)
        stdout = ""
        if args[:3] == ("exp", "run", "--queue"):
            self.states[args[args.index("--name") + 1]] = "queued"
        elif args[:2] == ("exp", "show"):
            self.ticks += 1
            for name, state in self.states.items():
                self.states[name] = self.step(name, state, self.ticks)
            stdout = json.dumps(_shown(*(_experiment(n, s) for n, s in self.states.items())))
        elif args[:2] == ("queue", "remove"):
            for name in args[2:]:
                self.states.pop(name, None)
        elif args[:2] == ("queue", "kill"):
            self.states[args[2]] = "failed"
        return subprocess.CompletedProcess(["dvc", *args], 0, stdout, "")


def _budget(**changes: Any) -> TuneParams:
    defaults: dict[str, Any] = {"min_improvement": 0.0, "max_trials": 3, "max_wall_s": 60}
    return tune_params(**(defaults | {"space": {"epochs": (60, 90, 120)}} | changes))


NAMES = ["t-1", "t-2", "t-3"]
POINTS = [{"epochs": 60}, {"epochs": 90}, {"epochs": 120}]


def _run(monkeypatch: pytest.MonkeyPatch, queue: FakeQueue, budget: TuneParams) -> list[Trial]:
    monkeypatch.setattr(tune, "_dvc", queue)
    monkeypatch.setattr(tune, "POLL_S", 0.0)
    return tune.run_trials(NAMES, POINTS, budget, METRICS)


def _advance(name: str, state: str, tick: int) -> str:
    return {"queued": "running", "running": "success"}.get(state, state)


def test_every_trial_is_waited_for_and_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    trials = _run(monkeypatch, FakeQueue(_advance), _budget())
    assert [trial.state for trial in trials] == ["success"] * 3
    assert all(trial.metrics["val_loss"] == 0.5 for trial in trials)
    output = capsys.readouterr().out
    for number in (1, 2, 3):
        assert f"tune: trial {number}/3 " in output


def test_out_of_time_removes_the_queued_and_interrupts_the_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def first_finishes_second_hangs(name: str, state: str, tick: int) -> str:
        if name == "t-1":
            return _advance(name, state, tick)
        if name == "t-2" and state == "queued":
            return "running"  # and stays so until killed
        return state  # t-3 never leaves the queue

    queue = FakeQueue(first_finishes_second_hangs)
    monkeypatch.setattr(time, "monotonic", _clock(after_calls=6, jump_s=120))
    trials = _run(monkeypatch, queue, _budget(max_wall_s=60))
    assert [trial.state for trial in trials] == ["success", "stopped", "stopped"]
    assert ("queue", "remove", "t-3") in queue.calls
    assert ("queue", "kill", "t-2") in queue.calls  # never --force: it orphans the trainer
    assert not any("--force" in call for call in queue.calls)
    assert queue.states == {"t-1": "success", "t-2": "failed"}


def test_an_error_while_waiting_still_stops_every_trial(monkeypatch: pytest.MonkeyPatch) -> None:
    queue = FakeQueue(lambda name, state, tick: "running" if state == "queued" else state)
    interrupted: list[bool] = []

    def dvc(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        if args[:2] == ("exp", "show") and queue.ticks == 2 and not interrupted:
            interrupted.append(True)
            raise KeyboardInterrupt  # Ctrl-C while waiting
        return queue(*args, check=check)

    monkeypatch.setattr(tune, "_dvc", dvc)
    monkeypatch.setattr(tune, "POLL_S", 0.0)
    monkeypatch.setattr(tune, "STOP_WAIT_S", 0.5)
    with pytest.raises(KeyboardInterrupt):
        tune.run_trials(NAMES, POINTS, _budget(), METRICS)
    # The stop path still ran: every trial was interrupted, none is left running.
    assert interrupted
    assert {("queue", "kill", name) for name in NAMES} <= set(queue.calls)
    assert set(queue.states.values()) == {"failed"}


def test_failed_polls_are_retried_then_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    queue = FakeQueue(_advance)

    def flaky(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        if args[:2] == ("exp", "show"):
            return subprocess.CompletedProcess(["dvc", *args], 1, "", "FileNotFoundError")
        return queue(*args, check=check)

    monkeypatch.setattr(tune, "_dvc", flaky)
    monkeypatch.setattr(tune, "POLL_S", 0.0)
    monkeypatch.setattr(tune, "STOP_WAIT_S", 0.0)
    with pytest.raises(tune.TuneError, match="failed 5 times in a row"):
        tune.run_trials(NAMES, POINTS, _budget(), METRICS)


def _clock(after_calls: int, jump_s: float) -> Callable[[], float]:
    """A clock that ticks 0.01 s per reading and jumps forward once, after `after_calls`."""
    calls = {"n": 0}

    def monotonic() -> float:
        calls["n"] += 1
        return 1000.0 + calls["n"] * 0.01 + (jump_s if calls["n"] > after_calls else 0.0)

    return monotonic
