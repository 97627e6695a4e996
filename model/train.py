"""DVC stage `train`: fit the classifier on the training split, deterministically on CPU."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Before torch loads: ATen's AVX2/AVX-512 kernels round differently from its portable ones, so
# one seed trained different bytes on different CPUs. The portable kernels everywhere make the
# weights a function of code, data and params alone (docs/reproducibility.md).
os.environ["ATEN_CPU_CAPABILITY"] = "default"

import numpy as np
import torch
from torch import nn

from model.atomic import write_json_atomically, write_text_atomically
from model.features import FeatureSchema, encode, read_split
from model.lineage import file_digest, git_commit
from model.network import Classifier, save_checkpoint
from model.params import Params, TrainParams
from model.tracking import log_history, model_run


def train(
    features: np.ndarray,
    labels: np.ndarray,
    schema: FeatureSchema,
    params: TrainParams,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[Classifier, list[dict[str, float]]]:
    """Full-batch Adam on encoded features; returns the network and per-epoch metrics.
    No I/O: tests call this."""
    torch.manual_seed(params.seed)
    torch.use_deterministic_algorithms(True)
    network = Classifier(features.shape[1], params.hidden_units, len(schema.labels))
    optimizer = torch.optim.Adam(
        network.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay
    )
    inputs, targets = torch.from_numpy(features), torch.from_numpy(labels)
    history = []
    for _ in range(params.epochs):
        network.train()
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(network(inputs), targets)
        loss.backward()
        optimizer.step()
        epoch = {"train_loss": loss.item()}
        if validation is not None:
            epoch |= validation_metrics(network, *validation)
        history.append(epoch)
    return network.eval(), history


@torch.no_grad()
def validation_metrics(
    network: Classifier, features: np.ndarray, labels: np.ndarray
) -> dict[str, float]:
    network.eval()
    logits = network(torch.from_numpy(features))
    targets = torch.from_numpy(labels)
    return {
        "val_loss": float(nn.functional.cross_entropy(logits, targets)),
        "val_accuracy": float((logits.argmax(dim=1) == targets).float().mean()),
    }


def history_csv(history: list[dict[str, float]]) -> str:
    """Per-epoch metrics as DVC plot data."""
    keys = list(history[0])
    lines = [",".join(["epoch", *keys])]
    lines += [
        ",".join([str(step), *(f"{epoch[key]:.6g}" for key in keys)])
        for step, epoch in enumerate(history)
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("prepared", type=Path, help="folder written by `prepare`")
    parser.add_argument("raw", type=Path, help="raw CSV, hashed for lineage")
    parser.add_argument("checkpoint", type=Path, help="where to write the model checkpoint")
    parser.add_argument("history", type=Path, help="where to write per-epoch metrics (CSV)")
    parser.add_argument(
        "validation", type=Path, help="where to write the final validation metrics (JSON)"
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(1)  # tiny model: threads only add run-to-run noise
    params = Params.load().train
    schema = FeatureSchema.load(args.prepared / "features.json")
    train_frame, train_labels = read_split(args.prepared / "train.csv", schema)
    val_frame, val_labels = read_split(args.prepared / "val.csv", schema)
    train_split = encode(train_frame, schema), train_labels
    val_split = encode(val_frame, schema), val_labels
    hidden = list(params.hidden_units)
    print(f"train: {params.epochs} epochs, hidden {hidden}, {len(train_split[1])} rows")
    network, history = train(*train_split, schema, params, validation=val_split)
    weights_sha256 = save_checkpoint(network, args.checkpoint)
    write_text_atomically(args.history, history_csv(history))
    last = history[-1]
    # What `make tune` selects on: the validation split only, never the test split.
    write_json_atomically(
        args.validation, {key: round(last[key], 6) for key in ("val_loss", "val_accuracy")}
    )

    import mlflow

    with model_run(weights_sha256, new=True) as run:
        mlflow.log_params(
            params.model_dump()
            | {"n_features": len(schema.feature_names), "n_encoded": train_split[0].shape[1]}
        )
        mlflow.set_tags({"git_commit": git_commit(), "data_md5": file_digest(args.raw, "md5")})
        if os.environ.get("DVC_EXP_NAME"):  # a `make tune` trial: the tuner finds its run by it
            mlflow.set_tag("dvc_exp_name", os.environ["DVC_EXP_NAME"])
        log_history(history)
        run_id = run.info.run_id
    print(
        f"train: done, train_loss {last['train_loss']:.4f}, val_loss {last['val_loss']:.4f}, "
        f"val_accuracy {last['val_accuracy']:.4f} (MLflow run {run_id})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
