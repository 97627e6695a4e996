"""Which pipeline stages left an output, whether it passed, and whether all come from one run.

The headline is only as honest as its inputs: a stage that crashed leaves no file (or an old one),
and a report that reads only the files it finds would call that "every check passed". So the
report names the stages it expects, says first which of them failed or did not run, and compares
the model hash and data hash that each file carries: files from different runs are said to be so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from model.artifacts import GateReport, LoadTestSummary

Json = dict[str, Any]
State = Literal["passed", "failed", "missing"]

# The DVC stages whose output the report reads, in pipeline order; `rollout` is expected only
# where one was run (`make pipeline`), so it is opt-in (`--expect rollout`).
PIPELINE_STAGES = ("validate", "gate", "card", "package", "load_test")
ALL_STAGES = (*PIPELINE_STAGES, "rollout")
OUTPUTS = {
    "validate": "reports/validation.json",
    "gate": "reports/gate.json",
    "card": "reports/model_card.md",
    "package": "reports/bento.json",
    "load_test": "reports/load_test.json",
    "rollout": "reports/rollout/summary.json",
}
FAILED_ROLLOUT_PHASES = ("rolled_back", "failed", "switched_back")
SHORT = 12  # hash characters shown
CARD_HASH = re.compile(r"Model file(?:\*\*:| \|).*sha256 `([0-9a-f]{8,64})`")


@dataclass(frozen=True)
class StageStatus:
    """One expected stage: did it leave its output, and did that output pass."""

    stage: str
    state: State

    @property
    def words(self) -> str:
        """`load_test did not run` or `gate failed`: what the headline says of a bad stage."""
        return f"{self.stage} did not run" if self.state == "missing" else f"{self.stage} failed"


@dataclass(frozen=True)
class RunFiles:
    """The stage outputs as read (None: absent), plus the card's text."""

    model: Json | None = None  # models/model.json
    validation: Json | None = None
    gate: GateReport | None = None
    card: str | None = None
    bento: Json | None = None
    load_test: LoadTestSummary | None = None
    rollout: Json | None = None


def _state(output: object, passed: bool | None) -> State:
    if output is None:
        return "missing"
    return "failed" if passed is False else "passed"


def _rollout_passed(rollout: Json) -> bool:
    decision = rollout.get("decision") or {}
    if decision.get("action") == "rollback":
        return False
    return rollout.get("phase") not in FAILED_ROLLOUT_PHASES


def stage_statuses(files: RunFiles, expected: Sequence[str]) -> list[StageStatus]:
    """The state of every expected stage, in pipeline order."""
    passed: dict[str, tuple[object, bool | None]] = {
        "validate": (files.validation, bool((files.validation or {}).get("passed"))),
        "gate": (files.gate, files.gate is not None and files.gate.passed),
        "card": (files.card, None),
        "package": (files.bento, None),
        "load_test": (files.load_test, files.load_test is not None and files.load_test.passed),
        "rollout": (files.rollout, _rollout_passed(files.rollout or {})),
    }
    return [StageStatus(name, _state(*passed[name])) for name in ALL_STAGES if name in expected]


def _hash(value: object) -> str | None:
    text = str(value or "").lower()
    return text if re.fullmatch(r"[0-9a-f]{8,64}", text) else None


def model_hashes(files: RunFiles) -> dict[str, str]:
    """The ONNX sha256 (or a prefix of it) that each file says it describes, by file."""
    found = {
        OUTPUTS["gate"]: files.gate.candidate.onnx_sha256 if files.gate else None,
        "models/model.json": (files.model or {}).get("sha256"),
        OUTPUTS["package"]: (files.bento or {}).get("onnx_sha256"),
        OUTPUTS["load_test"]: files.load_test.onnx_sha256 if files.load_test else None,
        OUTPUTS["rollout"]: (files.rollout or {}).get("onnx_sha256"),
    }
    match = CARD_HASH.search(files.card or "")
    found[OUTPUTS["card"]] = match.group(1) if match else None
    return {name: digest for name, value in found.items() if (digest := _hash(value))}


def data_hashes(files: RunFiles) -> dict[str, str]:
    """The md5 of the raw table that each file says it came from, by file."""
    found = {
        OUTPUTS["validate"]: (files.validation or {}).get("md5"),
        "models/model.json": (files.model or {}).get("data_md5"),
        OUTPUTS["package"]: ((files.bento or {}).get("labels") or {}).get("data_md5"),
    }
    return {name: digest for name, value in found.items() if (digest := _hash(value))}


def _disagreeing(hashes: Mapping[str, str]) -> dict[str, list[str]]:
    """Files grouped by hash when they disagree (a prefix agrees with its full hash), else {}."""
    groups: dict[str, list[str]] = {}
    for name, digest in hashes.items():
        key = next((k for k in groups if k.startswith(digest) or digest.startswith(k)), digest)
        if len(digest) > len(key):  # keep the longest form as the group's name
            groups[digest] = groups.pop(key)
            key = digest
        groups.setdefault(key, []).append(name)
    return groups if len(groups) > 1 else {}


def _listing(groups: Mapping[str, list[str]]) -> str:
    return "; ".join(
        f"`{digest[:SHORT]}` in " + ", ".join(f"`{name}`" for name in names)
        for digest, names in groups.items()
    )


def mismatches(files: RunFiles) -> list[str]:
    """One sentence per hash the files disagree on: they come from different pipeline runs."""
    lines = []
    models = _disagreeing(model_hashes(files))
    if models:
        lines.append(f"the files describe different models: {_listing(models)}")
    data = _disagreeing(data_hashes(files))
    if data:
        lines.append(f"the files come from different data: {_listing(data)}")
    return lines
