"""Branch coverage per package, from the data the last `make test` / `make test-unit` collected.

pytest-cov combines the run's data files: the test process, its xdist workers and every Python
subprocess they started ([tool.coverage.run] patch), in the project copies the pipeline tests
make too ([tool.coverage.paths] maps those files back to this tree). This prints one line per
package of [tool.coverage.run] source_pkgs, statements and branches together, as coverage
counts them; `locustfile` is not a package (Locust imports load_tests/locustfile.py under that
name), so its lines count in load_tests. It exits 1 when a package is under FLOOR: `make
coverage-report` (GitHub's combined job) fails then; `make test` prints and keeps pytest's status.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import coverage
from coverage.exceptions import NoDataError

FLOOR = 85.0  # percent, for each package: the suite as a whole, statements and branches


def main() -> int:
    measured = coverage.Coverage()
    measured.load()
    packages = [name for name in measured.config.source_pkgs if Path(name).is_dir()]
    below = []
    print(f"\n{'package':<12} {'branch coverage':>15}")
    for package in packages:
        try:
            percent = measured.report(include=[f"{package}/*"], file=io.StringIO())
        except NoDataError:
            print(f"{package:<12} {'not run':>15}")
            below.append(package)
            continue
        if percent < FLOOR:
            below.append(package)
        mark = f"  under {FLOOR:g} %" if percent < FLOOR else ""
        print(f"{package:<12} {percent:>14.1f}%{mark}")
    total = measured.report(file=io.StringIO())
    print(f"{'all':<12} {total:>14.1f}%")
    if below:
        print(f"coverage: under {FLOOR:g} % (or not run): {', '.join(below)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
