"""The `gate` stage in a real DVC repository with a real MLflow store.

Bad candidates (worse, slower, disagreeing with torch) are stopped by the gate named in the
message and never registered; good ones are registered once, whatever the number of re-runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from model.params import Params
from reporting.card import SECTIONS
from tests.conftest import REPO_ROOT
from tests.pipeline_fixtures import VENV_BIN, dvc, run, stages_run

pytestmark = pytest.mark.slow

MODEL_NAME = Params.load(REPO_ROOT / "params.yaml").registry.model_name
GATE = "deploy/dvc.yaml:gate"  # the machine-local stages live in deploy/dvc.yaml
GATE_ARGS = [
    "data/prepared",
    "data/contract.yaml",
    "models/model.pt",
    "models/model.onnx",
    "models/model.int8.onnx",
    "models/model.json",
    "reports/metrics.json",
    "reports/gate.json",
]


def _client(repo: Path) -> Any:
    import mlflow

    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")


def _versions(repo: Path) -> list[Any]:
    return list(_client(repo).search_model_versions(f"name = '{MODEL_NAME}'"))


def _set_params(repo: Path, section: str, **values: object) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _gate_report(repo: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((repo / "reports/gate.json").read_text())
    return report


def _failed(report: dict[str, Any]) -> set[str]:
    return {f"{c['gate']}/{c['name']}" for c in report["checks"] if not c["passed"]}


def test_first_run_has_no_baseline_and_registers_a_challenger(pipeline_repo: Path) -> None:
    report = _gate_report(pipeline_repo)
    assert report["passed"] is True
    assert report["baseline"]["kind"] == "none"
    assert "only absolute floors apply" in report["baseline"]["note"]
    [version] = _versions(pipeline_repo)
    assert report["registered"]["version"] == str(version.version)
    client = _client(pipeline_repo)
    assert client.get_model_version_by_alias(MODEL_NAME, "challenger").version == version.version
    assert set(version.tags) >= {"git_commit", "data_md5", "params_sha256", "gate_result"}


def _card(repo: Path) -> str:
    card = (repo / "reports/model_card.md").read_text()
    for section, body in zip(SECTIONS, card.split("\n## ")[1:], strict=True):
        assert body.startswith(section.removeprefix("## ")), section
        assert len(body.strip().splitlines()) > 2, f"{section} is empty"
    return card


def test_the_first_version_gets_a_card_in_mlflow_and_in_the_bento(pipeline_repo: Path) -> None:
    card = _card(pipeline_repo)
    assert card.startswith(f"# Model card: {MODEL_NAME}, version 1\n")
    assert "none: the first version" in card
    assert "| vs baseline |" not in card
    [version] = _versions(pipeline_repo)
    uri = version.tags["model_card"]
    assert uri == f"runs:/{version.run_id}/model_card.md"
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{pipeline_repo / 'mlflow.db'}")
    attached = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri)).read_text()
    # Not compared byte for byte: the session's copies of this project (forced_repo, ...) keep
    # MLflow's absolute artifact paths, so their own card runs write to this same artifact.
    assert attached.splitlines()[0] == card.splitlines()[0]
    assert all(section in attached for section in SECTIONS)
    stored = list((pipeline_repo / ".bentoml/models").glob(f"{MODEL_NAME}/*/model_card.md"))
    assert [path.read_text() for path in stored] == [card]


def test_re_running_the_gate_registers_no_duplicate(repo_copy: Path) -> None:
    dvc(repo_copy, "repro", "--force", "--single-item", GATE)
    assert len(_versions(repo_copy)) == 1
    assert _gate_report(repo_copy)["registered"]["created"] is False


def test_a_worse_candidate_is_stopped_by_the_metric_gate(repo_copy: Path) -> None:
    _set_params(repo_copy, "train", epochs=1)
    result = dvc(repo_copy, "repro", check=False)
    assert result.returncode != 0
    assert stages_run(result.stdout)[-1] == GATE
    assert "metric/accuracy_floor" in result.stderr
    assert _gate_report(repo_copy)["registered"] is None
    assert len(_versions(repo_copy)) == 1


def test_a_slower_candidate_is_stopped_by_the_latency_ratio(repo_copy: Path) -> None:
    """A far wider network, judged against the committed model measured side by side."""
    _set_params(repo_copy, "train", hidden_units=[1024, 1024])
    result = dvc(repo_copy, "repro", check=False, env={"GATE_BASELINE": "git:HEAD"})
    report = _gate_report(repo_copy)
    assert result.returncode != 0
    assert report["baseline"]["kind"] == "git"
    assert report["baseline"]["has_model"] is True
    assert "latency/p99_ratio" in _failed(report)
    assert "latency/p99_ratio" in result.stderr
    assert len(_versions(repo_copy)) == 1


def test_an_onnx_model_that_disagrees_with_torch_is_stopped_by_parity(repo_copy: Path) -> None:
    import torch

    from model.export import to_onnx
    from model.features import FeatureSchema, read_split
    from model.network import Classifier

    schema = FeatureSchema.load(repo_copy / "data/prepared/features.json")
    frame, _ = read_split(repo_copy / "data/prepared/test.csv", schema)
    torch.manual_seed(123)
    impostor = Classifier(len(schema.encoded_names), (32, 16), len(schema.labels)).eval()
    onnx_path = repo_copy / "models/model.onnx"
    onnx_path.write_bytes(to_onnx(impostor, schema, frame, 18))
    args = [*GATE_ARGS, "--baseline", "none", "--no-register"]
    result = run(repo_copy, str(VENV_BIN / "python"), "-m", "model.gate", *args, check=False)
    assert result.returncode == 1
    assert "parity/onnx_matches_torch" in result.stderr
    assert _gate_report(repo_copy)["checks"][0]["name"] == "onnx_matches_torch"


def test_the_champion_is_the_baseline_when_set(repo_copy: Path) -> None:
    client = _client(repo_copy)
    [version] = _versions(repo_copy)
    client.set_registered_model_alias(MODEL_NAME, "champion", version.version)
    dvc(repo_copy, "repro", "--force", "--single-item", GATE)
    report = _gate_report(repo_copy)
    assert report["baseline"]["kind"] == "champion"
    assert f"version {version.version}" in report["baseline"]["source"]
    assert {"metric/roc_auc_vs_baseline", "latency/p99_ratio"} <= {
        f"{c['gate']}/{c['name']}" for c in report["checks"]
    }
    assert report["importance"]["baseline"]["features"][0]["rank"] == 1
    dvc(repo_copy, "repro", "deploy/dvc.yaml:card")
    card = _card(repo_copy)
    assert f"champion `models:/{MODEL_NAME}@champion (version {version.version})`" in card
    # The champion is this very model: the card says so instead of comparing it with itself.
    assert report["identical"] is True
    assert "is this very model (same ONNX sha256): not compared" in card
    assert "| accuracy | " in card


def test_an_unknown_git_baseline_falls_back_to_floors_and_says_so(repo_copy: Path) -> None:
    args = [*GATE_ARGS, "--baseline", "git:no-such-branch", "--no-register"]
    run(repo_copy, str(VENV_BIN / "python"), "-m", "model.gate", *args)
    baseline = _gate_report(repo_copy)["baseline"]
    assert baseline["kind"] == "none"
    assert "not found" in baseline["note"]


def test_a_changed_feature_set_is_reported_as_breaking_not_a_crash(repo_copy: Path) -> None:
    """A feature moved to `ignore` with a champion registered: each model is measured on its
    own inputs, and the candidate is marked breaking in gate.json and the registry."""
    client = _client(repo_copy)
    [version] = _versions(repo_copy)
    client.set_registered_model_alias(MODEL_NAME, "champion", version.version)
    contract = yaml.safe_load((repo_copy / "data/contract.yaml").read_text())
    dropped = contract["features"].pop()["name"]
    contract["ignore"] = [*contract.get("ignore", []), dropped]
    (repo_copy / "data/contract.yaml").write_text(yaml.safe_dump(contract, sort_keys=False))
    params = yaml.safe_load((repo_copy / "params.yaml").read_text())
    params["gate"]["behavior"]["directional"].pop(dropped, None)
    (repo_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = dvc(repo_copy, "repro", GATE, check=False)
    report = _gate_report(repo_copy)
    [schema_check] = [c for c in report["checks"] if c["name"] == "input_schema"]
    assert "Traceback" not in result.stderr
    assert schema_check["value"] == "breaking"
    assert f"removed: {dropped}" in schema_check["why"]
    assert report["breaking"] is True
    assert "latency/p99_ratio" in {f"{c['gate']}/{c['name']}" for c in report["checks"]}
    if report["registered"]:
        new = client.get_model_version(MODEL_NAME, report["registered"]["version"])
        assert new.tags["breaking"] == "true"
