"""Batch scoring refuses a model it cannot use with a message that names what is wrong.

`python -m batch` runs unattended (a schedule, a retrain job): a folder without its description,
a broken file, a model that does not say which inputs it takes, or a champion that is not in the
store must stop the run before anything is scored, saying where to look.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from batch import models
from batch.models import champion_tag, load_model_dir
from batch.problems import BatchError
from model.model_store import METADATA_FILE, ONNX_FILE
from model.params import Params
from tests.batch_fixtures import export_tiny_model


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tiny_model(tmp_path_factory.mktemp("model"))


def _copy(exported: Path, destination: Path) -> Path:
    destination.mkdir()
    for name in (ONNX_FILE, METADATA_FILE):
        (destination / name).write_bytes((exported / name).read_bytes())
    return destination


def _info(directory: Path) -> dict[str, object]:
    info: dict[str, object] = json.loads((directory / METADATA_FILE).read_text())
    return info


def _without(exported: Path, tmp_path: Path, key: str) -> Path:
    """A copy of the exported model whose model.json lacks `key`."""
    directory = _copy(exported, tmp_path / "model")
    info = _info(directory)
    del info[key]
    (directory / METADATA_FILE).write_text(json.dumps(info))
    return directory


@pytest.mark.parametrize("missing", [ONNX_FILE, METADATA_FILE])
def test_a_folder_without_both_files_is_refused_naming_the_missing_one(
    exported: Path, tmp_path: Path, missing: str
) -> None:
    directory = _copy(exported, tmp_path / "model")
    (directory / missing).unlink()
    with pytest.raises(BatchError, match=f"no {missing} in "):
        load_model_dir(directory)


def test_a_description_without_labels_is_not_a_model_description(
    exported: Path, tmp_path: Path
) -> None:
    directory = _without(exported, tmp_path, "labels")
    with pytest.raises(BatchError, match="not a model description") as error:
        load_model_dir(directory)
    assert METADATA_FILE in str(error.value)


def test_a_file_onnxruntime_cannot_load_is_refused(exported: Path, tmp_path: Path) -> None:
    directory = _copy(exported, tmp_path / "model")
    (directory / ONNX_FILE).write_bytes(b"not an onnx graph")
    with pytest.raises(BatchError, match="onnxruntime cannot load it"):
        load_model_dir(directory)


def test_the_onnx_files_own_metadata_describes_the_inputs_when_model_json_does_not(
    exported: Path, tmp_path: Path
) -> None:
    directory = _without(exported, tmp_path, "inputs")
    assert load_model_dir(directory).layout.inputs == load_model_dir(exported).layout.inputs


def test_a_model_described_nowhere_is_refused_with_the_fix(tmp_path: Path) -> None:
    """An ONNX file without the inputs property (exported before models described themselves)
    and a model.json without `inputs`."""
    tensor = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "bare",
        [tensor],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
    )
    bare = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    bare.ir_version = 8
    (tmp_path / ONNX_FILE).write_bytes(bare.SerializeToString())
    onnx.checker.check_model(bare)
    (tmp_path / METADATA_FILE).write_text(json.dumps({"labels": ["a", "b"], "sha256": "0" * 64}))
    with pytest.raises(BatchError, match="does not describe its inputs") as error:
        load_model_dir(tmp_path)
    assert "export it again" in str(error.value)


def test_without_a_version_a_model_is_named_after_its_file(exported: Path) -> None:
    sha256 = str(_info(exported)["sha256"])
    assert load_model_dir(exported).version == f"sha-{sha256[:12]}"
    assert load_model_dir(exported, version="v3-cafe").version == "v3-cafe"


@pytest.fixture
def project_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A store location of the test's own: champion_tag must not set the process's."""
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))


@pytest.mark.usefixtures("project_store")
def test_no_champion_alias_is_refused_naming_how_to_promote(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = Params.load().registry
    monkeypatch.setattr(models, "alias_version", lambda name, alias: None)
    with pytest.raises(BatchError, match=f"no `{registry.champion_alias}` alias") as error:
        champion_tag()
    assert "--model-tag or --model-dir" in str(error.value)


@pytest.mark.usefixtures("project_store")
def test_a_champion_missing_from_the_store_is_refused_with_its_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(models, "alias_version", lambda name, alias: "7")
    monkeypatch.setattr(models, "_store_tag_for", lambda name, version: None)
    with pytest.raises(BatchError, match=r"\(registry version 7\) is not in the BentoML store"):
        champion_tag()


@pytest.mark.usefixtures("project_store")
def test_the_champion_is_the_store_tag_of_its_registry_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(models, "alias_version", lambda name, alias: "7")
    tags = {"7": "classifier:abc", "6": "classifier:old"}
    monkeypatch.setattr(models, "_store_tag_for", lambda name, version: tags.get(version))
    assert champion_tag() == "classifier:abc"
