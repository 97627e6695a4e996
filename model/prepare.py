"""DVC stage `prepare`: stratified train/validation/test split and the scaling statistics.

The splits keep raw feature values; the statistics travel in features.json and are folded into
the network (and so into the ONNX model), which means a server needs nothing but onnxruntime.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from model.atomic import atomic_path, write_text_atomically
from model.contract import Contract
from model.features import FeatureSchema
from model.params import Params, PrepareParams


@dataclass(frozen=True)
class Splits:
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame


def split(frame: pd.DataFrame, label: str, params: PrepareParams) -> Splits:
    """Deterministic stratified three-way split; each part keeps the class shares of the whole."""
    rest, test = train_test_split(
        frame, test_size=params.test_fraction, stratify=frame[label], random_state=params.seed
    )
    val_share_of_rest = params.val_fraction / (1 - params.test_fraction)
    train, val = train_test_split(
        rest, test_size=val_share_of_rest, stratify=rest[label], random_state=params.seed
    )
    return Splits(train=train.sort_index(), val=val.sort_index(), test=test.sort_index())


def fit_schema(train: pd.DataFrame, contract: Contract) -> FeatureSchema:
    """Scaling statistics from the training rows only, so nothing leaks from val or test."""
    values = train.loc[:, list(contract.feature_names)].to_numpy(dtype=np.float64)
    std = values.std(axis=0)
    return FeatureSchema(
        feature_names=contract.feature_names,
        label_name=contract.label.name,
        labels=contract.label.values,
        positive_label=contract.label.positive,
        mean=tuple(float(value) for value in values.mean(axis=0)),
        std=tuple(float(value) if value > 0 else 1.0 for value in std),
    )


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as temporary:
        frame.to_csv(temporary, index=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", type=Path, help="raw CSV (already checked by `validate`)")
    parser.add_argument("contract", type=Path, help="data contract (YAML)")
    parser.add_argument("validation", type=Path, help="report written by `validate`")
    parser.add_argument(
        "out", type=Path, help="folder for train.csv, val.csv, test.csv, features.json"
    )
    args = parser.parse_args(argv)

    if not json.loads(args.validation.read_text()).get("passed"):
        print(f"prepare: {args.validation} says the data failed validation", file=sys.stderr)
        return 1
    contract = Contract.load(args.contract)
    frame = pd.read_csv(args.data).loc[:, list(contract.columns)]
    if frame[list(contract.feature_names)].isna().any().any():
        print("prepare: features have empty values; add an imputation step first", file=sys.stderr)
        return 1
    params = Params.load().prepare
    splits = split(frame, contract.label.name, params)
    for name in ("train", "val", "test"):
        _write_csv(getattr(splits, name), args.out / f"{name}.csv")
    schema = fit_schema(splits.train, contract)
    write_text_atomically(args.out / "features.json", schema.model_dump_json(indent=2) + "\n")
    sizes = ", ".join(f"{name} {len(getattr(splits, name))}" for name in ("train", "val", "test"))
    print(f"prepare: {sizes} rows -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
