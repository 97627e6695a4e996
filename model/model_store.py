"""The BentoML model store: where the gated ONNX model is imported for serving and packaging.

The store lives in the project (`BENTOML_HOME`, default `.bentoml/`), so nothing leaks into the
user's home. One store entry per ONNX file: its version is derived from the registry version and
the file's sha256, so importing the same model twice is a no-op.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

ONNX_FILE = "model.onnx"
METADATA_FILE = "model.json"
CARD_FILE = "model_card.md"
DEFAULT_BENTOML_HOME = ".bentoml"


def use_project_store(root: Path = Path()) -> None:
    """Point BentoML at the project-local store unless the user chose one. Call before import."""
    os.environ.setdefault("BENTOML_HOME", str((root / DEFAULT_BENTOML_HOME).resolve()))
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")


def model_version(info: dict[str, Any], registry_version: str | None) -> str:
    """`v3-1a2b3c4d` for registry version 3, or `sha-1a2b3c4d5e6f` for an unregistered model."""
    if registry_version:
        return f"v{registry_version}-{info['sha256'][:8]}"
    return f"sha-{info['sha256'][:12]}"


def without_nulls(value: Any) -> Any:
    """`value` with every null dropped, at any depth."""
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value if item is not None]
    return value


def import_model(
    name: str,
    onnx_path: Path,
    info: dict[str, Any],
    registry_version: str | None,
    card_path: Path | None = None,
) -> tuple[str, bool]:
    """Copy the model (and its card, when given) into the store; returns its tag and whether it
    was new. The card travels with the model into every Bento and image built from it."""
    import bentoml
    from bentoml.exceptions import NotFound

    version = model_version(info, registry_version)
    tag = f"{name}:{version}"
    try:
        stored = bentoml.models.get(tag)
    except NotFound:
        pass
    else:
        if card_path is not None:  # the card may have been rendered again since (a new alias)
            from model.atomic import write_bytes_atomically  # packaging only: not in the Bento

            write_bytes_atomically(Path(stored.path) / CARD_FILE, card_path.read_bytes())
        return tag, False
    labels = {
        "model_version": version,
        "registry_version": registry_version or "none",
        "git_commit": info.get("training_commit", "unknown"),
        "data_md5": info.get("data_md5", "unknown"),
    }
    # BentoML's metadata holds no null (a 3+ class model has no positive label, examples have
    # empty cells): the store gets a copy without them; model.json beside the model is whole.
    with bentoml.models.create(name=tag, labels=labels, metadata=without_nulls(info)) as model:
        shutil.copyfile(onnx_path, Path(model.path) / ONNX_FILE)
        (Path(model.path) / METADATA_FILE).write_text(json.dumps(info, indent=2))
        if card_path is not None:
            shutil.copyfile(card_path, Path(model.path) / CARD_FILE)
    return tag, True
