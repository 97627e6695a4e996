"""Tables no code knows: a generated mixed-kind table and its contract, and the shipped one read
through dvc.yaml and the contract (never by its column names).

The mixed table has what real tables have and the shipped example lacks: categoricals (one with
an `other` bucket), a boolean, nulls in every kind, three classes, an id column, and column names
with spaces, dots, slashes, capitals and unicode. The label depends on the features, so a model
can learn it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from model.contract import Contract

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTRACT_PATH = REPO_ROOT / "data" / "contract.yaml"


def shipped_raw_path(root: Path = REPO_ROOT) -> Path:
    """The raw CSV the pipeline reads, from dvc.yaml's `raw_data` var."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())
    [variables] = stages["vars"]
    return root / str(variables["raw_data"])


MIXED_CONTRACT: dict[str, Any] = {
    "dataset": {"name": "Generated mixed table", "source": "tests/tables.py", "licence": "CC0"},
    "label": {"name": "Outcome Class", "values": ["ämber", "blue/green", "red.0"]},
    "ignore": ["row id"],
    "features": [
        {"name": "Size (cm)", "kind": "numeric", "min": -10.0, "max": 10.0},
        {"name": "weight.kg", "kind": "numeric", "nullable": True, "impute": "median"},
        {"name": "count", "kind": "numeric", "dtype": "int64", "min": 0, "max": 50},
        {
            "name": "Région",
            "kind": "categorical",
            "values": ["north", "south", "east"],
            "nullable": True,
            "impute": "missing",
        },
        {
            "name": "shape/type",
            "kind": "categorical",
            "values": ["round", "square"],
            "unseen": "other",
            "nullable": True,
            "impute": "most_frequent",
        },
        {"name": "Is Active", "kind": "boolean", "nullable": True},
    ],
    "table": {"min_rows": 50, "max_duplicate_fraction": 0.05, "min_class_fraction": 0.1},
}


def mixed_contract() -> Contract:
    return Contract.parse(MIXED_CONTRACT)


def mixed_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """A raw table for `mixed_contract()`, as a CSV would load (nulls as NaN)."""
    rng = np.random.default_rng(seed)
    size = rng.uniform(-9, 9, rows)
    weight = rng.normal(50, 10, rows)
    region = rng.choice(["north", "south", "east"], rows)
    shape = rng.choice(["round", "square"], rows)
    active = rng.random(rows) < 0.5
    score = size + np.where(region == "north", 4.0, 0.0) + np.where(active, 2.0, -2.0)
    label = np.select([score < -2, score < 4], ["ämber", "blue/green"], "red.0")
    frame = pd.DataFrame(
        {
            "row id": np.arange(1000, 1000 + rows),
            "Size (cm)": size.round(3),
            "weight.kg": weight.round(2),
            "count": rng.integers(0, 50, rows),
            "Région": region.astype(object),
            "shape/type": shape.astype(object),
            "Is Active": active.astype(object),
            "Outcome Class": label,
        }
    )
    holes = rng.random((rows, 4)) < 0.08
    for column, hole in zip(
        ["weight.kg", "Région", "shape/type", "Is Active"], holes.T, strict=True
    ):
        frame.loc[hole, column] = np.nan
    return frame


def write_mixed_table(folder: Path, rows: int = 300, seed: int = 0) -> tuple[Path, Path]:
    """The mixed table as `table.csv` and its contract as `contract.yaml` in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    csv, contract = folder / "table.csv", folder / "contract.yaml"
    mixed_frame(rows, seed).to_csv(csv, index=False)
    contract.write_text(yaml.safe_dump(MIXED_CONTRACT, allow_unicode=True, sort_keys=False))
    return csv, contract
