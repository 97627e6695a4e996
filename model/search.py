"""The pure half of `make tune`: which trials to run, which one wins, and what to propose.

No I/O here (model/tune.py runs the trials as DVC experiments), so the rules are unit-tested:
the current params are always the first trial, every trial is a distinct grid point, the budget
is never exceeded, and a winner must beat the current params by `min_improvement` or no change
is proposed.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from model.params import TrainParams, TuneParams

Overrides = dict[str, Any]  # train param -> value, as in `dvc exp run -S train.<key>=<value>`


def _key(overrides: Mapping[str, Any]) -> str:
    return json.dumps(dict(sorted(overrides.items())))


def candidates(current: TrainParams, tune: TuneParams) -> list[Overrides]:
    """At most `max_trials` distinct points of the grid; the first is the current params.

    The grid is enumerated in a fixed order and, when larger than the budget, sampled with
    `tune.seed`, so the same params.yaml always tries the same trials."""
    names = sorted(tune.space)
    baseline = _normalized(current, {name: getattr(current, name) for name in names})
    grid = [
        _normalized(current, dict(zip(names, values, strict=True)))
        for values in itertools.product(*(tune.space[name] for name in names))
    ]
    seen = {_key(baseline)}
    others = []
    for point in grid:  # `0` and `0.0` are one value of weight_decay: try it once
        if _key(point) not in seen:
            seen.add(_key(point))
            others.append(point)
    budget = tune.max_trials - 1
    if len(others) > budget:
        others = random.Random(tune.seed).sample(others, budget)
    return [baseline, *others]


def _normalized(current: TrainParams, point: Mapping[str, Any]) -> Overrides:
    """The point as the train params' own types (`0` -> `0.0`, tuples as lists), for comparing."""
    typed = TrainParams.model_validate(current.model_dump() | dict(point)).model_dump(mode="json")
    return {name: typed[name] for name in point}


def set_flags(overrides: Mapping[str, Any]) -> list[str]:
    """`-S train.<key>=<value>` arguments for `dvc exp run` (values as compact JSON/YAML)."""
    flags = []
    for name, value in sorted(overrides.items()):
        flags += ["-S", f"train.{name}={json.dumps(value, separators=(',', ':'))}"]
    return flags


@dataclass(frozen=True)
class Trial:
    name: str
    overrides: Overrides
    state: str  # "success", "failed", "stopped" (out of time) or "queued"
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float | None = None

    def score(self, objective: str) -> float | None:
        return self.metrics.get(objective) if self.state == "success" else None


@dataclass(frozen=True)
class Proposal:
    best: Trial | None  # None when no trial succeeded
    baseline: Trial | None  # the current params' trial
    changes: dict[str, tuple[Any, Any]]  # train param -> (current, proposed); empty: keep
    reason: str


def select(trials: Sequence[Trial], tune: TuneParams) -> Proposal:
    """The best successful trial, if it beats the current params by `min_improvement`."""
    scored = [trial for trial in trials if trial.score(tune.objective) is not None]
    baseline = trials[0] if trials else None
    if not scored:
        succeeded = sum(1 for trial in trials if trial.state == "success")
        reason = (
            f"{succeeded} trial(s) finished but none reported {tune.objective}: check the train "
            "stage's metrics file"
            if succeeded
            else "no trial finished: nothing to propose"
        )
        return Proposal(None, baseline, {}, reason)

    def gain(trial: Trial) -> float:
        value = trial.score(tune.objective)
        assert value is not None
        return -value if tune.minimize else value

    best = max(scored, key=gain)  # first of equals: the current params win ties
    base_score = baseline.score(tune.objective) if baseline is not None else None
    if baseline is None or base_score is None:
        return Proposal(best, baseline, {}, "the current params' trial did not finish")
    improvement = gain(best) - gain(baseline)
    if best is baseline or improvement < tune.min_improvement:
        reason = (
            f"keep the current params: the best trial improves {tune.objective} by "
            f"{improvement:.4g}, under min_improvement {tune.min_improvement:g}"
            if best is not baseline
            else f"keep the current params: no trial beats their {tune.objective}"
        )
        return Proposal(best, baseline, {}, reason)
    changes = {
        name: (baseline.overrides[name], value)
        for name, value in best.overrides.items()
        if baseline.overrides.get(name) != value
    }
    reason = (
        f"{best.name} improves {tune.objective} from {base_score:.4f} to "
        f"{best.score(tune.objective):.4f}"
    )
    return Proposal(best, baseline, changes, reason)
