"""The MLflow model registry: register a gated model once, and read models back by alias.

Versions are keyed by the ONNX file's sha256 (a version tag), so re-running the gate for the
same model re-points the alias instead of creating a duplicate version.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.tracking import configure, model_run

SHA_TAG = "onnx_sha256"
ONNX_FILE = "model.onnx"


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str
    created: bool  # False when the same model was registered before


def _client() -> Any:
    return configure().MlflowClient()


def alias_version(name: str, alias: str) -> str | None:
    """The registry version `alias` names; None when the model or the alias is not there."""
    client = _client()
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        return None
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except Exception:  # MlflowException: alias not set
        return None


def find_version(name: str, onnx_sha256: str) -> Any | None:
    """The registered version holding exactly this ONNX file, if any."""
    client = _client()
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        return None
    versions = client.search_model_versions(f"name = '{name}' and tags.{SHA_TAG} = '{onnx_sha256}'")
    return min(versions, key=lambda v: int(v.version)) if versions else None


def register(
    name: str,
    alias: str,
    onnx_path: Path,
    onnx_sha256: str,
    weights_sha256: str,
    metrics: dict[str, float],
    tags: dict[str, str],
) -> RegisteredVersion:
    """Register the ONNX model under `name` (once per sha256) and point `alias` at it."""
    mlflow = configure()
    import onnx

    client = mlflow.MlflowClient()
    existing = find_version(name, onnx_sha256)
    if existing is not None:
        client.set_registered_model_alias(name, alias, existing.version)
        for key, value in tags.items():
            client.set_model_version_tag(name, existing.version, key, value)
        return RegisteredVersion(name, str(existing.version), existing.run_id, created=False)

    with model_run(weights_sha256) as run:
        # Log the test metrics again: `evaluate` may have been skipped by DVC in this clone.
        mlflow.log_metrics({f"test_{key}": value for key, value in metrics.items()})
        info = mlflow.onnx.log_model(
            onnx.load(onnx_path),
            name="model",
            save_as_external_data=False,
            pip_requirements=["onnxruntime", "numpy"],
        )
        run_id = run.info.run_id
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(
        name, source=info.model_uri, run_id=run_id, tags=tags | {SHA_TAG: onnx_sha256}
    )
    client.set_registered_model_alias(name, alias, version.version)
    return RegisteredVersion(name, str(version.version), run_id, created=True)


@dataclass(frozen=True)
class AliasedModel:
    name: str
    alias: str
    version: str
    model: bytes
    metrics: dict[str, float]


def load_alias(name: str, alias: str) -> AliasedModel | None:
    """The ONNX bytes and test metrics of `name@alias`, or None when the alias is not set."""
    mlflow = configure()
    client = mlflow.MlflowClient()
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        return None
    try:
        version = client.get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException:
        return None
    with tempfile.TemporaryDirectory() as scratch:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}@{alias}", dst_path=scratch
        )
        model = (Path(local) / ONNX_FILE).read_bytes()
    run_metrics = client.get_run(version.run_id).data.metrics
    metrics = {
        key.removeprefix("test_"): value
        for key, value in run_metrics.items()
        if key.startswith("test_")
    }
    return AliasedModel(name, alias, str(version.version), model, metrics)
