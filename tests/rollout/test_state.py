"""The rollout state file: what is written is read back whole, and a mismatch names the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.params import Params
from rollout.state import (
    Decision,
    RolloutState,
    Server,
    StateError,
    Step,
    load_state,
    save_state,
    state_path,
)
from tests.conftest import REPO_ROOT


def _state() -> RolloutState:
    step = Step(
        step=1,
        weight=25,
        window=(1.0, 2.0),
        stable={"requests": 10.0},
        canary={"requests": 3.0},
        passed=False,
        reasons=["p99 300.0 ms above 250 ms"],
        label_disagreement=0.0,
    )
    return RolloutState(
        strategy="canary",
        phase="rolled_back",
        plan=Params.load(REPO_ROOT / "params.yaml").rollout,
        steps=[step],
        stable=Server(model_tag="m:a", port=1, pid=2, workers=[3]),
        decision=Decision(action="rollback", reason="r", step=1, weight=25, values=step),
    )


def test_a_saved_state_reads_back_equal(tmp_path: Path) -> None:
    saved = _state()
    save_state(tmp_path, saved)
    assert load_state(tmp_path) == saved


def test_a_renamed_field_fails_naming_the_file_and_the_field(tmp_path: Path) -> None:
    save_state(tmp_path, _state())
    data = json.loads(state_path(tmp_path).read_text())
    data["decision"]["verdict"] = data["decision"].pop("action")
    state_path(tmp_path).write_text(json.dumps(data))
    with pytest.raises(StateError) as raised:
        load_state(tmp_path)
    message = str(raised.value)
    assert str(state_path(tmp_path)) in message
    assert "decision.action" in message
    assert "decision.verdict" in message


def test_an_unknown_phase_is_refused(tmp_path: Path) -> None:
    save_state(tmp_path, _state())
    data = json.loads(state_path(tmp_path).read_text()) | {"phase": "half-done"}
    state_path(tmp_path).write_text(json.dumps(data))
    with pytest.raises(StateError, match="phase"):
        load_state(tmp_path)


def test_a_stopped_server_keeps_no_pid_another_process_may_reuse() -> None:
    stopped = Server(model_tag="m:a", port=1, pid=2, workers=[3]).stopped()
    assert (stopped.pid, stopped.workers) == (None, [])
