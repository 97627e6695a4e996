"""The rollout state and the serving record: typed, written atomically, read back loudly.

`state.json` is what `resume`, `rollback`, `status` and the PR report read; `serving.json` says
what nginx serves across runs. Writer and readers share these models, so a renamed or missing
field fails with the file and the field instead of showing a dash.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from model.atomic import write_json_atomically
from model.params import RolloutParams

STATE_FILE = "state.json"
SERVING_FILE = "serving.json"

Strategy = Literal["canary", "blue-green", "shadow"]
Phase = Literal[
    "starting",  # servers starting; nothing routed to the new version yet
    "progressing",  # canary: a step's weight applied, its hold running
    "switching",  # blue-green: green ready, the switch under way
    "switched",  # blue-green: green serves, blue kept ready for `confirm` or `switch-back`
    "mirroring",  # shadow: every request copied to the candidate
    "promoted",  # canary: the new version serves and holds the champion alias
    "rolled_back",  # the old version serves (by the analysis or by hand)
    "aborted",  # blue-green or shadow stopped before the new version served anyone
    "confirmed",  # blue-green: green kept, blue stopped, champion moved
    "switched_back",  # blue-green: blue serves again, green stopped
    "refused",  # nothing started: the gate or the load test said no
    "done",  # shadow: compared and stopped
]
Action = Literal["promote", "rollback", "abort", "switch", "refuse"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Server(_Record):
    """One BentoServer a rollout started: enough to reach, attach to or stop it later."""

    model_tag: str
    port: int
    pid: int | None = None  # also its process group; never kept for a stopped server
    workers: list[int] = []  # worker pids: they leave the group, so they are stopped by pid
    url: str | None = None
    stats: dict[str, float] | None = None  # shadow: what the access log says about it

    def stopped(self) -> Server:
        """This server's record once stopped: its model and port, no pid another may reuse."""
        return self.model_copy(update={"pid": None, "workers": []})


class Proxy(_Record):
    prefix: str  # nginx's working folder (config, logs, pid)
    url: str
    port: int | None = None


class Agreement(_Record):
    """Label disagreement between two versions on the same requests (None: not measured)."""

    label_disagreement: float | None = None
    label_disagreement_rows: int | None = None
    label_disagreement_lower_bound: float | None = None


class Step(Agreement):
    """One canary step's analysis: the window, both sides' figures and the verdict."""

    step: int  # 1-based
    weight: int  # canary share in percent
    window: tuple[float, float]  # unix seconds, access-log entries between them
    stable: dict[str, float]
    canary: dict[str, float]
    passed: bool
    reasons: list[str]


class SmokeTest(Agreement):
    problem: str | None = None


class Decision(_Record):
    action: Action
    reason: str
    step: int | None = None
    weight: int | None = None
    values: Step | None = None
    log_tail: str | None = None


class RolloutState(Agreement):
    """Everything needed to resume, roll back or report a rollout, saved after every change."""

    strategy: Strategy
    phase: Phase
    updated: float | None = None
    plan: RolloutParams | None = None
    step: int | None = None  # 0-based index of the step in progress (resume starts it again)
    weight: int | None = None
    steps: list[Step] = []
    failed_analyses: int = 0
    decision: Decision | None = None
    stable: Server | None = None
    canary: Server | None = None
    blue: Server | None = None
    green: Server | None = None
    shadow: Server | None = None
    nginx: Proxy | None = None
    attached: bool | None = None  # shadow: mirrored the live serving instead of its own
    smoke_test: SmokeTest | None = None
    client_requests: int | None = None
    client_failures: int | None = None
    champion: str | None = None
    previous_champion: str | None = None
    serving: str | None = None

    def servers(self) -> dict[str, Server]:
        """The servers this state names, by role."""
        roles = ("stable", "canary", "blue", "green", "shadow")
        return {role: server for role in roles if (server := getattr(self, role)) is not None}

    def require(self, role: str) -> Server:
        """The server in `role`; a loud error when the state has none."""
        server = self.servers().get(role)
        if server is None:
            raise StateError(f"rollout state: no `{role}` server recorded")
        return server


class ServingRecord(_Record):
    """What nginx serves now, across runs, and the previous champion's server for rollback."""

    nginx: Proxy
    server: Server
    previous: Server | None = None


class StateError(SystemExit):
    """A state or serving file that is missing or does not match its model."""


Model = TypeVar("Model", bound=BaseModel)


def read_model(path: Path, model: type[Model]) -> Model:
    """`path` parsed as `model`; StateError naming the file and every field that mismatches."""
    if not path.exists():
        raise StateError(f"rollout: no {model.__name__} at {path}")
    try:
        return model.model_validate_json(path.read_text())
    except ValidationError as error:
        fields = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or '(top)'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise StateError(f"rollout: {path} does not match {model.__name__}: {fields}") from None


def dump(record: BaseModel) -> dict[str, Any]:
    """The JSON form written to disk and printed: unset fields left out."""
    data: dict[str, Any] = record.model_dump(mode="json", exclude_none=True)
    return data


def state_path(work_dir: Path) -> Path:
    return work_dir / STATE_FILE


def load_state(work_dir: Path) -> RolloutState:
    return read_model(state_path(work_dir), RolloutState)


def save_state(work_dir: Path, state: RolloutState) -> None:
    """Atomically: a reader (`status`, a resuming controller) never sees half a state."""
    state.updated = time.time()
    write_json_atomically(state_path(work_dir), dump(state))


def serving_path(work_dir: Path) -> Path:
    return work_dir / SERVING_FILE


def load_serving(work_dir: Path) -> ServingRecord | None:
    path = serving_path(work_dir)
    return read_model(path, ServingRecord) if path.exists() else None


def save_serving(work_dir: Path, record: ServingRecord) -> None:
    write_json_atomically(serving_path(work_dir), dump(record))
