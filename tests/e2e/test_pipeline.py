"""The whole DVC pipeline, run for real in a copy of the project."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from model.contract import Contract, NumericFeature
from model.params import Params
from tests.pipeline_fixtures import dvc, stages_run
from tests.tables import shipped_raw_path

pytestmark = pytest.mark.slow

DEPLOY = "deploy/dvc.yaml:"  # the machine-local stages' file, as DVC names its stages
STAGES = [
    "validate",
    "prepare",
    "train",
    "export",
    "evaluate",
    "quantize",
    f"{DEPLOY}gate",
    f"{DEPLOY}card",
    f"{DEPLOY}package",
    f"{DEPLOY}load_test",
]


def _json(path: Path) -> dict[str, object]:
    result: dict[str, object] = json.loads(path.read_text())
    return result


def test_fresh_clone_rebuilds_what_git_does_not_carry(pipeline_repo: Path) -> None:
    """Stages whose outputs live only in the DVC cache run; the rest are checked and skipped."""
    ran = stages_run((pipeline_repo / ".git" / "first_repro.log").read_text())
    assert {
        "prepare",
        "train",
        "export",
        "quantize",
        f"{DEPLOY}gate",
        f"{DEPLOY}card",
        f"{DEPLOY}package",
        f"{DEPLOY}load_test",
    } <= set(ran)
    assert ran == [stage for stage in STAGES if stage in ran]


def test_a_run_leaves_git_nothing_but_the_deterministic_stages_outputs(
    pipeline_repo: Path,
) -> None:
    """What varies per machine or run (the deploy stages' lock and outputs) stays out of git: a
    run may change only dvc.lock and its stages' outputs (when the copied lock was stale), so a
    fresh clone of a commit with a current dvc.lock ends with a clean `git status`."""
    changed = [
        line[3:] for line in (pipeline_repo / ".git" / "first_status.txt").read_text().splitlines()
    ]
    stages = yaml.safe_load((pipeline_repo / "dvc.yaml").read_text())["stages"]
    lock = yaml.safe_load((pipeline_repo / "dvc.lock").read_text())["stages"]
    outs = {out["path"] for name in stages for out in lock[name].get("outs", [])}
    allowed = {"dvc.lock"} | outs
    assert [path for path in changed if not any(path.startswith(out) for out in allowed)] == []


def test_every_output_is_written(pipeline_repo: Path) -> None:
    for name in [
        "reports/validation.json",
        "data/prepared/train.csv",
        "data/prepared/val.csv",
        "data/prepared/test.csv",
        "data/prepared/features.json",
        "models/model.pt",
        "reports/plots/training.csv",
        "reports/validation_metrics.json",
        "reports/metrics.json",
        "reports/confidence.json",
        "reports/importance.json",
        "reports/plots/importance.csv",
        "reports/model_card.md",
        "reports/plots/roc.csv",
        "reports/plots/precision_recall.csv",
        "reports/plots/confusion.csv",
        "models/model.onnx",
        "models/model.json",
    ]:
        assert (pipeline_repo / name).stat().st_size > 0, name


def test_metrics_clear_the_gate_floors(pipeline_repo: Path) -> None:
    metrics = _json(pipeline_repo / "reports/metrics.json")
    for name, gate in Params.load(pipeline_repo / "params.yaml").gate.metrics.items():
        value = float(metrics[name])  # type: ignore[arg-type]
        assert gate.min is None or value >= gate.min, name
        assert gate.max is None or value <= gate.max, name


def test_model_metadata_describes_the_onnx_file(pipeline_repo: Path) -> None:
    info = _json(pipeline_repo / "models/model.json")
    model = (pipeline_repo / "models/model.onnx").read_bytes()
    assert info["sha256"] == hashlib.sha256(model).hexdigest()
    assert info["parity_max_abs_diff"] <= 1e-5  # type: ignore[operator]
    contract = Contract.load(pipeline_repo / "data/contract.yaml")
    assert info["feature_names"] == list(contract.feature_names)
    # committed, so nothing in it may vary per run or name the commit that will hold it
    assert "training_commit" not in info
    assert "-dirty" not in json.dumps(info)


def test_mlflow_has_one_run_with_params_history_metrics_and_lineage(forced_repo: Path) -> None:
    """train, evaluate and export all log to the run tagged with the weights they share."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{forced_repo / 'mlflow.db'}")
    weights = hashlib.sha256((forced_repo / "models/model.pt").read_bytes()).hexdigest()
    experiment = client.get_experiment_by_name("mlops-starter")
    assert experiment is not None
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.weights_sha256 = '{weights}'",
        order_by=["attributes.start_time DESC"],
    )
    run = runs[0]  # the forced run; the first run of these weights is older
    epochs = yaml.safe_load((forced_repo / "params.yaml").read_text())["train"]["epochs"]
    assert run.data.params["epochs"] == str(epochs)
    assert len(client.get_metric_history(run.info.run_id, "val_loss")) == epochs
    assert run.data.metrics["test_roc_auc"] > 0.9
    assert "parity_max_abs_diff" in run.data.metrics
    assert len(run.data.tags["git_commit"]) >= 40
    assert len(run.data.tags["data_md5"]) == 32


def test_second_run_reruns_no_stage(pipeline_repo: Path) -> None:
    result = dvc(pipeline_repo, "repro")
    assert stages_run(result.stdout) == []
    assert "up to date" in dvc(pipeline_repo, "status").stdout


def test_one_param_change_reruns_only_dependent_stages(repo_copy: Path) -> None:
    params = yaml.safe_load((repo_copy / "params.yaml").read_text())
    params["train"]["learning_rate"] *= 0.9
    (repo_copy / "params.yaml").write_text(yaml.safe_dump(params))
    assert stages_run(dvc(repo_copy, "repro").stdout) == STAGES[2:]


def test_cold_runs_give_identical_metrics_and_model(pipeline_repo: Path, forced_repo: Path) -> None:
    """Forcing every stage again reproduces the metrics and the ONNX bytes exactly."""
    for name in ["reports/metrics.json", "models/model.onnx", "data/prepared/test.csv"]:
        assert (forced_repo / name).read_bytes() == (pipeline_repo / name).read_bytes(), name


def test_bad_data_stops_at_validate_and_keeps_earlier_outputs(repo_copy: Path) -> None:
    kept = [
        "models/model.onnx",
        "models/model.pt",
        "reports/metrics.json",
        "data/prepared/train.csv",
    ]
    before = {name: (repo_copy / name).read_bytes() for name in kept}
    contract = Contract.load(repo_copy / "data/contract.yaml")
    column, low = next(
        (f.name, f.min)
        for f in contract.features
        if isinstance(f, NumericFeature) and f.min is not None
    )
    raw = shipped_raw_path(repo_copy)
    frame = pd.read_csv(raw)
    frame.loc[5, column] = low - 1000.0
    frame.to_csv(raw, index=False)

    result = dvc(repo_copy, "repro", check=False)

    assert result.returncode != 0
    assert stages_run(result.stdout) == ["validate"]
    assert "min" in result.stderr
    assert column in result.stderr
    assert _json(repo_copy / "reports/validation.json")["passed"] is False
    assert {name: (repo_copy / name).read_bytes() for name in kept} == before
