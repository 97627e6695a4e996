"""Benchmark: what a `make tune` trial costs, and what running trials in parallel buys.

In a fresh clone of this repository (its own MLflow store, the project's DVC cache), with the
pipeline reproduced up to `train`:

train    `dvc repro --force --single-item train`: one training, in the workspace
serial   `make tune`'s search with N trials, one at a time
parallel the same N trials, `--jobs` at a time (default: the machine's cores)

Each phase trains with another `train.seed`, so no trial is restored from DVC's run cache, and
the budget is set in the clone's params.yaml, as a user would.

Printed: per-trial cost against a plain training (the DVC experiment's overhead: a temporary
git copy, checkout from the cache, the commit of the result) and the parallel speedup, both
measured in the same run. Results also go to benchmarks/results/tune.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from benchmarks.repro_times import ROOT, VENV_BIN, _timed
from model.atomic import write_json_atomically


def _clone(scratch: Path) -> Path:
    clone = scratch / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    for key, value in (("user.email", "bench@localhost"), ("user.name", "bench")):
        subprocess.run(["git", "config", key, value], cwd=clone, check=True)
    dvc = str(VENV_BIN / "dvc")
    subprocess.run([dvc, "cache", "dir", str(ROOT / ".dvc" / "cache")], cwd=clone, check=True)
    _timed([dvc, "repro", "train"], clone)
    return clone


def _set_params(clone: Path, seed: int, trials: int, jobs: int) -> None:
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["train"]["seed"] = seed
    params["tune"] |= {"max_trials": trials, "jobs": jobs}
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=4, help="trials per search (default 4)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/tune.json")
    args = parser.parse_args(argv)

    python, dvc = str(VENV_BIN / "python"), str(VENV_BIN / "dvc")
    tune = [python, "-m", "model.tune"]
    times = {}
    with tempfile.TemporaryDirectory() as scratch:
        clone = _clone(Path(scratch))
        _set_params(clone, seed=100, trials=2, jobs=1)
        _timed(tune, clone)  # warm-up: MLflow tables, first imports
        _set_params(clone, seed=101, trials=args.trials, jobs=1)
        times["train"] = _timed([dvc, "repro", "--force", "--single-item", "train"], clone)
        print(f"one training (dvc repro train): {times['train']:.1f} s", flush=True)
        _set_params(clone, seed=102, trials=args.trials, jobs=1)
        times["serial"] = _timed(tune, clone)
        print(f"{args.trials} trials, 1 at a time: {times['serial']:.1f} s", flush=True)
        _set_params(clone, seed=103, trials=args.trials, jobs=args.jobs)
        times["parallel"] = _timed(tune, clone)
        print(f"{args.trials} trials, {args.jobs} at a time: {times['parallel']:.1f} s", flush=True)
    per_trial = times["serial"] / args.trials
    speedup = times["serial"] / times["parallel"]
    print(f"\nmake tune, {args.trials} trials ({os.cpu_count()} cores):")
    ratio = per_trial / times["train"]
    print(f"  per trial, serial            {per_trial:6.1f} s ({ratio:.2f}x one training)")
    print(f"  parallel speedup, {args.jobs} jobs     {speedup:6.2f}x")
    write_json_atomically(
        args.out, {"trials": args.trials, "jobs": args.jobs, "seconds": times, "speedup": speedup}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
