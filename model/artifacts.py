"""The JSON files one stage writes and another reads, as typed models both sides import.

`evaluate` writes metrics.json and confidence.json, `gate` writes gate.json, the load test writes
load_test.json; the gate, the model card, the PR report and the rollout read them. Writers call
`write_artifact`, readers `read_artifact`: a file that does not match its model (a renamed,
missing or mistyped field) fails with the file and the field, e.g.
`reports/gate.json: checks.0.passed: Field required`, instead of showing a dash in a report.
Torch-free and numpy-free: the report, the rollout and the load test import it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

from model.atomic import write_json_atomically

GateName = Literal["metric", "behavior", "latency", "parity", "edge", "interface"]
Point = tuple[float, float]


class ArtifactError(ValueError):
    """A stage output that is not what its model says: names the file and the field."""


class Artifact(BaseModel):
    """Frozen, and a field this model does not know is an error, not a silent extra."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --- evaluate: metrics.json, confidence.json, importance.json ------------------------------


class Metrics(RootModel[dict[str, float]]):
    """reports/metrics.json: metric name -> value on the test split (what `dvc metrics` reads)."""

    model_config = ConfigDict(frozen=True)


class Interval(Artifact):
    low: float
    high: float

    @property
    def width(self) -> float:
        return self.high - self.low


class Confidence(Artifact):
    """reports/confidence.json: a bootstrap interval per metric."""

    confidence: float
    resamples: int
    rows: int
    intervals: dict[str, Interval]


class FeatureRank(Artifact):
    feature: str
    importance: float
    std: float
    rank: int


class Importance(Artifact):
    """reports/importance.json (and the baseline's, inside gate.json): permutation importance."""

    method: str = "permutation"
    metric: str
    repeats: int
    features: tuple[FeatureRank, ...]


# --- gate: gate.json --------------------------------------------------------------------------


class Check(Artifact):
    """One verdict, with everything a reviewer needs to agree or disagree with it."""

    gate: GateName
    name: str
    passed: bool
    value: float | str | None
    threshold: float | str | None
    why: str
    baseline: float | None = None


class BaselineInfo(Artifact):
    """What the candidate was judged against (model/baseline.py's `describe`, plus hashes)."""

    kind: str  # git, champion or none
    source: str
    metrics: dict[str, float] | None = None
    has_metrics: bool = False
    has_model: bool = False
    note: str = ""
    onnx_sha256: str | None = None
    measured: str | None = None  # why the baseline model was not measured, when it was not


class Candidate(Artifact):
    onnx_sha256: str
    metrics: dict[str, float]


class PairedDelta(Artifact):
    """Candidate minus baseline on the same resampled rows; `beyond_noise`: 0 is outside."""

    candidate: float
    baseline: float
    delta: float
    low: float
    high: float
    beyond_noise: bool


class Comparison(Artifact):
    rows: int
    resamples: int
    confidence: float
    metrics: dict[str, PairedDelta]


class BaselineCurves(Artifact):
    """The baseline model's curves on the test rows, class -> points, as the report draws them."""

    roc: dict[str, tuple[Point, ...]] = Field(default_factory=dict)
    precision_recall: dict[str, tuple[Point, ...]] = Field(default_factory=dict)


class GateCurves(Artifact):
    baseline: BaselineCurves | None = None


class LatencyResult(Artifact):
    """Single-row latency and throughput (rows per second by batch size) of one model."""

    p50_ms: float
    p99_ms: float
    rows_per_second: dict[int, float]


class EdgeResult(Artifact):
    fp32_bytes: int
    int8_bytes: int
    fp32_accuracy: float
    int8_accuracy: float


class GateImportance(Artifact):
    baseline: Importance | None = None


class InputChanges(Artifact):
    """Inputs against the baseline's: what clients of the baseline would notice."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    retyped: tuple[str, ...] = ()
    now_required: tuple[str, ...] = ()
    added_required: tuple[str, ...] = ()

    @property
    def breaking(self) -> bool:
        return bool(self.removed or self.retyped or self.now_required or self.added_required)


class Registered(Artifact):
    name: str
    version: str
    run_id: str
    created: bool
    alias: str


SCHEMA_CHECK = ("interface", "input_schema")  # (gate, name) of the input-schema comparison


class GateReport(Artifact):
    """reports/gate.json: every check, and what the report needs to show them."""

    passed: bool
    breaking: bool = False
    input_changes: InputChanges | None = None
    baseline: BaselineInfo
    candidate: Candidate
    identical: bool = False
    comparison: Comparison | None = None
    curves: GateCurves = GateCurves()
    checks: tuple[Check, ...]
    latency: dict[str, LatencyResult] = Field(default_factory=dict)
    edge: EdgeResult | None = None
    importance: GateImportance = GateImportance()
    registered: Registered | None = None

    @property
    def same_model(self) -> bool:
        """The candidate is the baseline itself (same ONNX bytes): a comparison says nothing."""
        digest = self.candidate.onnx_sha256
        return bool(digest) and digest == self.baseline.onnx_sha256

    @property
    def schema_check(self) -> Check | None:
        """The interface gate's comparison of the candidate's inputs with the baseline's."""
        return next((c for c in self.checks if (c.gate, c.name) == SCHEMA_CHECK), None)

    @property
    def breaks_clients(self) -> bool:
        """Clients of the baseline would be refused: recorded, not blocked on."""
        check = self.schema_check
        return self.breaking or (check is not None and check.value == "breaking")


# --- load test: load_test.json ------------------------------------------------------------


class SloCheck(Artifact):
    value: float
    budget: float
    kind: Literal["min", "max"]
    passed: bool


class LoadTestSummary(Artifact):
    """reports/load_test.json: the SLO verdict of a load test, about one model (its digest)."""

    passed: bool
    requests: int
    failures: int
    median_ms: float | None = None
    checks: dict[str, SloCheck]
    budget: str | None = None  # where the budget came from, e.g. "params.yaml serving.slo"
    onnx_sha256: str | None = None

    @property
    def missed(self) -> list[str]:
        return [name for name, check in self.checks.items() if not check.passed]


# --- reading and writing ------------------------------------------------------------------

ModelT = TypeVar("ModelT", bound=BaseModel)


def _where(error: ValidationError) -> str:
    """`checks.0.passed: Field required; ...`: the dotted path of every field that is wrong."""
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or '(top level)'}: {item['msg']}"
        for item in error.errors()
    )


def parse_artifact(data: object, model: type[ModelT], source: str | Path) -> ModelT:
    """Validate already-read JSON (a `git show`, a test's dict) as `model`."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ArtifactError(f"{source}: {_where(error)}") from None


def read_artifact(path: Path, model: type[ModelT]) -> ModelT:
    """The file as `model`; ArtifactError naming the file and field when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ArtifactError(f"{path}: {error}") from None
    return parse_artifact(data, model, path)


def read_optional(path: Path, model: type[ModelT]) -> ModelT | None:
    """None for a missing file (a stage that did not run); a broken one still fails."""
    return read_artifact(path, model) if path.is_file() else None


def write_artifact(path: Path, artifact: BaseModel) -> None:
    """Atomically, with stable formatting (sorted keys), as JSON the reader's model accepts."""
    write_json_atomically(path, artifact.model_dump(mode="json"))
