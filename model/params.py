"""Typed view of params.yaml: the one source of truth for every tunable value."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from model.contract import Contract

DEFAULT_PARAMS_PATH = Path("params.yaml")


class Section(BaseModel):
    """Frozen, and a typo in params.yaml fails at load instead of being ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class PrepareParams(Section):
    seed: int
    test_fraction: float = Field(gt=0, lt=1)
    val_fraction: float = Field(gt=0, lt=1)

    @model_validator(mode="after")
    def _leaves_rows_to_train(self) -> PrepareParams:
        if self.test_fraction + self.val_fraction >= 0.9:
            raise ValueError("test_fraction + val_fraction must leave at least 10% for training")
        return self


class TrainParams(Section):
    seed: int
    hidden_units: tuple[int, ...] = Field(min_length=1)
    epochs: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    weight_decay: float = Field(ge=0)


class BootstrapParams(Section):
    resamples: int = Field(ge=10)
    confidence: float = Field(gt=0, lt=1)
    seed: int


class ImportanceParams(Section):
    metric: Literal["log_loss", "accuracy", "roc_auc"]
    repeats: int = Field(ge=1)
    seed: int


class EvaluateParams(Section):
    calibration_bins: int = Field(ge=2)
    bootstrap: BootstrapParams
    importance: ImportanceParams


class ExportParams(Section):
    opset: int = Field(ge=17)
    parity_tolerance: float = Field(gt=0)


class MetricGate(Section):
    """Bounds on one metric: `min`/`max_drop` when higher is better, `max`/`max_rise` when lower."""

    min: float | None = None
    max_drop: float | None = Field(default=None, ge=0)
    max: float | None = None
    max_rise: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_direction(self) -> MetricGate:
        higher = self.min is not None or self.max_drop is not None
        lower = self.max is not None or self.max_rise is not None
        if higher == lower:
            raise ValueError(
                "give min/max_drop (higher is better) or max/max_rise (lower is better)"
            )
        return self

    @property
    def higher_is_better(self) -> bool:
        return self.min is not None or self.max_drop is not None


Effect = Literal["increases", "decreases"]


class DirectionalExpectation(Section):
    """Raising a numeric feature moves one class's probability this way."""

    effect: Effect
    label: str | None = None  # the class; may be left out for a binary label (its positive)


class BehaviorGate(Section):
    invariance_relative_step: float = Field(gt=0)
    max_invariance_flip_rate: float = Field(ge=0, le=1)
    directional_step_std: float = Field(gt=0)
    min_directional_share: float = Field(ge=0, le=1)
    # feature: effect (on a binary label's positive class) or {effect, label}
    directional: dict[str, Effect | DirectionalExpectation] = {}
    min_recall: float = Field(ge=0, le=1)

    def expectations(self) -> dict[str, DirectionalExpectation]:
        return {
            name: value
            if isinstance(value, DirectionalExpectation)
            else DirectionalExpectation(effect=value)
            for name, value in self.directional.items()
        }


class LatencyGate(Section):
    threads: int = Field(ge=1)
    rounds: int = Field(ge=1)
    calls_per_round: int = Field(ge=10)
    batch_sizes: tuple[int, ...] = Field(min_length=1)
    p99_budget_ms: float = Field(gt=0)
    max_p99_ratio: float = Field(gt=0)


class EdgeGate(Section):
    max_accuracy_drop: float = Field(ge=0)


class GateParams(Section):
    metrics: dict[str, MetricGate] = Field(min_length=1)
    behavior: BehaviorGate
    latency: LatencyGate
    edge: EdgeGate
    # true: a change against the baseline past its allowed drop/rise blocks only when the paired
    # bootstrap interval (evaluate.bootstrap) lies wholly past the limit, i.e. beyond noise
    block_only_beyond_noise: bool = False


class RegistryParams(Section):
    model_name: str = Field(min_length=1)
    challenger_alias: str = Field(min_length=1)
    champion_alias: str = Field(min_length=1)


class BatchingParams(Section):
    max_batch_size: int = Field(ge=1)


class SloParams(Section):
    users: int = Field(ge=1)
    spawn_rate: float = Field(gt=0)
    requests_per_user_s: float = Field(gt=0)
    run_time_s: int = Field(ge=1)
    max_failure_ratio: float = Field(ge=0, le=1)
    p95_ms: float = Field(gt=0)
    p99_ms: float = Field(gt=0)
    min_rps: float = Field(ge=0)


class ServingParams(Section):
    workers: int = Field(ge=1)
    onnx_threads: int = Field(ge=1)
    max_rows: int = Field(ge=1)
    max_body_bytes: int = Field(ge=1024)
    max_rows_in_flight: int = Field(ge=1)
    timeout_s: float = Field(gt=0)
    trace_predict: bool
    ready_timeout_s: float = Field(gt=0)
    batching: BatchingParams
    slo: SloParams

    @model_validator(mode="after")
    def _admits_a_full_request(self) -> ServingParams:
        if self.max_rows_in_flight < self.max_rows:
            raise ValueError("serving.max_rows_in_flight must be at least serving.max_rows")
        return self


class AnalysisParams(Section):
    min_requests: int = Field(ge=1)
    min_success_rate: float = Field(ge=0, le=1)
    max_p99_ms: float = Field(gt=0)
    mirror_requests: int = Field(ge=1)
    max_label_disagreement: float = Field(ge=0, le=1)
    max_client_error_increase: float = Field(ge=0, le=1)


