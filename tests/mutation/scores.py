"""`make mutation`: mutmut 3 over the modules that decide, the score printed per module.

mutmut ([tool.mutmut] in pyproject.toml) copies the packages into mutants/, mutates the deciding
modules there and runs the unit tests that reach each mutant. This script names which mutants
run (all of the deciding modules; of monitoring/drift.py the verdict only) and reads mutmut's
results from mutants/*.meta to print killed / (killed + survived) per module, and the survivors
by name (`mutmut show NAME` prints the change). It exits 1 when a module is under TARGET.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

TARGET = 0.90
# module -> the mutant names (globs, as `mutmut run` takes them) that decide
DECIDING = {
    "model/checks.py": ["model.checks.*"],  # the gate's checks
    "model/validate.py": ["model.validate.*"],
    "rollout/analysis.py": ["rollout.analysis.*"],
    "monitoring/drift.py": [
        "monitoring.drift.x_judge__*",
        "monitoring.drift.x_concept_drift__*",
        "monitoring.drift.x_split_false_alarm_rate__*",
    ],
    "load_tests/slo.py": ["load_tests.slo.*"],
}
KILLED = {1, 3, 36, 24, -24, 152, 255, 37}  # failed, errored, timed out or did not type-check
SURVIVED = {0}


def _wanted(name: str, patterns: list[str]) -> bool:
    from fnmatch import fnmatch

    return any(fnmatch(name, pattern) for pattern in patterns)


def results(root: Path) -> dict[str, dict[str, int | None]]:
    """Exit code per mutant name, per deciding module, from mutmut's meta files."""
    by_module: dict[str, dict[str, int | None]] = {}
    for module, patterns in DECIDING.items():
        meta = root / "mutants" / f"{module}.meta"
        codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
        by_module[module] = {name: code for name, code in codes.items() if _wanted(name, patterns)}
    return by_module


def report(by_module: dict[str, dict[str, int | None]]) -> bool:
    """Print the score table and the survivors; True when every module meets TARGET."""
    print(f"\n{'module':<22} {'killed':>6} {'survived':>8} {'other':>5}  score")
    ok = True
    survivors = []
    for module, codes in by_module.items():
        counts = Counter(
            "killed" if code in KILLED else "survived" if code in SURVIVED else "other"
            for code in codes.values()
        )
        judged = counts["killed"] + counts["survived"]
        score = counts["killed"] / judged if judged else 0.0
        ok &= score >= TARGET
        mark = "ok" if score >= TARGET else f"UNDER {TARGET:.0%}"
        print(
            f"{module:<22} {counts['killed']:>6} {counts['survived']:>8} {counts['other']:>5}  "
            f"{score:6.1%} {mark}"
        )
        survivors += sorted(name for name, code in codes.items() if code in SURVIVED)
    if survivors:
        print("\nsurvivors (`mutmut show NAME`; equivalent ones are listed in docs/testing.md):")
        for name in survivors:
            print(f"  {name}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("MUTATION_JOBS", "1")))
    parser.add_argument("--report-only", action="store_true", help="read the last run's results")
    parser.add_argument(
        "modules", nargs="*", help="deciding modules to mutate (default: MUTATION_MODULES or all)"
    )
    args = parser.parse_args(argv)
    modules = args.modules or os.environ.get("MUTATION_MODULES", "").split() or list(DECIDING)
    if unknown := set(modules) - set(DECIDING):
        parser.error(
            f"not a deciding module: {', '.join(sorted(unknown))} (one of {list(DECIDING)})"
        )
    if not args.report_only:
        names = [pattern for module in modules for pattern in DECIDING[module]]
        command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(args.jobs)]
        env = os.environ | {"HYPOTHESIS_PROFILE": "ci", "PYTHONDONTWRITEBYTECODE": "1"}
        subprocess.run([*command, *names], check=True, env=env)
    return 0 if report(results(Path.cwd())) else 1


if __name__ == "__main__":
    sys.exit(main())
