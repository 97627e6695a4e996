"""`make tune` on the real data: trials are DVC experiments and MLflow child runs, the proposal is
no worse than the current params on the validation split, and no trial reads the test split.

Every Python process of the search (the tuner, DVC's queue workers, the `train` stage) starts
with an audit hook (a `sitecustomize` on PYTHONPATH) that records which prepared split files it
opens, so "never reads the test split" is observed, not assumed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.pipeline_fixtures import VENV_BIN, dvc, run

pytestmark = pytest.mark.slow

AUDIT_HOOK = """
import os, sys

_LOG = os.environ.get("SPLIT_AUDIT_LOG")


def _reads(mode, flags):
    if isinstance(mode, str):
        return not any(letter in mode for letter in "wax+")
    return isinstance(flags, int) and flags & os.O_ACCMODE == os.O_RDONLY


def _record_split_reads(event, args):
    if event != "open" or len(args) < 3 or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    if not _reads(args[1], args[2]):  # DVC writing a checkout is not a read
        return
    path = os.fsdecode(args[0])
    if "prepared" in path and path.endswith(".csv"):
        with open(_LOG, "a") as log:
            log.write(f"{sys.argv[0] if sys.argv else '?'}\\t{path}\\n")


if _LOG:
    sys.addaudithook(_record_split_reads)
"""


@pytest.fixture(scope="module")
def tuned(pipeline_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One tiny search (3 trials, 2 at a time) in a copy of the reproduced project."""
    import shutil

    root = tmp_path_factory.mktemp("tune")
    repo = Path(shutil.copytree(pipeline_repo, root / "project", symlinks=True))
    hook_dir = root / "hook"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(AUDIT_HOOK)
    audit = root / "split_reads.tsv"
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["tune"] |= {"max_trials": 3, "jobs": 2}  # the budget comes from params.yaml only
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    params_before = (repo / "params.yaml").read_text()
    result = run(
        repo,
        str(VENV_BIN / "python"),
        "-m",
        "model.tune",
        env={"PYTHONPATH": str(hook_dir), "SPLIT_AUDIT_LOG": str(audit)},
    )
    return {
        "repo": repo,
        "output": result.stdout,
        "summary": json.loads((repo / "reports/tune.json").read_text()),
        "reads": [line.split("\t") for line in audit.read_text().splitlines()],
        "params_before": params_before,
    }


def test_every_trial_finishes_and_shows_progress(tuned: dict[str, Any]) -> None:
    trials = tuned["summary"]["trials"]
    assert len(trials) == 3
    assert {trial["state"] for trial in trials} == {"success"}
    for number in (1, 2, 3):
        assert f"tune: trial {number}/3 " in tuned["output"]


def test_the_proposal_is_no_worse_than_the_current_params(tuned: dict[str, Any]) -> None:
    summary = tuned["summary"]
    current, *others = summary["trials"]
    params = yaml.safe_load(tuned["params_before"])["train"]
    assert current["overrides"] == {key: params[key] for key in current["overrides"]}
    best = next(trial for trial in summary["trials"] if trial["name"] == summary["best"])
    assert best["metrics"]["val_loss"] <= current["metrics"]["val_loss"]
    assert best["metrics"]["val_loss"] == min(
        trial["metrics"]["val_loss"] for trial in [*others, current]
    )
    # Without --apply nothing is written.
    assert (tuned["repo"] / "params.yaml").read_text() == tuned["params_before"]


def test_trials_are_dvc_experiments_with_their_params(tuned: dict[str, Any]) -> None:
    names = dvc(tuned["repo"], "exp", "list", "--name-only").stdout.split()
    trials = tuned["summary"]["trials"]
    assert sorted(names) == sorted(trial["name"] for trial in trials)
    shown = json.loads(dvc(tuned["repo"], "exp", "show", "--json").stdout)
    by_name = {
        experiment["name"]: experiment["revs"][0]["data"]
        for baseline in shown
        for experiment in baseline.get("experiments") or []
    }
    for trial in trials:
        data = by_name[trial["name"]]
        train = data["params"]["params.yaml"]["data"]["train"]
        assert {key: train[key] for key in trial["overrides"]} == trial["overrides"]
        assert data["metrics"]["reports/validation_metrics.json"]["data"] == trial["metrics"]


def test_trials_are_mlflow_child_runs_of_one_parent(tuned: dict[str, Any]) -> None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tuned['repo'] / 'mlflow.db'}")
    parent_id = tuned["summary"]["mlflow_parent_run"]
    experiment_id = client.get_run(parent_id).info.experiment_id
    children = client.search_runs(
        [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    assert sorted(run.info.run_name for run in children) == sorted(
        trial["name"] for trial in tuned["summary"]["trials"]
    )
    for child in children:
        assert "trial_val_loss" in child.data.metrics
    trained = [child for child in children if "val_loss" in child.data.metrics]
    assert trained, "the trials that trained should be the train stage's own runs"


def test_no_trial_reads_the_test_split(tuned: dict[str, Any]) -> None:
    readers = {(Path(argv).name, Path(path).name) for argv, path in tuned["reads"]}
    assert ("train.py", "train.csv") in readers, "the audit hook saw no trial train"
    assert ("train.py", "val.csv") in readers
    assert not [reader for reader in readers if reader[1] == "test.csv"], readers
