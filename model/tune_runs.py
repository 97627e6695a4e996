"""`make tune`: every trial as an MLflow child run of the search's parent run."""

from __future__ import annotations

from collections.abc import Sequence

from model.params import TrainParams, TuneParams
from model.search import Trial
from model.tracking import configure

EXP_NAME_TAG = "dvc_exp_name"  # set by the `train` stage when it runs as a DVC experiment
PARENT_TAG = "mlflow.parentRunId"


def log_trials(
    parent_id: str, trials: Sequence[Trial], current: TrainParams, tune: TuneParams
) -> None:
    """Every trial as a child run: the `train` stage's run when the trial trained, else a new one
    with the same params (the trial's result came from dvc.lock or DVC's run cache)."""
    mlflow = configure()
    client = mlflow.MlflowClient()
    experiment_id = client.get_run(parent_id).info.experiment_id
    for trial in trials:
        found = client.search_runs(
            [experiment_id], filter_string=f"tags.{EXP_NAME_TAG} = '{trial.name}'", max_results=1
        )
        if found:
            run_id = found[0].info.run_id
        else:
            run_id = client.create_run(experiment_id, run_name=trial.name).info.run_id
            # logged exactly as the train stage logs them, so MLflow lines the trials up
            trained = TrainParams.model_validate(current.model_dump() | trial.overrides)
            client.log_batch(
                run_id,
                params=[
                    mlflow.entities.Param(key, str(value))
                    for key, value in trained.model_dump().items()
                ],
                tags=[
                    mlflow.entities.RunTag(
                        "tune_note", "no training: restored by DVC (dvc.lock or run cache)"
                    )
                ],
            )
            client.set_terminated(run_id, "FINISHED" if trial.state == "success" else "FAILED")
        client.set_tag(run_id, PARENT_TAG, parent_id)
        client.set_tag(run_id, "mlflow.runName", trial.name)
        client.set_tag(run_id, EXP_NAME_TAG, trial.name)
        client.set_tag(run_id, "tune_state", trial.state)
        for key, value in trial.metrics.items():
            client.log_metric(run_id, f"trial_{key}", value)
        score = trial.score(tune.objective)
        if score is not None:
            client.log_metric(run_id, "tune_objective", score)
