"""The model a batch run scores with: an exported folder, or the BentoML store (the champion
by default), loaded with onnxruntime only."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from batch.problems import BatchError
from model.inference import layout_of, onnx_session
from model.inputs import InputLayout
from model.model_store import METADATA_FILE, ONNX_FILE, model_version, use_project_store
from model.registry import alias_version


@dataclass(frozen=True)
class BatchModel:
    session: ort.InferenceSession
    layout: InputLayout  # the raw inputs the graph takes
    labels: tuple[str, ...]
    version: str

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.layout.names


def load_model_dir(directory: Path, version: str | None = None, threads: int = 1) -> BatchModel:
    """model.onnx + model.json from a folder; without `version`, named after the file's sha256.
    The inputs come from model.json's `inputs`, else from the ONNX file's own metadata."""
    onnx_file, metadata_file = directory / ONNX_FILE, directory / METADATA_FILE
    for required in (onnx_file, metadata_file):
        if not required.is_file():
            raise BatchError(f"no {required.name} in {directory}")
    try:
        info = json.loads(metadata_file.read_text())
        labels = tuple(str(label) for label in info["labels"])
        described = InputLayout.from_metadata(info) if "inputs" in info else None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BatchError(f"{metadata_file}: not a model description ({error!r})") from error
    try:
        session = onnx_session(onnx_file, threads)
    except Exception as error:  # onnxruntime's errors derive from Exception only
        raise BatchError(f"{onnx_file}: onnxruntime cannot load it: {error}") from error
    layout = described or layout_of(session)
    if layout is None:
        raise BatchError(
            f"{directory}: the model does not describe its inputs (no `inputs` in "
            f"{METADATA_FILE}, none in the ONNX metadata): export it again"
        )
    return BatchModel(session, layout, labels, version or model_version(info, None))


def load_store_model(tag: str, threads: int = 1) -> BatchModel:
    """A model from the project's BentoML store, versioned by its `model_version` label."""
    use_project_store()
    import bentoml
    from bentoml.exceptions import BentoMLException

    try:
        stored = bentoml.models.get(tag)
    except BentoMLException as error:
        home = os.environ.get("BENTOML_HOME")
        raise BatchError(
            f"no model {tag} in the BentoML store under {home}: run `make package` ({error})"
        ) from error
    version = stored.info.labels.get("model_version") or str(stored.tag.version)
    return load_model_dir(Path(stored.path), version, threads)


def champion_tag() -> str:
    """The store tag of the model the MLflow registry's champion alias points at."""
    use_project_store()
    from model.params import Params

    registry = Params.load().registry
    name, alias = registry.model_name, registry.champion_alias
    version = alias_version(name, alias)
    if version is None:
        raise BatchError(
            f"no `{alias}` alias on {name} in the MLflow registry: promote a model with "
            "`make rollout`, or name one with --model-tag or --model-dir"
        )
    tag = _store_tag_for(name, version)
    if tag is None:
        raise BatchError(f"{alias} (registry version {version}) is not in the BentoML store")
    return tag


def _store_tag_for(name: str, registry_version: str) -> str | None:
    """The BentoML store tag `package` imported registry version `registry_version` under."""
    import bentoml

    for stored in bentoml.models.list(name):
        if stored.info.labels.get("registry_version") == str(registry_version):
            return str(stored.tag)
    return None