class TrafficParams(Section):
    users: int = Field(ge=1)
    requests_per_user_s: float = Field(gt=0)
    min_offered_share: float = Field(gt=0, le=1)


class KubernetesParams(Section):
    namespace: str = Field(min_length=1)
    image: str = Field(min_length=1)
    replicas: int = Field(ge=1)
    max_replicas: int = Field(ge=1)
    cpu_target_percent: int = Field(ge=1, le=100)
    prometheus_address: str = Field(min_length=1)
    scrape_interval_s: int = Field(ge=1)  # the analysis windows span 4 scrapes of this
    ingress_class: str = Field(min_length=1)  # an NGINX Ingress controller's class
    run_as_user: int = Field(ge=1)  # the image's non-root uid


class RolloutParams(Section):
    nginx_port: int = Field(ge=1, le=65535)
    steps: tuple[int, ...] = Field(min_length=1)
    hold_s: float = Field(gt=0)
    failure_limit: int = Field(ge=0)
    analysis: AnalysisParams
    traffic: TrafficParams
    kubernetes: KubernetesParams

    @model_validator(mode="after")
    def _rising_to_all(self) -> RolloutParams:
        if list(self.steps) != sorted(set(self.steps)) or self.steps[0] <= 0:
            raise ValueError("rollout.steps must rise strictly, from above 0")
        if self.steps[-1] != 100:
            raise ValueError("rollout.steps must end at 100 (all traffic on the new version)")
        return self


class DriftParams(Section):
    """`make drift`: thresholds calibrated on the reference, at a false-alarm rate chosen here."""

    window_rows: int = Field(ge=1)
    min_rows: int = Field(ge=1)
    false_alarm_rate: float = Field(gt=0, lt=1)
    resamples: int = Field(ge=100)
    seed: int
    min_feedback_rows: int = Field(ge=1)
    max_accuracy_drop: float = Field(ge=0, lt=1)


class MonitoringParams(Section):
    log_dir: str = Field(min_length=1)
    sample_rate: float = Field(ge=0, le=1)
    buffer_rows: int = Field(ge=1)
    flush_interval_s: float = Field(gt=0)
    max_file_bytes: int = Field(ge=1024)
    max_files: int = Field(ge=1)
    drift: DriftParams


TUNABLE = tuple(name for name in TrainParams.model_fields if name != "seed")


class TuneParams(Section):
    """`make tune`: a bounded grid search over `train`, each trial a DVC experiment."""

    objective: Literal["val_loss", "val_accuracy"]
    min_improvement: float = Field(ge=0)
    max_trials: int = Field(ge=1)
    max_wall_s: float = Field(gt=0)
    jobs: int = Field(ge=1)
    seed: int
    space: dict[str, tuple[Any, ...]] = Field(min_length=1)

    @model_validator(mode="after")
    def _space_of_train_params(self) -> TuneParams:
        for name, values in self.space.items():
            if name not in TUNABLE:
                raise ValueError(f"tune.space.{name}: not a train param; tunable: {TUNABLE}")
            if not values:
                raise ValueError(f"tune.space.{name}: give at least one value")
        return self

    @property
    def minimize(self) -> bool:
        return self.objective == "val_loss"


class Params(Section):
    prepare: PrepareParams
    train: TrainParams
    evaluate: EvaluateParams
    export: ExportParams
    gate: GateParams
    serving: ServingParams
    rollout: RolloutParams
    monitoring: MonitoringParams
    registry: RegistryParams
    tune: TuneParams

    @model_validator(mode="after")
    def _space_values_are_valid_train_params(self) -> Params:
        for name, values in self.tune.space.items():
            for value in values:
                try:
                    TrainParams.model_validate(self.train.model_dump() | {name: value})
                except ValueError as error:
                    raise ValueError(
                        f"tune.space.{name}: {value!r} is not valid: {error}"
                    ) from None
        return self

    @classmethod
    def load(cls, path: Path = DEFAULT_PARAMS_PATH) -> Params:
        """Read and check params.yaml; raises pydantic.ValidationError naming the bad key."""
        return cls.model_validate(yaml.safe_load(path.read_text()))


def contract_problems(params: Params, contract: Contract) -> list[str]:
    """What in params.yaml names data the contract does not have: one message per key."""
    problems = []
    labels = contract.label.values
    for name, expectation in params.gate.behavior.expectations().items():
        key = f"gate.behavior.directional.{name}"
        if name not in contract.feature_names:
            problems.append(f"{key}: {name!r} is not a feature of the data contract")
        elif contract.feature(name).kind != "numeric":
            kind = contract.feature(name).kind
            problems.append(f"{key}: {name!r} is {kind}; directions apply to numeric features")
        if expectation.label is None and contract.label.positive_label is None:
            problems.append(
                f"{key}: with {len(labels)} classes name the class: {{effect: "
                f"{expectation.effect}, label: <one of {list(labels)}>}}"
            )
        elif expectation.label is not None and expectation.label not in labels:
            problems.append(f"{key}: label {expectation.label!r} is not one of {list(labels)}")
    return problems


def load_checked(params_path: Path, contract_path: Path) -> tuple[Params, Contract]:
    """params.yaml and the contract, checked against each other; ValueError lists every key
    that names a feature or class the contract lacks."""
    params, contract = Params.load(params_path), Contract.load(contract_path)
    problems = contract_problems(params, contract)
    if problems:
        raise ValueError(
            f"{params_path} does not fit {contract_path}:\n"
            + "\n".join(f"  x {problem}" for problem in problems)
        )
    return params, contract
