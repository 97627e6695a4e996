"""MLflow wiring: a local SQLite store by default, telemetry off, one run per trained model.

`train` opens the run and tags it with the weights' sha256; later stages find the same run by
that tag, so the whole history of one model sits in one MLflow run without passing ids around.
mlflow is imported inside the functions: it is slow to import and starts telemetry on import.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "mlops-starter"
WEIGHTS_TAG = "weights_sha256"

TELEMETRY_OFF = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
    "BENTOML_DO_NOT_TRACK": "true",
    "DO_NOT_TRACK": "true",
}


def disable_telemetry() -> None:
    """Call before importing mlflow, dvc or bentoml (each may phone home on import)."""
    for name, value in TELEMETRY_OFF.items():
        os.environ.setdefault(name, value)


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def configure() -> Any:
    """The mlflow module, pointed at the tracking store and experiment."""
    disable_telemetry()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", DEFAULT_EXPERIMENT))
    return mlflow


def find_model_run(weights_sha256: str) -> str | None:
    """Id of the newest run that trained these exact weights, if the store has one."""
    mlflow = configure()
    runs = mlflow.search_runs(
        filter_string=f"tags.{WEIGHTS_TAG} = '{weights_sha256}'",
        order_by=["attributes.start_time DESC"],
        max_results=20,
        output_format="list",
    )
    # A `make tune` trial can train the very same weights; its run belongs to the search.
    own = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    return own[0].info.run_id if own else None


@contextmanager
def model_run(weights_sha256: str, *, new: bool = False) -> Iterator[Any]:
    """The run of these weights (reopened, or created if the store has none, as after a clone)."""
    mlflow = configure()
    run_id = None if new else find_model_run(weights_sha256)
    with mlflow.start_run(run_id=run_id) as run:
        mlflow.set_tag(WEIGHTS_TAG, weights_sha256)
        yield run


def log_history(history: list[dict[str, float]]) -> None:
    """Per-epoch metrics in batches: one SQLite write per 1000 values, not per value."""
    import mlflow
    from mlflow.entities import Metric

    client = mlflow.MlflowClient()
    run = mlflow.active_run()
    assert run is not None, "log_history runs inside model_run()"
    run_id = run.info.run_id
    metrics = [
        Metric(key=key, value=value, timestamp=0, step=step)
        for step, epoch in enumerate(history)
        for key, value in epoch.items()
    ]
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start : start + 1000])
