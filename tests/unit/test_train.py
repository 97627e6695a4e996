"""Training is deterministic and learns; checkpoints restore the same network."""

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from model.contract import Contract
from model.features import FeatureSchema, encode, fit_schema, label_codes
from model.network import checkpoint_bytes, load_checkpoint, save_checkpoint
from model.params import TrainParams
from model.train import history_csv, train

PARAMS = TrainParams(seed=7, hidden_units=(8,), epochs=60, learning_rate=0.05, weight_decay=0.0)


def _separable(rows: int = 200) -> tuple[np.ndarray, np.ndarray, FeatureSchema]:
    """Two features on very different scales, encoded as `prepare` fits them; the label is the
    sign of the first."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"signal": rng.normal(size=rows), "noise": rng.normal(1000, 300, rows)})
    frame["y"] = np.where(frame["signal"] > 0, "pos", "neg")
    contract = Contract.parse(
        {
            "label": {"name": "y", "values": ["neg", "pos"]},
            "features": [{"name": "signal"}, {"name": "noise"}],
            "table": {"min_rows": 1, "max_duplicate_fraction": 1, "min_class_fraction": 0},
        }
    )
    schema = fit_schema(frame, contract)
    return encode(frame, schema), label_codes(frame, schema), schema


def test_same_params_give_identical_weights() -> None:
    """Two runs with one seed produce byte-identical checkpoints."""
    features, labels, schema = _separable()
    first, _ = train(features, labels, schema, PARAMS)
    second, _ = train(features, labels, schema, PARAMS)
    assert checkpoint_bytes(first) == checkpoint_bytes(second)


def test_learns_a_separable_problem_despite_feature_scales() -> None:
    """The fitted scaling lets the MLP fit features of any magnitude."""
    features, labels, schema = _separable()
    _, history = train(features, labels, schema, PARAMS, validation=(features, labels))
    assert history[-1]["val_accuracy"] > 0.95
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert len(history) == PARAMS.epochs


def test_checkpoint_round_trip_predicts_the_same(tmp_path: Path) -> None:
    features, labels, schema = _separable()
    network, _ = train(features, labels, schema, PARAMS)
    sha = save_checkpoint(network, tmp_path / "model.pt")
    restored = load_checkpoint(tmp_path / "model.pt")
    inputs = torch.from_numpy(features)
    with torch.no_grad():
        assert torch.equal(network(inputs), restored(inputs))
    assert len(sha) == 64


def test_history_csv_has_one_row_per_epoch() -> None:
    text = history_csv([{"train_loss": 1.0}, {"train_loss": 0.5}])
    assert text == "epoch,train_loss\n0,1\n1,0.5\n"
