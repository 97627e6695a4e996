"""Benchmark: what a `make tune` trial costs, and what running trials in parallel buys.

In a fresh clone of this repository (its own MLflow store, the project's DVC cache), with the
pipeline reproduced up to `train`:

train    `dvc repro --force --single-item train`: one training, in the workspace
serial   `python -m model.tune` with N trials, one at a time
parallel the same N trials, `--jobs` at a time (default: the machine's cores)

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=4, help="trials per search (default 4)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/tune.json")
    args = parser.parse_args(argv)

    python, dvc = str(VENV_BIN / "python"), str(VENV_BIN / "dvc")
    tune = [python, "-m", "model.tune", "--max-trials", str(args.trials)]
    with tempfile.TemporaryDirectory() as scratch:
        clone = _clone(Path(scratch))
        _timed([*tune, "--jobs", "1"], clone)  # warm-up: MLflow tables, first imports
        times = {"train": _timed([dvc, "repro", "--force", "--single-item", "train"], clone)}
        print(f"one training (dvc repro train): {times['train']:.1f} s", flush=True)
        times["serial"] = _timed([*tune, "--jobs", "1"], clone)
        print(f"{args.trials} trials, 1 at a time: {times['serial']:.1f} s", flush=True)
        times["parallel"] = _timed([*tune, "--jobs", str(args.jobs)], clone)
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
