"""What the report and the card read: the stage outputs under reports/, typed where a model
exists (model/artifacts.py), so a file that does not match fails with its name and field.

Every file but the params is optional here, because a pipeline that stops early (say, at
validation) still deserves a report that says where it stopped.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from model.artifacts import GateReport, Importance, LoadTestSummary, read_optional
from model.contract import Contract, ContractError
from reporting.mermaid import Curve
from reporting.provenance import PIPELINE_STAGES, RunFiles

Json = dict[str, Any]
Curves = Mapping[str, Curve]  # class -> points, in file order; "" for a file without a class column


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report shows, already read from disk."""

    gate: GateReport | None
    validation: Json | None = None
    load_test: LoadTestSummary | None = None
    rollout: Json | None = None
    roc: Curves = field(default_factory=dict)  # (false positive rate, true positive rate)
    precision_recall: Curves = field(default_factory=dict)  # (recall, precision)
    params: Json | None = None
    base_params: Json | None = None
    run_url: str | None = None
    importance: Importance | None = None  # reports/importance.json; the baseline's is in gate.json
    confusion: tuple[tuple[str, str], ...] = ()  # (actual, predicted) class of each test row
    labels: tuple[str, ...] = ()  # the contract's classes, in the model's output order
    model: Json | None = None  # models/model.json: the hash every other file is checked against
    card: str | None = None  # reports/model_card.md
    bento: Json | None = None  # reports/bento.json
    expected: tuple[str, ...] = ()  # stages whose output must be there (provenance.ALL_STAGES)


def read_json(path: Path) -> Json:
    """A JSON object from a file this package has no typed model for (yet)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def read_optional_json(path: Path) -> Json | None:
    return read_json(path) if path.is_file() else None


def read_yaml(path: Path) -> Json:
    data = _read_optional_yaml(path)
    if data is None:
        raise ValueError(f"{path}: expected a YAML mapping")
    return data


def _read_optional_yaml(path: Path | None) -> Json | None:
    """None for a missing or empty file: an empty base would show every key as added."""
    if path is None or not path.is_file():
        return None
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping")
    return data


def _read_text(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _read_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _read_curves(path: Path, x: str, y: str) -> dict[str, Curve]:
    """Points per class, in file order (binary: the positive class; else one per class)."""
    curves: dict[str, list[tuple[float, float]]] = {}
    for row in _read_rows(path):
        curves.setdefault(row.get("class") or "", []).append((float(row[x]), float(row[y])))
    return {name: tuple(points) for name, points in curves.items()}


def _read_labels(contract: Path | None) -> tuple[str, ...]:
    """The contract's classes; none when it is missing or broken (validation reports that)."""
    if contract is None or not contract.is_file():
        return ()
    try:
        return Contract.load(contract).label.values
    except ContractError:
        return ()


def class_order(labels: Sequence[str], seen: Iterable[str]) -> list[str]:
    """The contract's classes in output order, then any other class the files name, by name."""
    return [*labels, *sorted(set(seen) - set(labels))]


def load_inputs(
    reports: Path,
    base_params: Path | None,
    run_url: str | None,
    *,
    params: Path | None = None,
    contract: Path | None = None,
    model: Path | None = None,
    expected: Sequence[str] = PIPELINE_STAGES,
) -> ReportInputs:
    """Read the report files under `reports`; `params`, `contract` and `model` default to the
    project's files beside it (params.yaml, data/contract.yaml, models/model.json)."""
    plots, project = reports / "plots", reports.parent
    return ReportInputs(
        gate=read_optional(reports / "gate.json", GateReport),
        validation=read_optional_json(reports / "validation.json"),
        load_test=read_optional(reports / "load_test.json", LoadTestSummary),
        rollout=read_optional_json(reports / "rollout" / "summary.json"),
        roc=_read_curves(plots / "roc.csv", "fpr", "tpr"),
        precision_recall=_read_curves(plots / "precision_recall.csv", "recall", "precision"),
        params=_read_optional_yaml(params if params is not None else project / "params.yaml"),
        base_params=_read_optional_yaml(base_params),
        run_url=run_url,
        importance=read_optional(reports / "importance.json", Importance),
        confusion=tuple(
            (row["actual"], row["predicted"]) for row in _read_rows(plots / "confusion.csv")
        ),
        labels=_read_labels(contract if contract is not None else project / "data/contract.yaml"),
        model=read_optional_json(model if model is not None else project / "models/model.json"),
        card=_read_text(reports / "model_card.md"),
        bento=read_optional_json(reports / "bento.json"),
        expected=tuple(expected),
    )


def run_files(inputs: ReportInputs) -> RunFiles:
    return RunFiles(
        model=inputs.model,
        validation=inputs.validation,
        gate=inputs.gate,
        card=inputs.card,
        bento=inputs.bento,
        load_test=inputs.load_test,
        rollout=inputs.rollout,
    )
