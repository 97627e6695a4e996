"""Benchmark: wall time of a cold and a warm `dvc repro` in a fresh clone of this repository.

cold   every stage forced (`dvc repro --force`): what a first run or a full retrain costs
clone  plain `dvc repro` in a fresh clone: reruns only what git does not carry (the DVC cache)
warm   `dvc repro` with nothing changed: what every re-run of `make pipeline` pays

Each is repeated (interleaved, new clone per round) and the median printed, as this machine is
shared and noisy. `--against REV` times another revision in the same rounds, alternating which
goes first, and prints the ratio of the two cold runs: what a change costs, noise cancelled.
Results also go to benchmarks/results/repro.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from model.atomic import write_json_atomically

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def _timed(command: list[str], cwd: Path) -> float:
    env = os.environ | {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("BENTOML_HOME", None)  # each clone uses its own store, as a fresh checkout would
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise SystemExit(f"{' '.join(command)} failed in {cwd}:\n{tail}")
    return time.perf_counter() - start


def one_round(scratch: Path, rev: str = "HEAD") -> dict[str, float]:
    clone = scratch / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "checkout", "--quiet", rev], cwd=clone, check=True)
    # As `make repro` runs it: both pipeline files, the machine-local lock kept out of git
    # (revisions before deploy/dvc.sh had one pipeline file: plain `dvc repro`).
    wrapper = clone / "deploy/dvc.sh"
    repro = ["sh", str(wrapper), "repro"] if wrapper.is_file() else [str(VENV_BIN / "dvc"), "repro"]
    times = {"clone": _timed(repro, clone)}
    times["warm"] = _timed(repro, clone)
    times["cold"] = _timed([*repro, "--force"], clone)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="fresh clones to time (default 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/repro.json")
    parser.add_argument("--against", metavar="REV", help="also time this revision, interleaved")
    args = parser.parse_args(argv)

    rounds: list[dict[str, float]] = []
    other: list[dict[str, float]] = []
    for index in range(args.rounds):
        order = [("HEAD", rounds)] + ([(args.against, other)] if args.against else [])
        for rev, results in order if index % 2 == 0 else order[::-1]:
            with tempfile.TemporaryDirectory() as scratch:
                results.append(one_round(Path(scratch), rev))
            print(
                f"round {index + 1}/{args.rounds} {rev}: "
                + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in results[-1].items()),
                flush=True,
            )
    medians = {name: statistics.median(r[name] for r in rounds) for name in rounds[0]}
    print(f"\ndvc repro, median of {args.rounds} (committed HEAD, {os.cpu_count()} cores):")
    for name, label in [
        ("cold", "cold (every stage forced)"),
        ("clone", "fresh clone (uncached stages)"),
        ("warm", "warm (nothing changed)"),
    ]:
        print(f"  {label:<32} {medians[name]:6.1f} s")
    print(f"  cold / warm                      {medians['cold'] / medians['warm']:6.1f}x")
    summary: dict[str, object] = {"rounds": rounds, "median_seconds": medians}
    if args.against:
        ratios = [mine["cold"] / theirs["cold"] for mine, theirs in zip(rounds, other, strict=True)]
        theirs_cold = statistics.median(r["cold"] for r in other)
        print(f"  cold at {args.against:<24} {theirs_cold:6.1f} s")
        print(
            f"  cold HEAD / {args.against:<20} {statistics.median(ratios):6.2f}x (median of rounds)"
        )
        summary["against"] = {"rev": args.against, "rounds": other, "cold_ratios": ratios}
    write_json_atomically(args.out, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
