"""The tuner's rules: which trials, which winner, what it proposes, and how params.yaml changes."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from model.params import Params, TrainParams, TuneParams
from model.search import Trial, candidates, select, set_flags
from model.tune import apply_changes
from tests.conftest import REPO_ROOT, tune_params

CURRENT = TrainParams(
    seed=42, hidden_units=(32, 16), epochs=60, learning_rate=0.01, weight_decay=0.001
)
SPACE: dict[str, tuple[Any, ...]] = {
    "learning_rate": (0.003, 0.01, 0.03),
    "hidden_units": ([32, 16], [64, 32], [16]),
    "epochs": (60, 120),
}


def _tune(**changes: Any) -> TuneParams:
    defaults: dict[str, Any] = {"min_improvement": 0.002, "max_trials": 6, "seed": 0}
    return tune_params(**(defaults | {"space": SPACE} | changes))


@given(max_trials=st.integers(1, 30), seed=st.integers(0, 10))
def test_candidates_start_with_the_current_params_and_respect_the_budget(
    max_trials: int, seed: int
) -> None:
    points = candidates(CURRENT, _tune(max_trials=max_trials, seed=seed))
    grid_size = len(list(itertools.product(*SPACE.values())))
    assert len(points) == min(max_trials, grid_size)
    assert points[0] == {"learning_rate": 0.01, "hidden_units": [32, 16], "epochs": 60}
    assert len({json.dumps(point, sort_keys=True) for point in points}) == len(points)
    for point in points:
        assert all(point[name] in SPACE[name] for name in SPACE)


def test_the_same_params_pick_the_same_trials() -> None:
    assert candidates(CURRENT, _tune(max_trials=4)) == candidates(CURRENT, _tune(max_trials=4))


def test_current_params_outside_the_grid_are_still_the_first_trial() -> None:
    current = CURRENT.model_copy(update={"learning_rate": 0.5})
    assert candidates(current, _tune(max_trials=3))[0]["learning_rate"] == 0.5


def test_set_flags_are_dvc_exp_run_arguments() -> None:
    flags = set_flags({"hidden_units": [64, 32], "learning_rate": 0.03})
    assert flags == ["-S", "train.hidden_units=[64,32]", "-S", "train.learning_rate=0.03"]


def _trial(name: str, val_loss: float | None, state: str = "success", **overrides: Any) -> Trial:
    metrics = {} if val_loss is None else {"val_loss": val_loss, "val_accuracy": 0.9}
    return Trial(name, {"learning_rate": 0.01, "epochs": 60} | overrides, state, metrics)


def test_a_clearly_better_trial_is_proposed_with_only_what_changed() -> None:
    trials = [_trial("t1", 0.10), _trial("t2", 0.08, learning_rate=0.03), _trial("t3", 0.09)]
    proposal = select(trials, _tune())
    assert proposal.best is trials[1]
    assert proposal.changes == {"learning_rate": (0.01, 0.03)}
    assert "from 0.1000 to 0.0800" in proposal.reason


def test_a_gain_under_min_improvement_keeps_the_current_params() -> None:
    trials = [_trial("t1", 0.100), _trial("t2", 0.099, learning_rate=0.03)]
    proposal = select(trials, _tune(min_improvement=0.002))
    assert proposal.changes == {}
    assert "under min_improvement" in proposal.reason


def test_failed_and_stopped_trials_never_win_whatever_their_stale_metrics() -> None:
    trials = [
        _trial("t1", 0.10),
        _trial("t2", 0.01, state="failed", learning_rate=0.03),
        _trial("t3", 0.01, state="stopped", epochs=120),
    ]
    proposal = select(trials, _tune())
    assert proposal.best is trials[0]
    assert proposal.changes == {}


def test_accuracy_is_maximised() -> None:
    low = Trial("t1", {"epochs": 60}, "success", {"val_accuracy": 0.90})
    high = Trial("t2", {"epochs": 120}, "success", {"val_accuracy": 0.95})
    proposal = select([low, high], _tune(objective="val_accuracy"))
    assert proposal.changes == {"epochs": (60, 120)}


def test_nothing_finished_proposes_nothing() -> None:
    proposal = select([_trial("t1", None, state="stopped")], _tune())
    assert proposal.best is None
    assert proposal.changes == {}


def test_a_space_key_that_is_not_a_train_param_is_refused() -> None:
    with pytest.raises(ValueError, match="not a train param"):
        _tune(space={"learning_rat": (0.1,)})


def test_an_invalid_value_in_the_space_is_refused_at_load() -> None:
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["tune"]["space"]["epochs"] = [0, 60]
    with pytest.raises(ValueError, match=r"tune\.space\.epochs"):
        Params.model_validate(params)


def test_applying_a_proposal_keeps_comments_and_changes_only_those_keys(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    shutil.copyfile(REPO_ROOT / "params.yaml", path)
    before = path.read_text()
    apply_changes(path, {"hidden_units": ([32, 16], [64, 32]), "learning_rate": (0.01, 0.03)})
    after = path.read_text()
    assert "  hidden_units: [64, 32]     # one entry per hidden layer" in after
    assert "  learning_rate: 0.03\n" in after
    changed = [
        (old, new)
        for old, new in zip(before.splitlines(), after.splitlines(), strict=True)
        if old != new
    ]
    assert len(changed) == 2
    params = Params.load(path)
    assert params.train.hidden_units == (64, 32)
    assert params.train.learning_rate == 0.03


def test_a_grid_value_equal_to_the_current_one_is_not_tried_twice() -> None:
    current = CURRENT.model_copy(update={"weight_decay": 0.0})
    points = candidates(current, _tune(space={"weight_decay": (0, 0.0, 0.01)}))
    assert points == [{"weight_decay": 0.0}, {"weight_decay": 0.01}]
