"""DVC stage `prepare`: stratified train/validation/test split and the fitted preprocessing.

The splits keep raw feature values (nulls and strings included); fill values, category sets and
scaling statistics, fitted on the training rows only, travel in features.json. `export` builds
them into the ONNX model, so a server needs nothing but onnxruntime.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from model.atomic import atomic_path, write_text_atomically
from model.contract import Contract
from model.features import fit_schema
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
    text = [f.name for f in contract.features if f.kind == "categorical"] + [contract.label.name]
    raw = pd.read_csv(args.data, dtype=dict.fromkeys(text, str))
    # Ignored columns ride along (never trained on): ids for a person reading a split, and the
    # inputs a baseline model may still need after a feature moved to `ignore`.
    carried = [name for name in contract.ignore if name in raw.columns]
    frame = raw.loc[:, [*contract.columns, *carried]]
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
